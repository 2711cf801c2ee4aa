//! `seglog tail` following a log another handle appends to.

use super::*;
use seglog::{Log, Options};

#[test]
fn tail_follows_appends_from_another_process_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let log = Log::open_blocking(&dir, Options::default()).unwrap();
    log.append_encoded_blocking("e", "t", None, 0, &[b"before"])
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_seglog"))
        .args([
            "tail",
            dir.to_str().unwrap(),
            "e",
            "--max-events",
            "5",
            "--timeout-secs",
            "20",
            "--json",
            "--poll-ms",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    for i in 0..5 {
        log.append_encoded_blocking("e", "t", None, 0, &[format!("live {i}").as_bytes()])
            .unwrap();
        log.append_encoded_blocking("other", "t", None, 0, &[b"noise"])
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6], "only the new events, in order");
}
