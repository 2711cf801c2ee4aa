//! A waker that panics when woken (a bug in some executor or in the caller's own code) is the
//! caller's problem, not every other caller's: the thread that wakes it — a round's leader or
//! a waiter relaying wake-ups, often another caller's — must go on, wake the rest of the
//! group, and give back the leader's seat. Before, the panic unwound out of the leader in the
//! middle of its wake-ups: the rest of the group slept for good, and the leader's own append
//! (another caller's) panicked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::waiting::{open_small_log, wait_for_a_write, Panics};
use seglog_segment::io::sim::{Op, SimFs};
use seglog_segment::SegmentLog;
use std::future::Future;
use std::sync::{mpsc, Arc};
use std::task::{Context, Waker};
use std::time::Duration;

fn record(log: &SegmentLog<SimFs>) -> seglog_segment::format::EncodedRecord {
    common::waiting::record(log, 5)
}

#[test]
fn a_panicking_waker_strands_no_other_caller_and_keeps_the_log_usable() {
    let fs = SimFs::new();
    let log = open_small_log(&fs);
    fs.set_sync_latency(Duration::from_millis(200));
    // A leader in a slow fsync.
    let writes_before = fs.op_count(Op::Write);
    let (leader_tx, leader_rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let a = log.submit(record(&log)).unwrap();
                log.wait_durable(a.lsn)
            }));
            leader_tx.send(outcome.map_err(|_| ())).unwrap();
        });
    }
    wait_for_a_write(&fs, writes_before);
    // Behind it: an async wait whose waker panics, then another caller's blocking append.
    let mine = log.submit(record(&log)).unwrap();
    let mut wait = Box::pin(log.wait_durable_async(mine.lsn));
    let waker = Waker::from(Arc::new(Panics));
    assert!(wait
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let (tx, rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let a = log.submit(record(&log)).unwrap();
            tx.send((a.lsn, log.wait_durable(a.lsn))).unwrap();
        });
    }
    let leader = leader_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the leader never returned");
    assert!(
        matches!(leader, Ok(Ok(()))),
        "the leader's own append failed or panicked because of another caller's waker: {leader:?}"
    );
    let (lsn, outcome) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a blocking append acknowledged with the panicking waker's wait was stranded");
    outcome.unwrap();
    assert!(log.durable_lsn() >= lsn);
    drop(wait);
    fs.set_sync_latency(Duration::ZERO);
    // The log goes on: the seat was given back.
    let (tx, rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let a = log.submit(record(&log)).unwrap();
            tx.send(log.wait_durable(a.lsn)).unwrap();
        });
    }
    rx.recv_timeout(Duration::from_secs(30))
        .expect("an append after the panicking waker hung")
        .unwrap();
    assert_eq!(log.poisoned(), None);
}

/// The same for a follower of the durable watermark (`durable_watch`) whose task's waker
/// panics: the round that moves the watermark notifies it, and its leader's append must not
/// fail because of it.
#[test]
fn a_follower_with_a_panicking_waker_does_not_fail_the_rounds_that_notify_it() {
    let fs = SimFs::new();
    let log = open_small_log(&fs);
    let mut watch = log.durable_watch();
    let mut changed = Box::pin(watch.changed());
    let waker = Waker::from(Arc::new(Panics));
    assert!(changed
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    for _ in 0..3 {
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let a = log.submit(record(&log)).unwrap();
                    log.wait_durable(a.lsn)
                }));
                tx.send(outcome.map_err(|_| ())).unwrap();
            });
        }
        let outcome = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("an append hung");
        assert!(
            matches!(outcome, Ok(Ok(()))),
            "an append failed or panicked because a follower's waker panicked: {outcome:?}"
        );
    }
    assert_eq!(log.poisoned(), None);
}
