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

/// Review 53's race, made deterministic. A global read lists the segment table without the
/// index's lock; a compaction moves `layout_epoch` under that lock. A read that loads the
/// epoch after the compaction's first move and lists the table before the new segments are
/// installed has read a table that is gone when it finishes: it must find the epoch moved
/// then, and read again, instead of returning what it read (there: "no record at segment 1
/// offset 64", 1 run in 5). The compaction's second move, after the install, is what it sees.
#[test]
fn a_global_read_that_listed_the_table_a_compaction_replaces_sees_the_epoch_move() {
    use std::sync::{Arc, Mutex};
    type Seen = (u64, Vec<u64>, crate::Result<Vec<crate::LogRecord>>);
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let payload = vec![b'x'; 150];
    for i in 0..10_000u32 {
        log.append_blocking(&format!("exec-{}", i % 50), "t", &payload)
            .unwrap();
    }
    assert!(log.segments().len() >= 2, "nothing sealed to compact");
    let before: Vec<u64> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.lsn)
        .collect();

    let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
    let slot = seen.clone();
    *log.shared.between_epoch_moves.lock() = Some(Box::new(move |log: &Log| {
        // What `read_global` does on another thread at this moment: load the epoch, then
        // read (it lists the segment table first).
        let epoch = log.layout_epoch();
        let listed = log
            .shared
            .segments
            .segments()
            .iter()
            .map(|s| s.number)
            .collect();
        let read = log.try_read_global(0, usize::MAX);
        *slot.lock().unwrap() = Some((epoch, listed, read));
    }));
    let view = log.compaction_view(true).unwrap();
    log.compact_blocking(
        &crate::compaction::policy::cluster_sealed_segments(&view),
        crate::CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();

    let (epoch, listed, _read) = seen.lock().unwrap().take().expect("the hook ran");
    let now: Vec<u64> = log.segments().iter().map(|s| s.number).collect();
    assert!(
        listed.iter().any(|n| !now.contains(n)),
        "the read listed {listed:?}; the compaction left {now:?}: nothing was replaced"
    );
    assert_ne!(
        log.layout_epoch(),
        epoch,
        "a read that listed the replaced table would return what it read without retrying"
    );
    let after: Vec<u64> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.lsn)
        .collect();
    assert_eq!(after, before);
    log.close().unwrap();
}
