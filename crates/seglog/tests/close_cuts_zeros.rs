//! A clean close cuts the zeros after the log's end (zeros written ahead of the tail, or a
//! prepared segment's, up to the whole segment): the next open checks that nothing but zeros
//! follows the end of data and would otherwise read them all, tens of MiB on a cold cache
//! (docs/benchmarks.md, "the cold open after prepared segments"). Real files: the zeros are
//! written by the zeroing thread, which the simulated file system does not run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{CheckpointMode, Log, Options};

const SEGMENT: u64 = 1 << 20;

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(SEGMENT)
        .checkpoints(CheckpointMode::Inline)
}

fn last_segment_len(log_dir: &std::path::Path) -> (u64, u64) {
    let mut segs: Vec<_> = std::fs::read_dir(log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    (std::fs::metadata(last).unwrap().len(), segs.len() as u64)
}

#[test]
fn a_clean_close_leaves_no_zeros_after_the_end_and_the_log_reopens_and_grows() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let payload = vec![7u8; 900];
    // Past one roll (the second segment made from the prepared file, zeroed throughout),
    // then a little into the next.
    let mut n = 0u64;
    while log.segments().len() < 2 || log.segments().last().unwrap().data_end < SEGMENT / 8 {
        log.append_blocking(&format!("e{}", n % 7), "t", &payload)
            .unwrap();
        n += 1;
    }
    let data_end = log.segments().last().unwrap().data_end;
    log.close().unwrap();
    let (len, count) = last_segment_len(dir.path());
    assert!(count >= 2);
    // The data, the commit marker, nothing more.
    assert!(
        len < data_end + 4096,
        "the last segment is {len} bytes after a close at {data_end}: the zeros after the end were left for the next open to read"
    );

    // Reopened: every event, and appends go on into reserved space.
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let stored: usize = (0..7)
        .map(|e| log.read(&format!("e{e}")).unwrap().len())
        .sum();
    assert_eq!(stored as u64, n);
    for i in 0..200 {
        log.append_blocking(&format!("e{}", i % 7), "t", &payload)
            .unwrap();
    }
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let stored: usize = (0..7)
        .map(|e| log.read(&format!("e{e}")).unwrap().len())
        .sum();
    assert_eq!(stored as u64, n + 200);
    assert!(log.verify().unwrap().is_clean());
    log.close().unwrap();
}
