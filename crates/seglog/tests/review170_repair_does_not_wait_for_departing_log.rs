//! Review 170: `seglog::repair_dir` (and `mend_log_id`) lock the directory with
//! `fs.lock_dir` directly, so they never wait for a departing log of this process: right
//! after a program drops its last `Log` while a cancelled async append's round still runs
//! (the case commit 7bbea4e made `Log::open` wait for), repair reports the log `Locked`,
//! "when another process has the log open" as its documentation puts it, though nothing
//! else has it open and the round ends a moment later.
//!
//! The shape is ordinary for a repair tool or a supervisor: it closes the service's log by
//! dropping it (its tasks were cancelled; one of their appends left a round on the round
//! runner), then runs repair on the directory.
//!
//! Root cause: the departure wait lives in `seglog_segment`'s private `writer::lock_dir`;
//! `repair::lock` (and `prepare_destination`, for backups) take the lock themselves.
//!
//! Expected (fails on the current code): repair and mend wait for the departure, as an open
//! does, and succeed.
//!
//! Fixed (2026-12-08): repair locks through `seglog_segment::lock_log_dir`, which waits for
//! departures as an open does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, Log, Options};
use std::time::{Duration, Instant};

fn options() -> Options {
    let mut o = Options::default();
    o.checkpoints = CheckpointMode::Off;
    o
}

/// Opens `/log`, appends, then leaves a cancelled append's round (a 1 s fsync) on the round
/// runner and drops the last handle (and the runtime).
fn depart(fs: &SimFs) {
    let log = Log::open_with_fs(fs.clone(), "/log", options()).unwrap();
    log.append_blocking("warm", "t", b"w").unwrap();
    fs.set_sync_latency(Duration::from_secs(1));
    let before = fs.syncs_started();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let in_task = log.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::ZERO, in_task.append("e", "t", b"cancelled")).await;
        })
        .await
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.syncs_started() == before {
        assert!(Instant::now() < deadline, "setup: no fsync began");
        std::thread::sleep(Duration::from_millis(1));
    }
    fs.set_sync_latency(Duration::ZERO);
    drop(log);
    drop(rt);
}

#[test]
fn repair_right_after_the_last_handle_is_dropped() {
    let fs = SimFs::new();
    depart(&fs);
    let repaired = seglog::repair_dir_with_fs(fs.clone(), std::path::Path::new("/log"), |_| true);
    assert!(
        repaired.is_ok(),
        "repair of a log this process just dropped: {:?}",
        repaired.err()
    );
}

#[test]
fn mend_log_id_right_after_the_last_handle_is_dropped() {
    let fs = SimFs::new();
    depart(&fs);
    let id = seglog_segment::format::LogId::random().unwrap();
    let mended = seglog::mend_log_id_with_fs(&fs, std::path::Path::new("/log"), id);
    assert!(
        mended.is_ok(),
        "mend_log_id of a log this process just dropped: {:?}",
        mended.err()
    );
}

#[test]
fn open_waits_there() {
    // The contrast: the same drop, then an open, which waits for the departure.
    let fs = SimFs::new();
    depart(&fs);
    let log = Log::open_with_fs(fs.clone(), "/log", options()).unwrap();
    assert_eq!(log.read("warm").unwrap().len(), 1);
    log.close().unwrap();
}
