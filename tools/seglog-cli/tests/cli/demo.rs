//! `seglog demo`: the end-to-end run, and what it may clear.

use super::*;
use seglog::{Log, Options};

/// Runs a small demo into `dir`.
fn small_demo(dir: &Path) -> Output {
    seglog(&[
        "demo",
        dir.to_str().unwrap(),
        "--runs",
        "60",
        "--tasks",
        "8",
    ])
}

#[test]
fn demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let o = small_demo(&dir);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
    let out = text(&o);
    for needle in [
        "durable append latency",
        "reopened in",
        "clean",
        "replayed through the EventStore trait",
    ] {
        assert!(out.contains(needle), "demo output lacks {needle:?}:\n{out}");
    }
    // It refuses to wipe a directory that is not a demo.
    let other = tmp.path().join("precious");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    assert_clean_failure(&seglog(&["demo", other.to_str().unwrap()]), 3);
    assert!(other.join("notes.txt").exists());
}

#[test]
fn demo_reruns_in_its_own_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    for run in 0..2 {
        let o = small_demo(&dir);
        assert_eq!(
            o.status.code(),
            Some(0),
            "run {run}: {}{}",
            text(&o),
            err(&o)
        );
    }
    // The second run replaced the first: 60 runs, not 120.
    let o = seglog(&["stats", dir.to_str().unwrap(), "--json"]);
    let s: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
    assert_eq!(s["executions"], 60, "{s}");
}

/// A demo killed while its writer prepared the next segment leaves `NEXT_SEGMENT` behind
/// (review 26): the next demo still takes the directory as its own.
#[test]
fn demo_reruns_over_a_killed_runs_prepared_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let o = small_demo(&dir);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
    std::fs::write(
        dir.join(seglog_segment::format::PREPARED_SEGMENT_FILE_NAME),
        vec![0u8; 8192],
    )
    .unwrap();
    let o = small_demo(&dir);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
}

/// A real log, made by the library (not by the demo): every file name the demo used to
/// accept as its own (LOCK, *.seg, *.idx).
fn real_log(dir: &Path) {
    let log = Log::open_blocking(
        dir,
        Options::default()
            .segment_size_bytes(4096)
            .checkpoints(seglog::CheckpointMode::Inline),
    )
    .unwrap();
    for i in 0..100u32 {
        log.append_encoded_blocking("orders", "acme", None, 0, &[format!("order {i}")])
            .unwrap();
    }
    log.close().unwrap();
}

#[test]
fn demo_refuses_a_real_log_and_leaves_it_byte_for_byte_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app-log");
    real_log(&dir);
    let names: Vec<String> = snapshot(&dir)
        .keys()
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".idx")) && names.iter().any(|n| n == "LOCK"),
        "{names:?}"
    );
    let before = snapshot(&dir);
    let o = small_demo(&dir);
    assert_clean_failure(&o, 3);
    assert!(err(&o).contains("not made by `seglog demo`"), "{}", err(&o));
    assert_same_files(&before, &snapshot(&dir));

    // Nor while its writer has it open.
    let holder = Log::open_blocking(&dir, Options::default()).unwrap();
    // The holder zeroes ahead of its tail (moving the tail bound) in the background.
    let before = settled_snapshot(&dir);
    assert_clean_failure(&small_demo(&dir), 3);
    assert_same_files(&before, &snapshot(&dir));
    holder.close().unwrap();
}

#[test]
fn demo_refuses_its_own_directory_while_another_process_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let o = small_demo(&dir);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
    let holder = Log::open_blocking(&dir, Options::default()).unwrap();
    // The holder zeroes ahead of its tail (moving the tail bound) in the background.
    let before = settled_snapshot(&dir);
    let o = small_demo(&dir);
    assert_clean_failure(&o, 3);
    assert!(err(&o).contains("open in another process"), "{}", err(&o));
    assert_same_files(&before, &snapshot(&dir));
    holder.close().unwrap();
    // Once it is let go, the demo may have it again.
    let o = small_demo(&dir);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
}
