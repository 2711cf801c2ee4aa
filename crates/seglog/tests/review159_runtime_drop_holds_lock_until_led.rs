//! Review 159 (held): scenarios around commit 90a2635's `hold_runtime_until_led` that were
//! tried hard and *held* on the current code: after the log and its runtime are dropped the
//! directory reopens at once, although a cancelled append's round (a 400 ms fsync under
//! SimFs's sync latency) was still running on the round runner when the last handle went.
//!
//! - `drop(log)` then `drop(rt)` at once, no sync-up (review 153's test waits for one more
//!   blocking task first): tokio's default (locked) blocking pool runs a task queued before
//!   its shutdown — the thread started for it, or the idle one notified, takes it in its busy
//!   loop without looking at the shutdown flag — so the hold task always runs. Both flavours.
//! - A current-thread runtime's drop that itself drops the task owning the last handle: the
//!   current-thread scheduler drops its tasks before the blocking pool shuts down, so the
//!   hold task is accepted and waited for. (On a multi-thread runtime it is not: review 156.)
//! - The last handle dropped inside a blocking task, and from a task on a worker.
//! - Eight logs sharing one runtime, each with a round under way: one hold task each, all
//!   waited for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::{Log, Options};
use std::time::{Duration, Instant};

const SYNC: Duration = Duration::from_millis(400);

fn open(fs: &SimFs) -> Log<SimFs> {
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("warm", "t", b"w").unwrap();
    log
}

fn multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn wait_for_sync(fs: &SimFs, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.syncs_started() == before {
        assert!(Instant::now() < deadline, "setup: no fsync began");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A spawned task's append on `rt`, polled once and given up; returns once its round's
/// fsync has begun (on the round runner).
fn cancelled_append(rt: &tokio::runtime::Runtime, fs: &SimFs, log: &Log<SimFs>) {
    let before = fs.syncs_started();
    let log = log.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::ZERO, log.append("e", "t", b"cancelled")).await;
        })
        .await
        .unwrap();
    });
    wait_for_sync(fs, before);
}

fn assert_reopens(fs: &SimFs, what: &str) {
    // (An fsync already asleep keeps its latency: a round still running is still seen.)
    fs.set_sync_latency(Duration::ZERO);
    let reopened = Log::open_with_fs(fs.clone(), "/log", Options::default());
    match reopened {
        Ok(log) => {
            assert_eq!(log.read("warm").unwrap().len(), 1);
            log.close().unwrap();
        }
        Err(e) => panic!("{what}: reopen failed: {e}"),
    }
}

#[test]
fn drop_log_then_runtime_at_once_multi_thread() {
    let fs = SimFs::new();
    let log = open(&fs);
    fs.set_sync_latency(SYNC);
    let rt = multi();
    cancelled_append(&rt, &fs, &log);
    drop(log);
    drop(rt);
    assert_reopens(&fs, "multi-thread, log then runtime");
}

#[test]
fn drop_log_then_runtime_at_once_current_thread() {
    let fs = SimFs::new();
    let log = open(&fs);
    fs.set_sync_latency(SYNC);
    let rt = current();
    cancelled_append(&rt, &fs, &log);
    drop(log);
    drop(rt);
    assert_reopens(&fs, "current-thread, log then runtime");
}

#[test]
fn current_thread_runtime_drop_drops_the_task_owning_the_last_handle() {
    let fs = SimFs::new();
    let log = open(&fs);
    fs.set_sync_latency(SYNC);
    let rt = current();
    let before = fs.syncs_started();
    let fs2 = fs.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let _ = log.append("e", "t", b"in flight at shutdown").await;
            std::future::pending::<()>().await;
            drop(log);
        });
        while fs2.syncs_started() == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    drop(rt);
    assert_reopens(&fs, "current-thread runtime dropping the owning task");
}

#[test]
fn last_handle_dropped_in_a_blocking_task_or_a_task() {
    for in_blocking in [true, false] {
        let fs = SimFs::new();
        let log = open(&fs);
        fs.set_sync_latency(SYNC);
        let rt = multi();
        cancelled_append(&rt, &fs, &log);
        rt.block_on(async move {
            if in_blocking {
                tokio::task::spawn_blocking(move || drop(log))
                    .await
                    .unwrap();
            } else {
                tokio::spawn(async move { drop(log) }).await.unwrap();
            }
        });
        drop(rt);
        assert_reopens(&fs, if in_blocking { "blocking task" } else { "task" });
    }
}

#[test]
fn many_logs_share_one_runtime() {
    let rt = multi();
    let mut all = Vec::new();
    for _ in 0..8 {
        let fs = SimFs::new();
        let log = open(&fs);
        fs.set_sync_latency(SYNC);
        all.push((fs, log));
    }
    for (fs, log) in &all {
        let before = fs.syncs_started();
        let log = log.clone();
        rt.spawn(async move {
            let _ = tokio::time::timeout(Duration::ZERO, log.append("e", "t", b"x")).await;
        });
        wait_for_sync(fs, before);
    }
    let fss: Vec<SimFs> = all.iter().map(|(fs, _)| fs.clone()).collect();
    drop(all);
    drop(rt);
    for fs in &fss {
        assert_reopens(fs, "one of many logs");
    }
}
