//! Review 165 (held): program shapes around commit 68dff88's waiting last-handle drop that
//! were tried hard and *held* on the current code. In each, a cancelled async append's round
//! (a 400 ms fsync under SimFs's sync latency) is on the round runner when the engine's last
//! `Log` handle goes, and the directory must reopen once the round is done (well under 3 s),
//! with no hang and no panic:
//!
//! - the last handle dropped while its thread unwinds from a panic (the drop's condvar wait
//!   and thread-local reads are fine there);
//! - the last handle kept in a thread-local and dropped by its destructor at thread exit
//!   (`ON_RUNNER_THREAD` and `CALLBACK_DEPTH` are const `Cell`s without destructors, so their
//!   `with` cannot fail there; parking_lot parks without its thread-local);
//! - a multi-thread runtime shut down with `shutdown_background` (no waiting at all) and with
//!   `shutdown_timeout(10 ms)` while a task owns the last handle: the task is dropped on a
//!   worker that keeps waiting for the round in the background, the lock goes when it ends;
//! - the same with a background checkpointer (the engine's `Shared::drop` joins it before the
//!   segment log goes, and the runner's round then calls a seal listener whose checkpointer is
//!   finished: it queues nothing and does not block).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, Log, Options};
use std::cell::RefCell;
use std::time::{Duration, Instant};

const SYNC: Duration = Duration::from_millis(400);

fn options(checkpoints: CheckpointMode) -> Options {
    let mut o = Options::default();
    o.checkpoints = checkpoints;
    o
}

fn open(fs: &SimFs, checkpoints: CheckpointMode) -> Log<SimFs> {
    let log = Log::open_with_fs(fs.clone(), "/log", options(checkpoints)).unwrap();
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

/// Reopens within 3 s (the round is a 400 ms fsync; the reopen's own fsyncs take none), and finds the acknowledged record.
fn assert_reopens(fs: &SimFs, what: &str) {
    // (An fsync already asleep keeps its latency: a round still running is still seen.)
    fs.set_sync_latency(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match Log::open_with_fs(fs.clone(), "/log", options(CheckpointMode::Off)) {
            Ok(log) => {
                assert_eq!(log.read("warm").unwrap().len(), 1, "{what}");
                log.close().unwrap();
                return;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{what}: still no reopen after 3 s: {e}"),
        }
    }
}

/// Runs `f` on a thread, failing rather than hanging after 30 s.
fn guarded(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what}: hung for 30 s"));
    t.join().unwrap();
}

#[test]
fn last_handle_dropped_during_a_panic_unwinding() {
    guarded("panic unwinding", || {
        let fs = SimFs::new();
        let log = open(&fs, CheckpointMode::Off);
        fs.set_sync_latency(SYNC);
        let rt = multi();
        cancelled_append(&rt, &fs, &log);
        let started = Instant::now();
        let joined = std::thread::spawn(move || {
            let _owned = log;
            panic!("the owner panics with the log's last handle on its stack");
        })
        .join();
        assert!(joined.is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(rt);
        assert_reopens(&fs, "drop during unwinding");
    });
}

thread_local! {
    static KEPT: RefCell<Option<Log<SimFs>>> = const { RefCell::new(None) };
}

#[test]
fn last_handle_dropped_by_a_thread_local_destructor() {
    guarded("thread-local destructor", || {
        let fs = SimFs::new();
        let log = open(&fs, CheckpointMode::Off);
        fs.set_sync_latency(SYNC);
        let rt = multi();
        cancelled_append(&rt, &fs, &log);
        std::thread::spawn(move || KEPT.with(|k| *k.borrow_mut() = Some(log)))
            .join()
            .unwrap();
        drop(rt);
        assert_reopens(&fs, "drop in a thread-local destructor");
    });
}

#[test]
fn runtime_shut_down_in_the_background_or_with_a_short_timeout() {
    for checkpoints in [
        CheckpointMode::Off,
        CheckpointMode::Background,
        CheckpointMode::Inline,
    ] {
        for background in [true, false] {
            guarded("runtime shutdown", move || {
                let fs = SimFs::new();
                let log = open(&fs, checkpoints);
                fs.set_sync_latency(SYNC);
                let rt = multi();
                cancelled_append(&rt, &fs, &log);
                rt.spawn(async move {
                    let _owned = log;
                    std::future::pending::<()>().await;
                });
                let started = Instant::now();
                if background {
                    rt.shutdown_background();
                } else {
                    rt.shutdown_timeout(Duration::from_millis(10));
                }
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "the shutdown itself waited ({:?})",
                    started.elapsed()
                );
                assert_reopens(
                    &fs,
                    &format!("{checkpoints:?}, shutdown_background: {background}"),
                );
            });
        }
    }
}
