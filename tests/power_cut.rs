//! Power cuts and a full disk on real kernel file systems: ext4 and XFS.
//!
//! A small image is loop-mounted; a child process appends from 8 threads and reports each
//! acknowledgement; at a random moment the test calls the `FS_IOC_SHUTDOWN` ioctl with
//! `FS_GOING_DOWN_NOLOGFLUSH` (XFS: `XFS_IOC_GOINGDOWN`, the same number, with
//! `XFS_FSOP_GOING_FLAGS_NOLOGFLUSH`) — the file system stops at once, neither writing back
//! dirty pages nor committing its journal, as if the power went — then unmounts, remounts
//! (the journal replays what was committed) and checks every acknowledged event. And: a log
//! on an image too small for it must fail appends with a typed error, keep every acknowledged
//! event, and still open. Every test runs on ext4 and on XFS (an XFS image is at least
//! 300 MiB: current mkfs.xfs refuses smaller).
//!
//! Needs root, loop devices, mkfs.ext4 and mkfs.xfs (xfsprogs); elsewhere each test says why
//! it skips and passes. CI runs as root. `SEGLOG_POWER_CUT_CYCLES=100` runs a longer series
//! of cuts on each file system (`SEGLOG_EXT4_CYCLES`, its old name, still works).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::Rng;
use seglog::{Log, Options};
use seglog_tests::kernel_fs::{skip, FsKind, LoopMount};
use seglog_tests::segment_snapshot::SegmentSnapshot;
use seglog_tests::{check_acks, check_erased, crash_options, missing, run_child_until};
use std::time::Duration;

/// Image for the power-cut cycles, MiB.
fn image_mib(kind: FsKind) -> u64 {
    kind.min_image_mib().max(256)
}

/// Power cuts per test and file system: 6, or `SEGLOG_POWER_CUT_CYCLES` (or its old name
/// `SEGLOG_EXT4_CYCLES`).
fn cycles() -> usize {
    ["SEGLOG_POWER_CUT_CYCLES", "SEGLOG_EXT4_CYCLES"]
        .iter()
        .find_map(|var| std::env::var(var).ok()?.parse().ok())
        .unwrap_or(6)
}

#[test]
fn acknowledged_appends_survive_an_ext4_shutdown() {
    acknowledged_appends_survive_shutdowns(
        FsKind::Ext4,
        "acknowledged_appends_survive_an_ext4_shutdown",
    );
}

#[test]
fn acknowledged_appends_survive_an_xfs_shutdown() {
    acknowledged_appends_survive_shutdowns(
        FsKind::Xfs,
        "acknowledged_appends_survive_an_xfs_shutdown",
    );
}

#[test]
fn compaction_survives_an_ext4_shutdown_and_erased_data_stays_gone() {
    compaction_survives_shutdowns(
        FsKind::Ext4,
        "compaction_survives_an_ext4_shutdown_and_erased_data_stays_gone",
    );
}

#[test]
fn compaction_survives_an_xfs_shutdown_and_erased_data_stays_gone() {
    compaction_survives_shutdowns(
        FsKind::Xfs,
        "compaction_survives_an_xfs_shutdown_and_erased_data_stays_gone",
    );
}

#[test]
fn a_full_disk_fails_appends_cleanly_and_keeps_what_was_acknowledged() {
    a_full_disk_fails_appends_cleanly(
        FsKind::Ext4,
        "a_full_disk_fails_appends_cleanly_and_keeps_what_was_acknowledged",
    );
}

#[test]
fn a_full_xfs_disk_fails_appends_cleanly_and_keeps_what_was_acknowledged() {
    a_full_disk_fails_appends_cleanly(
        FsKind::Xfs,
        "a_full_xfs_disk_fails_appends_cleanly_and_keeps_what_was_acknowledged",
    );
}

fn acknowledged_appends_survive_shutdowns(kind: FsKind, test: &str) {
    let mut fs = match LoopMount::new(kind, image_mib(kind)) {
        Ok(fs) => fs,
        Err(why) => return skip(test, &why),
    };
    let cycles = cycles();
    let dir = fs.path().join("log");
    let mut rng = rand::rng();
    let mut all_acks = Vec::new();
    let mut racing_acks = Vec::new();
    let mut racing_lost = 0;
    for cycle in 0..cycles {
        let run_for = Duration::from_millis(rng.random_range(50..500));
        let acks = run_child_until(
            env!("CARGO_BIN_EXE_seglog-crash-child"),
            &dir,
            &[],
            run_for,
            || fs.shut_down(),
        );
        // Only acks seen before the shutdown are evidence (see `Acks::after_cut`).
        all_acks.extend(acks.before_cut);
        racing_acks.extend(acks.after_cut);
        fs.unmount();
        fs.mount().unwrap();
        // What recovery is about to see, kept for the diagnosis if a check fails.
        let before = SegmentSnapshot::take(&dir);
        let what = format!("{kind} cycle {cycle}");
        let log = Log::open_blocking(&dir, crash_options()).unwrap_or_else(|e| {
            panic!("{what}: the log does not open after the power cut: {e}\n{before}")
        });
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_acks(&log, &all_acks, &what)
        }));
        if let Err(e) = checked {
            eprintln!("{what}: recovery {:?}\n{before}", log.stats().recovery);
            std::panic::resume_unwind(e);
        }
        racing_lost += missing(&log, &racing_acks);
        racing_acks.clear();
        log.close().unwrap();
    }
    assert!(
        all_acks.len() > 50,
        "{kind}: only {} appends were acknowledged",
        all_acks.len()
    );
    eprintln!(
        "{cycles} {kind} power cuts, {} acknowledged appends checked; of the acks printed while \
         the shutdown raced them, {racing_lost} were not on disk",
        all_acks.len()
    );
}

