//! Review 148: `Log::close_async` still hands a *claimed* close to tokio's blocking pool
//! (`log.rs`: `close_gate.claim()`, then `runtime.spawn_blocking(move || claim.run())`).
//! From the claim on, every sync `close` waits at the gate (`CloseGate::enter(true)` on
//! `Closing(None)`) for the claimed close to run. A sync close already on a pool thread (a
//! drop guard, the case `review146_sync_close_on_pool.rs` names) then holds that thread while
//! it waits for a task queued behind it on the same full pool: the claimed close never runs,
//! and both closes hang — the deadlock the round runner removed for commit rounds, kept for
//! the close that leads the drain's rounds and then holds the leader's seat for good.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::time::Duration;

#[test]
fn an_async_close_claimed_while_the_pool_is_full_does_not_hang_a_sync_close_on_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let log = Log::open(dir.path(), Options::default()).await.unwrap();
        log.append("e", "t", b"before").await.unwrap();
        // The pool's one thread: blocking work that ends by closing the log (a drop guard).
        let sync_close = {
            let log = log.clone();
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(300));
                log.close()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The shutdown path closes asynchronously meanwhile: the close is claimed now and
        // queued on the (full) pool.
        let async_close = log.close_async();
        let all = async { (async_close.await, sync_close.await.unwrap()) };
        tokio::time::timeout(Duration::from_secs(10), all).await
    });
    rt.shutdown_background();
    let (first, second) = outcome.expect(
        "close_async and a sync close on the blocking pool never returned: the sync close \
         waits at the gate for the claimed close, which waits for the pool thread it holds",
    );
    first.unwrap();
    second.unwrap();
}
