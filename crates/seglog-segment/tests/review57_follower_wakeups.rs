//! Review 57: `notify_followers` only *contained* a panic of a durable-watermark follower's
//! waker. The followers' wakers were still raw callers' wakers inside tokio's `watch`
//! (`SegmentLog::durable_watch` handed out the receiver), and tokio's
//! `Notify::notify_waiters` takes up to 32 wakers out of the list, marks their waiters
//! notified, then wakes them one by one: a panic in one ended that loop, and every waker
//! after it in the batch was dropped *unwoken*. One follower's panicking waker stranded other
//! followers, whose watermark had moved, for good (review 55's defect, fixed then for
//! `Subscription`s only). `durable_watch` now returns a `DurableWatch`, whose waits queue a
//! shielded waker. (On the old code the test could pass by luck, about once in 500 runs:
//! tokio spreads followers over 8 queues at random.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::waiting::Panics;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
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

#[test]
fn a_followers_panicking_waker_strands_no_other_follower() {
    let fs = SimFs::new();
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    };
    let log = SegmentLog::open(fs, "/log", opts, &mut ()).unwrap().0;

    // First in line: a follower whose waker panics when woken.
    let mut bad_rx = log.durable_watch();
    let mut bad: Changed = Box::pin(async move { bad_rx.changed().await });
    let panics = Waker::from(Arc::new(Panics));
    assert!(bad
        .as_mut()
        .poll(&mut Context::from_waker(&panics))
        .is_pending());

    // Behind it: well-behaved followers (tokio spreads them over its 8 `Notify`s at random;
    // with 48 of them some share the panicking one's).
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
         watermark moved: another follower's panicking waker ended tokio's wake-up loop"
    );
    assert_eq!(log.poisoned(), None);
}
