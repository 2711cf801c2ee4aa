//! Review 58: `contain` (the catch_unwind behind `CallerWaker`/`ShieldedWaker`) kept a
//! caller's waker's panic, but then dropped the panic's *payload* outside the catch. The
//! payload is the caller's value (`std::panic::panic_any`), and its `Drop` is the caller's
//! code: when it panicked, that panic unwound out of the shielded waker into tokio's wake-up
//! loop, on the appender's thread, and every follower queued after the bad one was dropped
//! unwoken (review 55/57's defect, back through the payload). The payload is now dropped
//! under a catch too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the caller's panic payload panicked when dropped");
    }
}

struct PanicsWithBomb;
impl Wake for PanicsWithBomb {
    fn wake(self: Arc<Self>) {
        std::panic::panic_any(Bomb);
    }
}

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
fn a_followers_panic_payload_strands_no_other_follower() {
    let fs = SimFs::new();
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    };
    let log = SegmentLog::open(fs, "/log", opts, &mut ()).unwrap().0;

    let mut bad_rx = log.durable_watch();
    let mut bad: Changed = Box::pin(async move { bad_rx.changed().await });
    let bomb = Waker::from(Arc::new(PanicsWithBomb));
    assert!(bad
        .as_mut()
        .poll(&mut Context::from_waker(&bomb))
        .is_pending());

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

    for _ in 0..3 {
        let a = log.submit(common::waiting::record(&log, 5)).unwrap();
        log.wait_durable(a.lsn).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));

    let mut stranded = 0;
    for (fut, flag) in &mut good {
        if !flag.0.load(Ordering::SeqCst) {
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
         watermark moved: the bad follower's panic payload panicked when `contain` dropped \
         it, outside its catch_unwind, and ended tokio's wake-up loop"
    );
    std::mem::forget(bad);
}
