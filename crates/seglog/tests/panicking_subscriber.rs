//! A subscriber whose task's waker panics when woken (a bug in some executor or in the
//! subscriber's own code) is its own problem: the appends that wake it — other callers', on
//! their threads — must still return Ok. Before, the panic unwound out of the appender's
//! call after its event was durable and visible, and the notifications after it were skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::{Log, Options};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

struct Panics;

impl Wake for Panics {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics when woken");
    }
}

fn append_elsewhere(log: &Log, execution: &str) -> Result<seglog::Result<u64>, ()> {
    let (log, execution) = (log.clone(), execution.to_owned());
    std::thread::spawn(move || log.append_blocking(&execution, "t", b"event"))
        .join()
        .map_err(|_| ())
}

#[test]
fn a_subscriber_with_a_panicking_waker_fails_no_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    let waker = Waker::from(Arc::new(Panics));
    let mut cx = Context::from_waker(&waker);
    let mut one = log.subscribe("watched", 0);
    let mut all = log.subscribe_global(0);
    assert!(one.poll_next_unpin(&mut cx).is_pending());
    assert!(all.poll_next_unpin(&mut cx).is_pending());
    for execution in ["watched", "other", "watched"] {
        let outcome = append_elsewhere(&log, execution);
        assert!(
            matches!(outcome, Ok(Ok(_))),
            "an append to {execution:?} failed or panicked because a subscriber's waker panicked: {outcome:?}"
        );
    }
    assert_eq!(log.read("watched").unwrap().len(), 2);
    log.close().unwrap();
}
