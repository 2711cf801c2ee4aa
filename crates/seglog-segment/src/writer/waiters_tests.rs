//! A cancelled async waiter passes on what it was handed (the chance to lead) and leaves the
//! queue. (That a task never relays other waiters' wake-ups is `tests/review6_waiters.rs`.)
//! Each test stages the commit state by hand (a fake running leader) so the
//! moment it checks happens every time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::format::EventBatch;
use crate::io::sim::SimFs;
use crate::{SegmentLog, SegmentOptions};
use std::sync::mpsc;
use std::time::Duration;

fn open() -> SegmentLog<SimFs> {
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    };
    SegmentLog::open(SimFs::new(), "/log", opts, &mut ())
        .unwrap()
        .0
}

fn submit(log: &SegmentLog<SimFs>) -> u64 {
    let record = log
        .encode(&EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: 1,
            timestamp_unix_nanos: 0,
            payloads: &[b"event".as_slice()],
        })
        .unwrap();
    log.submit(record).unwrap().lsn
}

/// Polls `wait` once, outside any runtime, with a waker that does nothing.
fn poll_once<F: FileSystem>(wait: &mut DurableWait<F>) -> Poll<Result<()>> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(wait).poll(&mut cx)
}

/// A blocking waiter for `lsn` on its own thread; the receiver hears when it returns.
fn blocking_waiter(log: &SegmentLog<SimFs>, lsn: u64) -> mpsc::Receiver<Result<()>> {
    let (tx, rx) = mpsc::channel();
    let log = log.clone();
    std::thread::spawn(move || tx.send(log.wait_durable(lsn)));
    rx
}

fn wait_for_queue(log: &SegmentLog<SimFs>, len: usize) {
    while log.inner.commit.lock().waiters.len() < len {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_cancelled_waiter_asked_to_lead_hands_the_round_on() {
    let log = open();
    let first = submit(&log);
    let second = submit(&log);
    // A leader is busy: both waiters queue.
    log.inner.commit.lock().leader_active = true;
    let mut wait = log.inner.wait_durable_async(first);
    assert!(poll_once(&mut wait).is_pending());
    let other = blocking_waiter(&log, second);
    wait_for_queue(&log, 2);
    // The leader ends, records still queued: it asks the oldest waiter — ours — to lead.
    {
        let mut st = log.inner.commit.lock();
        st.leader_active = false;
        let oldest = st.waiters.pop_front().unwrap();
        oldest.state.store(LEAD, Ordering::Release);
    }
    // The task is cancelled before it runs.
    drop(wait);
    let outcome = other
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiter behind a cancelled would-be leader was stranded");
    outcome.unwrap();
    assert!(log.durable_lsn() >= second);
}

#[test]
fn a_waiter_in_the_queue_withdraws_when_cancelled() {
    let log = open();
    let lsn = submit(&log);
    log.inner.commit.lock().leader_active = true;
    let mut wait = log.inner.wait_durable_async(lsn);
    assert!(poll_once(&mut wait).is_pending());
    assert_eq!(log.inner.commit.lock().waiters.len(), 1);
    drop(wait);
    assert!(log.inner.commit.lock().waiters.is_empty());
    log.inner.commit.lock().leader_active = false;
    // The record itself is still submitted: the next wait makes it durable.
    let mut wait = log.inner.wait_durable_async(lsn);
    assert!(matches!(poll_once(&mut wait), Poll::Ready(Ok(()))));
    assert!(log.durable_lsn() >= lsn);
}
