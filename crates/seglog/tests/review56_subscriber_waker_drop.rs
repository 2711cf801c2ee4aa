//! Review 56: `Contained` (the waker a `Subscription` hands the log's channels) caught a
//! panic in the caller's waker's *wake*, not in its *drop*: when tokio's notify loop held the
//! last reference to a subscription's contained waker (the subscription was dropped while the
//! loop ran), the caller's waker was dropped on the appender's thread, inside `send_modify`,
//! and its panic unwound out of another caller's append, after that append's event was
//! durable and visible. It now keeps the caller's waker as a `CallerWaker`, whose drop is
//! contained too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::{Log, Options};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

/// Wakes nothing; panics when dropped once armed.
struct PanicsOnDrop(Arc<AtomicBool>);
impl Wake for PanicsOnDrop {
    fn wake(self: Arc<Self>) {}
}
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.0.load(Ordering::SeqCst) && !std::thread::panicking() {
            panic!("this waker panics when dropped");
        }
    }
}

/// On its first wake, tells the test and waits until it says go (a slow waker: it holds the
/// notify loop, as any waker that takes a while does).
struct Holds {
    woke: Mutex<Option<mpsc::Sender<()>>>,
    go: Arc<(Mutex<bool>, Condvar)>,
}
impl Wake for Holds {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(tx) = self.woke.lock().unwrap().take() {
            let _ = tx.send(());
            let (m, cv) = &*self.go;
            let g = m.lock().unwrap();
            let _ = cv
                .wait_timeout_while(g, Duration::from_secs(10), |go| !*go)
                .unwrap();
        }
    }
}

#[test]
fn a_subscription_dropped_while_the_appender_notifies_fails_no_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_blocking("e", "t", b"first").unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let go = Arc::new((Mutex::new(false), Condvar::new()));
    let (woke_tx, woke_rx) = mpsc::channel();
    let mut holders = Vec::new();
    let mut dropped = Vec::new();
    for _ in 0..24 {
        let h = Waker::from(Arc::new(Holds {
            woke: Mutex::new(Some(woke_tx.clone())),
            go: go.clone(),
        }));
        let mut s = log.subscribe("e", 1);
        assert!(s.poll_next_unpin(&mut Context::from_waker(&h)).is_pending());
        holders.push((s, h));
        let w = Waker::from(Arc::new(PanicsOnDrop(armed.clone())));
        let mut s = log.subscribe("e", 1);
        assert!(s.poll_next_unpin(&mut Context::from_waker(&w)).is_pending());
        dropped.push((s, w));
    }
    let appender = {
        let log = log.clone();
        std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                log.append_blocking("e", "t", b"second")
            }))
            .map_err(|_| "panicked")
        })
    };
    woke_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the append woke no subscriber");
    // The appender's thread is inside tokio's notify loop. Drop the other subscriptions now
    // (a drop that panics here is the owner's own, and fine).
    armed.store(true, Ordering::SeqCst);
    for (s, w) in dropped {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            drop(s);
            drop(w);
        }));
    }
    {
        let (m, cv) = &*go;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    let outcome = appender.join().unwrap();
    assert!(
        matches!(outcome, Ok(Ok(_))),
        "another caller's append (durable and visible) failed or panicked because a dropped \
         subscriber's waker panicked on its thread: {outcome:?}"
    );
    assert_eq!(log.read("e").unwrap().len(), 2);
    drop(holders);
}
