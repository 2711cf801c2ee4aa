//! Review 145: `Log::close_async` runs the close on tokio's blocking pool. Since review 143
//! a second close waits (close_gate.rs) for the first one, holding its pool thread all the
//! while; before, it returned at once. The first close's drain may need a commit round that
//! an async appender claimed and handed to the same pool (`DurableWait::look`:
//! `spawn_blocking(move || claim.lead())`): the seat is taken, so the first close cannot lead
//! the round itself (`try_claim` fails) and sleeps until that task runs. When the first close
//! and the waiting second close hold the pool's last threads, the round never runs: both
//! closes and the append hang for good.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::time::Duration;

#[test]
fn two_async_closes_and_an_async_append_do_not_hang_on_a_small_blocking_pool() {
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
        // Two closes (a shutdown path and, say, a drop guard), queued on the pool.
        let first = log.close_async();
        let second = log.close_async();
        // An append queued before either close ran: its round is claimed and handed to the
        // pool, behind the two closes.
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
            let b = second.await;
            let c = appender.await.unwrap();
            (a, b, c)
        };
        tokio::time::timeout(Duration::from_secs(15), all).await
    });
    rt.shutdown_background();
    eprintln!("closes and append: {outcome:?}");
    assert!(
        outcome.is_ok(),
        "the closes and the append never returned: the first close waits for a round queued on \
         the blocking pool, whose last threads hold it and the second close waiting for it"
    );
}
