//! Review 146 (a hang review 143's close gate made reachable): a second *sync* close run on
//! tokio's blocking pool waits at the gate for the first close, holding its pool thread. The
//! first close's drain needs the commit round an async appender won and handed over; when
//! that round was handed to the same pool, the closes held its last threads and the round
//! never ran: both closes and the append hung. Rounds a task wins now run on the log's own
//! round thread (`round_runner.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::time::Duration;

#[test]
fn an_async_close_a_sync_close_on_the_pool_and_an_async_append_do_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let log = Log::open(dir.path(), Options::default()).await.unwrap();
        log.append("warm", "t", b"w").await.unwrap();
        // The pool's two threads are busy for a while (any blocking work of the application).
        let busy: Vec<_> = (0..2)
            .map(|_| tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(600))))
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // An async close (say, the shutdown path) and a sync one on the pool (a drop guard).
        let first = log.close_async();
        let second = {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.close())
        };
        // An append queued before either close ran: a task wins its round.
        let appender = {
            let log = log.clone();
            tokio::spawn(async move { log.append("e", "t", b"late").await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        for b in busy {
            b.await.unwrap();
        }
        let all = async {
            let a = first.await;
            let b = second.await.unwrap();
            let c = appender.await.unwrap();
            (a, b, c)
        };
        tokio::time::timeout(Duration::from_secs(15), all).await
    });
    rt.shutdown_background();
    eprintln!("closes and append: {outcome:?}");
    let (first, second, append) = outcome.expect(
        "the closes and the append never returned: the first close waits for a round queued \
         on the blocking pool, whose last threads hold it and the second close",
    );
    first.unwrap();
    second.unwrap();
    // Queued before the closes began or refused: never lost once acknowledged.
    if let Ok(seq) = append {
        let reopened = Log::open_blocking(dir.path(), Options::default()).unwrap();
        let events = reopened.read("e").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].seq, &events[0].payload[..]), (seq, &b"late"[..]));
    }
}

/// The older form of the same hang (review 145's notes): on a runtime whose blocking pool
/// has one thread, an async close held it while its drain waited for a round an async
/// appender had handed to that pool.
#[test]
fn an_async_close_and_an_async_append_do_not_hang_on_a_one_thread_pool() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let log = Log::open(dir.path(), Options::default()).await.unwrap();
        log.append("warm", "t", b"w").await.unwrap();
        let busy = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(400)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let close = log.close_async();
        let appender = {
            let log = log.clone();
            tokio::spawn(async move { log.append("e", "t", b"late").await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        busy.await.unwrap();
        let all = async { (close.await, appender.await.unwrap()) };
        tokio::time::timeout(Duration::from_secs(15), all).await
    });
    rt.shutdown_background();
    let (closed, _append) = outcome.expect("the close and the append never returned");
    closed.unwrap();
}
