//! Blocking appends run on tokio's blocking pool (`spawn_blocking(|| log.append_blocking(..))`,
//! a common way to call a blocking API from async code) beside async appends from spawned
//! tasks. A task that wins the leader's seat hands its commit round to that same pool
//! (`DurableWait::look`). When every pool thread is a blocking appender asleep waiting for a
//! round, the handed round waits for a pool thread, and the appenders wait for the round
//! (the seat is taken, so none of them leads it): every append hangs for good.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POOL_THREADS: usize = 2;
const TASKS: usize = 4;
const RUN_FOR: Duration = Duration::from_millis(1500);

#[test]
fn async_and_pool_blocking_appenders_do_not_hang_on_a_full_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(POOL_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let appended = Arc::new(AtomicU64::new(0));
    let outcome = rt.block_on({
        let appended = appended.clone();
        async move {
            let log = Log::open(dir.path(), Options::default()).await.unwrap();
            let until = Instant::now() + RUN_FOR;
            let mut handles = Vec::new();
            for t in 0..POOL_THREADS {
                let (log, appended) = (log.clone(), appended.clone());
                handles.push(tokio::task::spawn_blocking(move || {
                    while Instant::now() < until {
                        log.append_blocking(&format!("b{t}"), "t", b"blocking")
                            .unwrap();
                        appended.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let (log, appended) = (log.clone(), appended.clone());
                    tokio::spawn(async move {
                        while Instant::now() < until {
                            log.append(&format!("a{t}"), "t", b"async").await.unwrap();
                            appended.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            let all = async {
                for h in handles {
                    h.await.unwrap();
                }
                for t in tasks {
                    t.await.unwrap();
                }
            };
            let done = tokio::time::timeout(RUN_FOR + Duration::from_secs(15), all).await;
            if done.is_ok() {
                log.close_async().await.unwrap();
            }
            done
        }
    });
    let appended = appended.load(Ordering::Relaxed);
    rt.shutdown_background();
    assert!(
        outcome.is_ok(),
        "the appenders hung after {appended} appends: a round handed to the blocking pool \
         waits behind blocking appenders that wait for it"
    );
    assert!(appended > 0);
}
