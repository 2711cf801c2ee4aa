//! The async API outside a tokio runtime (another executor, or a plain `block_on`): `open`,
//! `compact`, `backup` and `open_read_only` run their blocking work in place instead of
//! panicking for want of tokio's blocking pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::Plan;
use seglog::{CompactOptions, Log, Options};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A minimal executor: polls `f` on this thread, parking between wake-ups.
fn block_on<T>(f: impl Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn the_async_api_works_without_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    block_on(async {
        let log = Log::open(&path, Options::default()).await.unwrap();
        log.append("e", "t", b"one").await.unwrap();
        log.append("doomed", "t", b"two").await.unwrap();
        let plan = Plan {
            drop_executions: ["doomed".to_owned()].into(),
            ..Default::default()
        };
        let report = log.compact(plan, CompactOptions::default()).await.unwrap();
        assert_eq!(report.events_dropped, 1);
        log.backup(dir.path().join("copy")).await.unwrap();
        let reader = Log::open_read_only(&path).await.unwrap();
        assert_eq!(reader.read("e").unwrap().len(), 1);
        log.close().unwrap();
    });
}
