//! Review 55: a subscriber whose waker panics must not starve the other subscribers. The
//! log's channels are tokio's `watch`: a panicking waker ends `Notify::notify_waiters` for the
//! shard it sits on (1 in 8, at random), and every subscriber that registered after it there
//! had its waker dropped unwoken and was unlinked from the list, so no later append reached
//! it either (~25 of 200 here, before `Subscription` handed the channels a waker that keeps
//! the caller's panic).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::{Log, Options};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

struct Panics;
impl Wake for Panics {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics when woken");
    }
}

#[derive(Default)]
struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn append_elsewhere(log: &Log, execution: &str) {
    let (log, execution) = (log.clone(), execution.to_owned());
    std::thread::spawn(move || log.append_blocking(&execution, "t", b"event"))
        .join()
        .expect("an append panicked")
        .expect("an append failed");
}

#[test]
fn well_behaved_subscribers_are_woken_when_another_subscribers_waker_panics() {
    const SUBSCRIBERS: usize = 200; // P(none on the panicking one's shard) = (7/8)^200 ~ 3e-12
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();

    let panics = Waker::from(Arc::new(Panics));
    let mut bad = log.subscribe("watched", 0);
    assert!(bad
        .poll_next_unpin(&mut Context::from_waker(&panics))
        .is_pending());

    let mut good: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| {
            let mut s = log.subscribe("watched", 0);
            let flag = Arc::new(Flag::default());
            let waker = Waker::from(flag.clone());
            assert!(s
                .poll_next_unpin(&mut Context::from_waker(&waker))
                .is_pending());
            (s, flag)
        })
        .collect();

    for _ in 0..3 {
        append_elsewhere(&log, "watched");
    }
    assert_eq!(log.read("watched").unwrap().len(), 3);

    let mut never_woken = 0;
    for (s, flag) in &mut good {
        if !flag.0.load(Ordering::SeqCst) {
            never_woken += 1;
            let other = Waker::from(Arc::new(Flag::default()));
            assert!(
                matches!(
                    s.poll_next_unpin(&mut Context::from_waker(&other)),
                    Poll::Ready(Some(Ok(_)))
                ),
                "not woken, and no event ready either?"
            );
        }
    }
    assert_eq!(
        never_woken, 0,
        "{never_woken} of {SUBSCRIBERS} well-behaved subscribers of \"watched\" were never woken \
         after 3 durable, visible appends to it: another subscriber's waker panicked inside \
         tokio's notify_waiters, which dropped their wakers"
    );
    drop(good);
    drop(bad);
    log.close().unwrap();
}
