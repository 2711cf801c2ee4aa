//! Review 156: a log whose last handle is owned by a task, dropped by the runtime's own
//! shutdown, keeps the directory locked after the runtime's drop returned.
//!
//! Commit 90a2635 (review 153) made the last handle's drop leave a blocking task on the
//! runtime that handed the latest round to the round runner
//! (`RoundRunner::hold_runtime_until_led`), so that "a program that drops its log and its
//! runtime can reopen the directory at once" (docs/design.md). That only works when the
//! handle is dropped *before* the runtime starts shutting down, and the blocking task has
//! started before it does. The most common way a program drops its log and its runtime is
//! the other order: the log lives in spawned tasks (servers, workers; an append in flight),
//! and `main` returns (`#[tokio::main]` drops the runtime), which drops those tasks, and with
//! them the log's last handle, *inside* the runtime's shutdown. On a multi-thread runtime the
//! tasks are dropped by the workers after the blocking pool was told to shut down
//! (`BlockingPool::shutdown` / `begin_shutdown`), so `spawn_blocking` in
//! `hold_runtime_until_led` is refused (`SpawnError::ShuttingDown`, its JoinHandle returned
//! and dropped silently) and nothing holds the runtime: its drop returns while the handed
//! round still runs on a "seglog-rounds" thread, and that round's `Arc<Inner>` keeps the
//! directory lock. A reopen right after the runtime's drop fails with `Locked` for as long
//! as the round lasts (here a 1.5 s fsync from SimFs's sync latency; on a real disk a slow
//! fsync of a large batch, or a device stall, for as long as it takes).
//!
//! The append in flight is never acknowledged, so nothing is lost; the failure is the lock.
//!
//! Fixed (2026-12-08): the last handle's drop no longer leaves a blocking task, nor waits;
//! an open of the directory in this process waits for the departing log instead
//! (`seglog-segment`'s `departing.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::{Log, Options};
use std::time::{Duration, Instant};

const SYNC: Duration = Duration::from_millis(1500);

#[test]
fn runtime_drop_that_drops_the_last_handle_leaves_the_directory_unlocked() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("warm", "t", b"w").unwrap();
    fs.set_sync_latency(SYNC);
    let syncs_before = fs.syncs_started();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The program's task owns the log; its append is in flight (its round handed to the round
    // runner, as every spawned task's is) when `main` ends.
    rt.spawn(async move {
        let r = log.append("exec", "t", b"in flight at shutdown").await;
        eprintln!("append returned {r:?}");
        std::future::pending::<()>().await;
        drop(log);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.syncs_started() == syncs_before {
        assert!(
            Instant::now() < deadline,
            "setup: the round's fsync never began"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // `main` returns: the runtime's drop drops the task, and the log's last handle with it.
    let dropping = Instant::now();
    drop(rt);
    let runtime_drop_took = dropping.elapsed();

    let reopened = Log::open_with_fs(fs.clone(), "/log", Options::default());
    let locked = matches!(&reopened, Err(e) if e.is_locked());
    // Let the round end before the test ends, whatever happened.
    drop(reopened);
    std::thread::sleep(SYNC + Duration::from_millis(500));
    assert!(
        !locked,
        "the runtime's drop returned after {runtime_drop_took:?} while the round it handed \
         still ran: the reopen found the directory Locked (the last handle was dropped inside \
         the runtime's shutdown, where hold_runtime_until_led's spawn_blocking is refused)"
    );
}
