//! Replays the fuzz corpora (`tests/fuzz/corpus/<target>/*`) through the same entry points
//! the cargo-fuzz targets use, so every input a fuzzer found interesting — and every
//! crash it found, once minimised and added — is checked on stable in every test run.
//!
//! `SEGLOG_WRITE_SEEDS=1` (re)writes the seed inputs made from real logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_tests::fuzz_entry;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn write_seeds() {
    use seglog::{CheckpointMode, Log, Options};
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .segment_size_bytes(2048)
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open_blocking(tmp.path(), opts).unwrap();
    for i in 0..30u64 {
        let p = format!("payload {i}");
        if i % 4 == 0 {
            log.append_batch_blocking(&format!("e{}", i % 3), "t", &[p.as_bytes(), b"second"])
                .unwrap();
        } else {
            log.append_blocking(&format!("e{}", i % 3), "t", p.as_bytes())
                .unwrap();
        }
    }
    let segs = log.segments();
    log.close().unwrap();
    let seg0 = std::fs::read(&segs[0].path).unwrap();
    std::fs::write(base.join("segment_file/sealed_segment"), &seg0).unwrap();
    std::fs::write(
        base.join("segment_file/torn_segment"),
        &seg0[..seg0.len() - 9],
    )
    .unwrap();
    std::fs::write(
        base.join("record_decoder/single_record"),
        &seg0[64..64 + 70],
    )
    .unwrap();
    let a = seglog_segment::inspect::analyze_segment(&seg0, 0);
    let second = a.record_offsets[1] as usize;
    std::fs::write(base.join("record_decoder/batch_record"), &seg0[64..second]).unwrap();
    let idx = tmp
        .path()
        .join(seglog_index::checkpoint::checkpoint_file_name(
            segs[0].first_lsn,
        ));
    std::fs::write(
        base.join("checkpoint_decoder/checkpoint"),
        std::fs::read(idx).unwrap(),
    )
    .unwrap();
}

#[test]
fn fuzz_corpora_replay_without_panics() {
    if std::env::var_os("SEGLOG_WRITE_SEEDS").is_some() {
        write_seeds();
    }
    let mut total = 0;
    for (target, entry) in [
        ("record_decoder", fuzz_entry::record_decoder as fn(&[u8])),
        ("checkpoint_decoder", fuzz_entry::checkpoint_decoder),
        ("segment_file", fuzz_entry::segment_file),
    ] {
        let inputs = corpus(target);
        assert!(!inputs.is_empty(), "corpus of {target} is empty");
        for (path, bytes) in inputs {
            entry(&bytes);
            // Every prefix too: truncation is the commonest damage.
            for cut in (0..bytes.len()).step_by(bytes.len() / 64 + 1) {
                entry(&bytes[..cut]);
            }
            let _ = path;
            total += 1;
        }
    }
    assert!(total >= 5);
}