fn compaction_survives_shutdowns(kind: FsKind, test: &str) {
    let mut fs = match LoopMount::new(kind, image_mib(kind)) {
        Ok(fs) => fs,
        Err(why) => return skip(test, &why),
    };
    let cycles = cycles();
    let dir = fs.path().join("log");
    let mut rng = rand::rng();
    let (mut all_acks, mut erased) = (Vec::new(), Vec::new());
    for cycle in 0..cycles {
        let run_for = Duration::from_millis(rng.random_range(100..600));
        let acks = run_child_until(
            env!("CARGO_BIN_EXE_seglog-crash-child"),
            &dir,
            &["--compact"],
            run_for,
            || fs.shut_down(),
        );
        // Only what was printed before the shutdown is evidence (see `Acks::after_cut`).
        all_acks.extend(acks.before_cut);
        erased.extend(acks.erased_before_cut);
        fs.unmount();
        fs.mount().unwrap();
        let before = SegmentSnapshot::take(&dir);
        let what = format!("{kind} cycle {cycle}");
        let log = Log::open_blocking(&dir, crash_options()).unwrap_or_else(|e| {
            panic!("{what}: the log does not open after the power cut: {e}\n{before}")
        });
        check_acks(&log, &all_acks, &what);
        check_erased(&log, &dir, &erased, &what);
        log.close().unwrap();
    }
    assert!(
        !erased.is_empty(),
        "{kind}: no compaction finished before a cut"
    );
    eprintln!(
        "{cycles} {kind} power cuts during compactions: {} acknowledged appends and {} erasures checked",
        all_acks.len(),
        erased.len()
    );
}

/// Fills a small image with 1 MiB segments: about 10,000 appends on either file system.
fn a_full_disk_fails_appends_cleanly(kind: FsKind, test: &str) {
    let (mib, payload_bytes) = match kind {
        FsKind::Ext4 => (24, 2000),
        // 300 MiB with about 230 MiB free for data.
        FsKind::Xfs => (kind.min_image_mib(), 24_000),
    };
    let mut fs = match LoopMount::new(kind, mib) {
        Ok(fs) => fs,
        Err(why) => return skip(test, &why),
    };
    let dir = fs.path().join("log");
    let opts = Options::default().segment_size_bytes(1 << 20);
    let log = Log::open_blocking(&dir, opts.clone()).unwrap();
    let payload = vec![b'z'; payload_bytes];
    let mut acked = 0u64;
    let err = loop {
        match log.append_blocking("e", "t", &payload) {
            Ok(seq) => acked = seq,
            Err(e) => break e,
        }
        assert!(acked < 1_000_000, "{kind}: the disk never filled");
    };
    assert!(
        acked > 1000,
        "{kind}: the disk filled after only {acked} appends"
    );
    // Typed: poisoned by the failed write, fsync or segment creation, or an I/O error.
    assert!(
        err.is_poisoned()
            || matches!(
                err,
                seglog::Error::Segment(seglog_segment::Error::Io { .. })
            ),
        "{kind}: {err}"
    );
    assert!(
        log.append_blocking("e", "t", b"more").is_err(),
        "{kind}: appends after the failure must fail"
    );
    drop(log);
    // The disk is still full: the log opens anyway, with everything acknowledged.
    fs.unmount();
    fs.mount().unwrap();
    let log = Log::open_blocking(&dir, opts)
        .unwrap_or_else(|e| panic!("{kind}: the log does not open on the full disk: {e}"));
    assert_eq!(log.latest_seq("e").unwrap(), Some(acked), "{kind}");
    let events = log.read("e").unwrap();
    assert!(
        events.iter().all(|e| e.payload.len() == payload_bytes),
        "{kind}: an event changed size"
    );
    eprintln!("{kind}: full disk after {acked} acknowledged appends: {err}");
}
