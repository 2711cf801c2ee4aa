//! Subscriptions to one execution are woken by that execution's appends only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::{Log, Options};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn appends_to_other_executions_do_not_wake_a_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_blocking("a", "t", b"a1").unwrap();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut sub = log.subscribe("a", 0);
    // Catch up: the stored event, then nothing more for now.
    match sub.poll_next_unpin(&mut cx) {
        Poll::Ready(Some(Ok(e))) => assert_eq!(e.seq, 1),
        other => panic!("{other:?}"),
    }
    assert!(sub.poll_next_unpin(&mut cx).is_pending());
    let woken = counter.0.load(Ordering::SeqCst);
    for i in 0..20 {
        log.append_blocking(&format!("other-{}", i % 3), "t", b"x")
            .unwrap();
    }
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        woken,
        "woken by other executions"
    );
    log.append_blocking("a", "t", b"a2").unwrap();
    assert!(
        counter.0.load(Ordering::SeqCst) > woken,
        "not woken by its own execution"
    );
    match sub.poll_next_unpin(&mut cx) {
        Poll::Ready(Some(Ok(e))) => assert_eq!(e.seq, 2),
        other => panic!("{other:?}"),
    }
    // Two subscribers of one execution share its channel; the last one gone removes it,
    // and a new subscription still follows.
    let mut second = log.subscribe("a", 2);
    assert!(second.poll_next_unpin(&mut cx).is_pending());
    drop(sub);
    log.append_blocking("a", "t", b"a3").unwrap();
    match second.poll_next_unpin(&mut cx) {
        Poll::Ready(Some(Ok(e))) => assert_eq!(e.seq, 3),
        other => panic!("{other:?}"),
    }
    drop(second);
    let mut third = log.subscribe("a", 3);
    assert!(third.poll_next_unpin(&mut cx).is_pending());
    let before = counter.0.load(Ordering::SeqCst);
    log.append_blocking("a", "t", b"a4").unwrap();
    assert!(counter.0.load(Ordering::SeqCst) > before);
    // Close ends it.
    log.close().unwrap();
    loop {
        match third.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(Ok(e))) => assert_eq!(e.seq, 4),
            Poll::Ready(None) => break,
            other => panic!("{other:?}"),
        }
    }
}
