//! Reads in global order do not scan from the start of the log: the records they step over
//! and the records read to build samples, counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{CheckpointMode, Log, Options, SyncMode};
use std::sync::atomic::Ordering;

fn opts() -> Options {
    Options {
        segment_size_bytes: 1 << 20,
        // A bulk load: nothing here depends on fsync, and 15,000 synced appends take long.
        sync_mode: SyncMode::Never,
        checkpoints: CheckpointMode::Inline,
        ..Options::default()
    }
}

/// (records walked, records scanned) by `read`.
fn counted<T>(log: &Log, read: impl FnOnce() -> T) -> (u64, u64) {
    let s = &log.shared.lsn_samples;
    let (w, c) = (
        s.walked_records.load(Ordering::Relaxed),
        s.scanned_records.load(Ordering::Relaxed),
    );
    read();
    (
        s.walked_records.load(Ordering::Relaxed) - w,
        s.scanned_records.load(Ordering::Relaxed) - c,
    )
}

#[test]
fn a_read_from_the_middle_walks_one_sample_interval_and_scans_at_most_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let payload = vec![b'x'; 150];
    for i in 0..15_000u32 {
        let exec = format!("exec-{}", i % 50);
        log.append_blocking(&exec, "t", &payload).unwrap();
    }
    let segments = log.segments();
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let per_segment = 15_000 / segments.len() as u64;
    // Positions: the records' LSNs, from the log itself.
    let all: Vec<u64> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.lsn)
        .collect();
    let middle = all[all.len() / 2];
    // Record length ~240 bytes: one 64 KiB sample interval is under 300 records.
    let interval = super::samples::SAMPLE_EVERY_BYTES / 200 + 10;

    // Cold: the middle segment (sealed, with a checkpoint) gives its samples from the
    // checkpoint; nothing is scanned, and the walk is one interval at most.
    let (walked, scanned) = counted(&log, || log.read_global(middle, 10).unwrap());
    assert!(walked <= interval, "walked {walked} records");
    assert!(
        scanned <= per_segment * 2,
        "scanned {scanned} records: more than one segment's"
    );
    // Warm: nothing scanned, same bound on the walk.
    let (walked, scanned) = counted(&log, || log.read_global(middle, 10).unwrap());
    assert!(walked <= interval, "walked {walked} records");
    assert_eq!(scanned, 0);
    log.close().unwrap();

    // Reopened: sealed segments' samples come from their checkpoints.
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let (walked, scanned) = counted(&log, || {
        let r = log.read_global(middle, 10).unwrap();
        assert_eq!(r.len(), 10);
        assert_eq!(r[0].lsn, all[all.len() / 2 + 1]);
    });
    assert!(walked <= interval, "walked {walked} records after reopen");
    assert_eq!(scanned, 0, "the middle segment's checkpoint was not used");
    // Without checkpoints: one segment scanned, not the log.
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), opts().checkpoints(CheckpointMode::Off)).unwrap();
    let (walked, scanned) = counted(&log, || log.read_global(middle, 10).unwrap());
    assert!(walked <= interval, "walked {walked} records");
    assert!(scanned <= per_segment * 2, "scanned {scanned} records");
    assert!(scanned > 0);
    log.close().unwrap();
}
