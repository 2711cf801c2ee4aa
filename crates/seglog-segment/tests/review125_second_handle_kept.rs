//! Review 125 (regression check): with nothing moved, the identity comparisons on real files
//! (`stat` of the path against `fstat` of the handle) keep the active segment's second
//! handle after a roll that creates its file, after a roll that installs the prepared file,
//! and at reopen; and rounds still overlap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::format::EventBatch;
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn descriptors_on(file: &Path) -> usize {
    let m = std::fs::metadata(file).unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::metadata(e.unwrap().path()).ok())
        .filter(|d| d.dev() == m.dev() && d.ino() == m.ino())
        .count()
}

fn options(prepare: bool) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 256 << 10,
        max_record_size_bytes: 64 << 10,
        zero_ahead_bytes: 0,
        prepare_next_segment: prepare,
        ..SegmentOptions::default()
    }
}

fn append(log: &SegmentLog<StdFs>) {
    let p = vec![vec![3u8; 16 << 10]];
    log.append(&EventBatch {
        encoding: 0,
        execution_id: b"e",
        tenant_id: b"t",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &p,
    })
    .unwrap();
}

fn check(prepare: bool) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &dir, options(prepare), &mut ()).unwrap();
    while common::segment_names(&dir).len() < 3 {
        append(&log);
    }
    let active = dir.join(common::segment_names(&dir).last().unwrap());
    assert_eq!(
        descriptors_on(&active),
        2,
        "after a roll (prepare {prepare})"
    );
    if prepare {
        assert!(log.stats().prepared_rolls > 0, "{:?}", log.stats());
    }
    log.close().unwrap();
    drop(log);
    let (log, _) = SegmentLog::open(StdFs, &dir, options(prepare), &mut ()).unwrap();
    assert_eq!(descriptors_on(&active), 2, "at reopen (prepare {prepare})");
    // Many writers: rounds overlap.
    let log = std::sync::Arc::new(log);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..40 {
                    append(&log);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(log.stats().overlapped_rounds > 0, "{:?}", log.stats());
}

#[test]
fn created_segments_keep_their_second_handle() {
    check(false);
}

#[test]
fn prepared_segments_keep_their_second_handle() {
    check(true);
}
