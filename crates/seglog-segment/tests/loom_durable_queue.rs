//! `DurableQueue` under loom: no subscriber misses the queue becoming non-empty.
//!
//! A subscriber that finds nothing waiting (`is_waiting` false) follows only publishes. So
//! once it has seen that, the push that makes the queue non-empty must report it (return
//! true, and its caller wakes the subscriber), whatever readers draining the queue do
//! meanwhile. Review 69 found by reading that a drain could set the flag between a push and
//! its report, so that nobody reported it.
//!
//! Run with `RUSTFLAGS="--cfg seglog_loom" cargo test -p seglog-segment --features sim --test loom_durable_queue`
//! (`.ci/run` does).
#![cfg(seglog_loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loom::sync::Arc;
use seglog_segment::DurableQueue;

#[test]
fn a_subscriber_that_saw_nothing_waiting_hears_of_the_next_push() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let queue = Arc::new(DurableQueue::default());
        // One item waits, durable already at LSN 1; the next (LSN 2) will not be yet.
        queue.push(1, 1u64);
        let drainers: Vec<_> = (0..2)
            .map(|_| {
                let queue = queue.clone();
                loom::thread::spawn(move || queue.take_through(1))
            })
            .collect();
        let pusher = {
            let queue = queue.clone();
            loom::thread::spawn(move || queue.push(2, 2u64))
        };
        // The subscriber's look.
        let saw_nothing_waiting = !queue.is_waiting();
        for d in drainers {
            d.join().unwrap();
        }
        let reported = pusher.join().unwrap();
        assert!(
            !saw_nothing_waiting || reported,
            "the subscriber saw nothing waiting, and the push of LSN 2 was not reported"
        );
        assert!(queue.is_waiting(), "LSN 2 still waits");
    });
}
