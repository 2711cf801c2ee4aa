//! A subscriber is woken by an append whose caller stopped waiting for it (a cancelled async
//! append) once that append is durable, even when nothing else reads the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::{FutureExt, StreamExt};
use seglog::io::sim::SimFs;
use seglog::{Log, Options};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_append_that_becomes_durable_wakes_a_subscriber() {
    let fs = SimFs::new();
    fs.set_sync_latency(Duration::from_millis(200));
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    let mut events = Box::pin(log.subscribe("exec", 0));
    // The subscriber finds nothing and waits.
    assert!(events.next().now_or_never().is_none());
    // Another appender leads a commit round and sits in its fsync (an async appender that
    // finds no leader runs the round itself, within its poll).
    let writes_before = fs.op_count(seglog::io::sim::Op::Write);
    let leader = {
        let log = log.clone();
        std::thread::spawn(move || log.append_blocking("other", "tenant", b"leader"))
    };
    // Wait until it has written its record (it is in its fsync now): no sleep, a loaded
    // machine may not have scheduled it yet.
    while fs.op_count(seglog::io::sim::Op::Write) == writes_before {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The append is submitted, queued for the next round, and its caller goes away.
    assert!(log
        .append("exec", "tenant", b"cancelled")
        .now_or_never()
        .is_none());
    let event = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("the subscriber was never woken")
        .expect("the stream ended")
        .unwrap();
    assert_eq!((event.seq, &event.payload[..]), (1, &b"cancelled"[..]));
    assert_eq!(leader.join().unwrap().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_after_the_last_possible_sequence_neither_panics_nor_yields() {
    let log = Log::open_with_fs(SimFs::new(), "/log", Options::default()).unwrap();
    log.append("exec", "tenant", b"one").await.unwrap();
    let mut events = Box::pin(log.subscribe("exec", u64::MAX));
    assert!(events.next().now_or_never().is_none());
    log.close().unwrap();
    assert!(
        events.next().await.is_none(),
        "the stream ends with the log"
    );
}
