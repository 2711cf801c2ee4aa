//! Review 6: buffered rounds and async waiters in the waiter queue. Every waiter must
//! eventually return (or fail), whatever other callers of the log do, and nothing but a
//! failed write or fsync (or a panic inside a commit round) may poison the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{Error, SegmentLog, SegmentOptions};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

fn opts(buffered_write_bytes: u64) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        max_record_size_bytes: 4096,
        buffered_write_bytes,
        ..SegmentOptions::default()
    }
}

fn open(fs: &SimFs, buffered_write_bytes: u64) -> SegmentLog<SimFs> {
    SegmentLog::open(fs.clone(), "/log", opts(buffered_write_bytes), &mut ())
        .unwrap()
        .0
}

fn record(log: &SegmentLog<SimFs>) -> seglog_segment::format::EncodedRecord {
    common::waiting::record(log, 1000)
}

/// A waker that remembers it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `LeaderClaim`'s drop poisons the log when a commit round panics, so that no waiter waits
/// forever. A buffered (write-only) round marks its claim finished before it runs, so a
/// panic inside it — here in the seal listener, called when a buffered round rolls — leaves
/// the leader's seat taken for good: every later `sync`, durable append and `close` hangs.
#[test]
fn a_panic_inside_a_buffered_round_fails_later_syncs_instead_of_hanging_them() {
    let fs = SimFs::new();
    let log = open(&fs, 1);
    log.set_seal_listener(Box::new(|_, _| panic!("seal listener panics")));
    let first_segment = log.segments()[0].number;
    let mut panicked = false;
    for _ in 0..200 {
        let r = record(&log);
        match catch_unwind(AssertUnwindSafe(|| log.submit_buffered(r))) {
            Ok(Ok(a)) => assert_eq!(a.position.segment, first_segment),
            Ok(Err(e)) => panic!("unexpected error {e}"),
            Err(_) => {
                panicked = true;
                break;
            }
        }
    }
    assert!(
        panicked,
        "the buffered round that rolls should have called the listener"
    );

    let (tx, rx) = mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || tx.send(l.sync()));
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("sync hangs: the panicked buffered round never gave the leader's seat back");
    assert!(
        matches!(outcome, Err(Error::Poisoned { .. })),
        "the panicked round may have lost records: sync must fail, got {outcome:?}"
    );
}

/// `sync` racing `close`: `close` reserves the commit marker's LSN, then writes and syncs it
/// while holding the leader's seat for good, and finally moves `durable_lsn` past the marker
/// without waking anyone. A `sync` that reads the last submitted LSN in that window waits for
/// the marker's LSN in the queue, and nobody ever wakes it.
#[test]
fn sync_racing_close_returns() {
    let fs = SimFs::new();
    let log = open(&fs, 1 << 20);
    log.append(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[b"x".as_slice()],
    })
    .unwrap();
    fs.set_sync_latency(Duration::from_millis(100));
    let (tx, rx) = mpsc::channel();
    let started = Arc::new(AtomicBool::new(false));
    {
        let log = log.clone();
        let started = started.clone();
        std::thread::spawn(move || {
            let mut calls = 0u64;
            loop {
                started.store(true, Ordering::SeqCst);
                calls += 1;
                if log.sync().is_err() {
                    break;
                }
            }
            tx.send(calls).unwrap();
        });
    }
    wait_until("the sync loop", || started.load(Ordering::SeqCst));
    std::thread::sleep(Duration::from_millis(10));
    log.close().unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a sync made while close wrote its commit marker never returned");
}

/// A blocking appender acknowledged in the same round as an async wait is woken through that
/// wait's task (the heap fan-out). If the task is not polled again — its future kept alive
/// while the task does something else, or its runtime's thread busy — the blocking appender,
/// whose record is durable, sleeps with it: one caller's task holds up another's append for
/// as long as it likes.
#[test]
fn a_blocking_appender_does_not_wait_for_another_callers_unpolled_future() {
    let fs = SimFs::new();
    let log = open(&fs, 1 << 20);
    fs.set_sync_latency(Duration::from_millis(300));
    // A leader in a slow fsync.
    let writes_before = fs.op_count(seglog_segment::io::sim::Op::Write);
    let leader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let a = log.submit(record(&log)).unwrap();
            log.wait_durable(a.lsn).unwrap();
        })
    };
    // Wait until it has written its record (it is in its fsync now): no sleep, a loaded
    // machine may not have scheduled it yet.
    common::waiting::wait_for_a_write(&fs, writes_before);
    // Our async wait queues behind it, polled once.
    let mine = log.submit(record(&log)).unwrap();
    let mut wait = Box::pin(log.wait_durable_async(mine.lsn));
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    assert!(wait
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    // Another caller's blocking append queues behind ours.
    let (tx, rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let a = log.submit(record(&log)).unwrap();
            tx.send((a.lsn, log.wait_durable(a.lsn))).unwrap();
        });
    }
    leader.join().unwrap();
    // Both records are durable now (the leader ran the next round too); our task was woken
    // but is not polled for a while.
    wait_until("our wake-up", || flag.0.load(Ordering::SeqCst));
    let outcome = rx.recv_timeout(Duration::from_secs(30));
    drop(wait);
    let (lsn, result) =
        outcome.expect("a durable blocking append waited for another caller's future to be polled");
    result.unwrap();
    assert!(log.durable_lsn() >= lsn);
}

/// An async wait dropped while its thread unwinds (the root future of a `block_on` whose
/// task panicked, a future pinned on a panicking thread's stack) that had just been asked to
/// lead: `withdraw` claims the seat only to hand it on, and the claim's drop takes the panic
/// for a panic inside a commit round and poisons the log for every caller.
#[test]
fn an_async_wait_dropped_during_an_unrelated_panic_does_not_poison_the_log() {
    let fs = SimFs::new();
    let log = open(&fs, 1);
    let (sealing_tx, sealing_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let sealing_tx = std::sync::Mutex::new(sealing_tx);
    log.set_seal_listener(Box::new(move |_, _| {
        let _ = sealing_tx.lock().unwrap().send(());
        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
    }));
    let first_segment = log.segments()[0].number;
    // A bulk import: buffered appends, each written at once (buffered_write_bytes = 1); the
    // one that rolls seals the first segment inside its buffered round.
    let importer = {
        let log = log.clone();
        std::thread::spawn(move || loop {
            let a = log.submit_buffered(record(&log)).unwrap();
            if a.position.segment != first_segment {
                return;
            }
        })
    };
    sealing_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // The buffered round is running: our durable append's wait queues.
    let mine = log.submit(record(&log)).unwrap();
    let mut wait = Box::pin(log.wait_durable_async(mine.lsn));
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    assert!(wait
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    go_tx.send(()).unwrap();
    importer.join().unwrap();
    // The buffered round left its records unsynced and asked the oldest waiter — ours — to
    // lead the commit round.
    wait_until("our wake-up", || flag.0.load(Ordering::SeqCst));
    // Our thread panics for reasons of its own before the task runs again.
    let unwound = catch_unwind(AssertUnwindSafe(move || {
        let _wait = wait;
        panic!("an unrelated panic");
    }));
    assert!(unwound.is_err());
    assert_eq!(log.poisoned(), None, "an unrelated panic poisoned the log");
    log.sync().unwrap();
}
