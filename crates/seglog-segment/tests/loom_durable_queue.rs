//! `DurableQueue` under loom.
//!
//! - No subscriber misses the queue becoming non-empty. A subscriber that finds nothing
//!   waiting (`is_waiting` false) follows only publishes, so once it has seen that, the push
//!   that makes the queue non-empty must report it (return true, and its caller wakes the
//!   subscriber), whatever readers draining the queue do meanwhile. Review 69 found by
//!   reading that a drain could set the flag between a push and its report.
//! - A `sync` sees what a concurrent drain took. `sync` drains the queue through the
//!   watermark it made durable and returns; an item another reader took just before must
//!   be published by then (read-your-writes after `sync`). Review 95 found by reading that
//!   the drain published after it let go of the queue.
//! - Every item is taken exactly once.
//!
//! Run with `RUSTFLAGS="--cfg seglog_loom" cargo test -p seglog-segment --features sim --test loom_durable_queue`
//! (`.ci/run` does).
#![cfg(seglog_loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loom::sync::atomic::{AtomicU64, Ordering};
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
                loom::thread::spawn(move || queue.take_through(1, |_| {}))
            })
            .collect();
        let pusher = {
            let queue = queue.clone();
            loom::thread::spawn(move || queue.push(2, 2u64))
        };
        // The subscriber's look.
        let saw_nothing_waiting = !queue.is_waiting();
        let taken: Vec<u64> = drainers
            .into_iter()
            .flat_map(|d| d.join().unwrap())
            .collect();
        let reported = pusher.join().unwrap();
        assert_eq!(taken, [1], "LSN 1 taken exactly once, LSN 2 not yet");
        assert!(
            !saw_nothing_waiting || reported,
            "the subscriber saw nothing waiting, and the push of LSN 2 was not reported"
        );
        assert!(queue.is_waiting(), "LSN 2 still waits");
        assert_eq!(queue.take_through(2, |_| {}), [2]);
    });
}

#[test]
fn a_sync_sees_what_a_concurrent_drain_took() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let queue = Arc::new(DurableQueue::default());
        // What readers see: the highest LSN published (a `fetch_max`, as `Visibility`).
        let visible = Arc::new(AtomicU64::new(0));
        queue.push(1, 1u64);
        let reader = {
            let (queue, visible) = (queue.clone(), visible.clone());
            loom::thread::spawn(move || {
                queue.take_through(1, |lsn| {
                    visible.fetch_max(*lsn, Ordering::AcqRel);
                })
            })
        };
        // The `sync` that made LSN 1 durable drains through it, then reads its own write.
        let own = queue.take_through(1, |lsn| {
            visible.fetch_max(*lsn, Ordering::AcqRel);
        });
        assert_eq!(
            visible.load(Ordering::Acquire),
            1,
            "sync returned before LSN 1 was visible (it took {own:?}; another reader took it)"
        );
        let theirs = reader.join().unwrap();
        assert_eq!(own.len() + theirs.len(), 1, "LSN 1 taken exactly once");
    });
}
