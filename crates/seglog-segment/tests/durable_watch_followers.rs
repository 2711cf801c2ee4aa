//! Followers of the durable watermark (`SegmentLog::durable_watch`): one follower's waker
//! that panics strands no other follower.
//!
//! Review 57: `durable_watch` handed out tokio's `watch` receiver, so followers' wakers were
//! raw callers' wakers inside it. tokio's `Notify::notify_waiters` takes up to 32 wakers out
//! of its list, marks their waiters notified, then wakes them one by one: a panic in one
//! ended that loop, and every waker after it in the batch was dropped *unwoken*, for good
//! (review 55's defect, fixed then for `Subscription`s only). `durable_watch` now returns a
//! `DurableWatch`, whose waits queue a shielded waker. (On the old code the test could pass
//! by luck about once in 500 runs: tokio spreads followers over 8 queues at random.)
//!
//! Review 58: the shield kept the panic but dropped its *payload* outside the catch. The
//! payload is the caller's value (`std::panic::panic_any`) and its `Drop` the caller's code:
//! a payload whose drop panicked unwound through the shield into tokio's loop (3–11 of 48
//! stranded). It is now dropped under a catch too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::waiting::{open_small_log, Panics, PanicsWithBomb};
use seglog_segment::io::sim::SimFs;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type Changed =
    Pin<Box<dyn Future<Output = Result<(), tokio::sync::watch::error::RecvError>> + Send>>;

/// A follower polled with `bad` first, 48 well-behaved ones behind it, three commits: every
/// well-behaved follower is woken.
fn no_follower_is_stranded_behind(bad: Waker) {
    let fs = SimFs::new();
    let log = open_small_log(&fs);

    let mut bad_rx = log.durable_watch();
    let mut first: Changed = Box::pin(async move { bad_rx.changed().await });
    assert!(first
        .as_mut()
        .poll(&mut Context::from_waker(&bad))
        .is_pending());

    // Behind it: well-behaved followers (tokio spreads them over its 8 `Notify`s at random;
    // with 48 of them some share the bad one's).
    let mut good: Vec<(Changed, Arc<Flag>)> = Vec::new();
    for _ in 0..48 {
        let mut rx = log.durable_watch();
        let mut fut: Changed = Box::pin(async move { rx.changed().await });
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        good.push((fut, flag));
    }

    // The watermark moves, several times.
    for _ in 0..3 {
        let a = log.submit(common::waiting::record(&log, 5)).unwrap();
        log.wait_durable(a.lsn).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));

    let mut stranded = 0;
    for (fut, flag) in &mut good {
        if !flag.0.load(Ordering::SeqCst) {
            // Never woken; yet its watermark has moved: a poll finds it ready.
            let ready = matches!(
                fut.as_mut().poll(&mut Context::from_waker(Waker::noop())),
                Poll::Ready(Ok(()))
            );
            assert!(ready, "a follower not woken is not ready either");
            stranded += 1;
        }
    }
    assert_eq!(
        stranded, 0,
        "{stranded} of 48 followers of durable_watch() were never woken although the \
         watermark moved: another follower's waker ended tokio's wake-up loop"
    );
    assert_eq!(log.poisoned(), None);
}

#[test]
fn a_followers_panicking_waker_strands_no_other_follower() {
    no_follower_is_stranded_behind(Waker::from(Arc::new(Panics)));
}

#[test]
fn a_followers_panic_payload_strands_no_other_follower() {
    no_follower_is_stranded_behind(Waker::from(Arc::new(PanicsWithBomb)));
}
