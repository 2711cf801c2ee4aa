//! Review 11 findings (per-execution wake-ups, close_async, subscriptions across erasure): each
//! failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::{Log, Options};
type Subscription<T> = seglog::Subscription<T>;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

/// A waker whose wake drops a subscription it holds (as an executor does when a woken
/// task's last reference goes, or a combinator that drops a losing branch on wake).
struct DroppingWaker {
    victim: Mutex<Option<Subscription<seglog::Event>>>,
    woken: AtomicUsize,
}

impl Wake for DroppingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
        let victim = self.victim.lock().unwrap().take();
        drop(victim); // Cursor::drop -> ExecutionWatchers::release -> by_execution.lock()
    }
}

/// FINDING: `ExecutionWatchers::notify` / `notify_all` call `send_modify` (which runs the
/// subscribers' wakers synchronously) while holding `by_execution`'s (non-reentrant)
/// parking_lot mutex; a waker that drops (or creates) a subscription of the same log then
/// re-enters `release` (or `watch`) on the same thread and deadlocks the appender.
#[test]
fn a_waker_that_drops_a_subscription_deadlocks_the_appender() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    let waker_state = Arc::new(DroppingWaker {
        victim: Mutex::new(Some(log.subscribe("b", 0))),
        woken: AtomicUsize::new(0),
    });
    let waker = Waker::from(waker_state.clone());
    let mut cx = Context::from_waker(&waker);
    let mut sub = log.subscribe("a", 0);
    assert!(sub.poll_next_unpin(&mut cx).is_pending());
    let (tx, rx) = std::sync::mpsc::channel();
    let appender = {
        let log = log.clone();
        std::thread::spawn(move || {
            let r = log.append_blocking("a", "t", b"x");
            let _ = tx.send(r.is_ok());
        })
    };
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(ok) => {
            assert!(ok);
            appender.join().unwrap();
        }
        Err(_) => {
            let woken = waker_state.woken.load(Ordering::SeqCst);
            // Unwinding would drop these, and block on the same mutex: leak them.
            std::mem::forget(sub);
            std::mem::forget(waker);
            std::mem::forget(waker_state);
            std::mem::forget(log);
            std::mem::forget(appender);
            panic!(
                "append_blocking has not returned after 10s: deadlocked in notify -> wake -> \
                 Cursor::drop -> release (woken {woken} times)"
            )
        }
    }
}

/// FINDING: `close_async`'s documented cancel safety ("Dropping the future does not stop
/// the close ... the log is closed either way") does not hold for a future dropped before
/// its first poll (e.g. the losing branch of a `select!` whose other branch was ready on
/// its first poll): nothing runs, the log stays open and keeps its directory lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_async_dropped_before_its_first_poll_leaves_the_log_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).await.unwrap();
    tokio::select! {
        biased;
        _ = std::future::ready(()) => {}
        _ = log.close_async() => panic!("not reached"),
    }
    // The close runs on the blocking pool: give a loaded machine time to schedule it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !log.is_closed() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        log.is_closed(),
        "close_async's future was dropped and the log is still open (documented: closed either way)"
    );
}

/// FINDING (not introduced by c4bfbe2, but on the path it reworked): a subscription follows
/// an execution *name* across compaction erasing it and another tenant creating it again.
/// It silently skips the new incarnation's first events and hands out the rest, although the
/// chunked reader reports `Error::Erased` for the same situation and the new events belong to
/// another tenant.
#[test]
fn a_subscription_crosses_an_erase_into_another_tenant_s_execution() {
    use seglog::compaction::policy;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    let waker = Waker::from(Arc::new(Counting::default()));
    let mut cx = Context::from_waker(&waker);
    log.append_blocking("x", "tenant-a", b"a1").unwrap();
    log.append_blocking("x", "tenant-a", b"a2").unwrap();
    let mut sub = log.subscribe("x", 0);
    for want in [1u64, 2] {
        match sub.poll_next_unpin(&mut cx) {
            std::task::Poll::Ready(Some(Ok(e))) => assert_eq!(e.seq, want),
            other => panic!("{other:?}"),
        }
    }
    assert!(sub.poll_next_unpin(&mut cx).is_pending());
    let view = log.compaction_view(false).unwrap();
    let plan = policy::drop_executions(&view, ["x"]);
    log.compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    for p in [&b"b1"[..], b"b2", b"b3-secret"] {
        log.append_blocking("x", "tenant-b", p).unwrap();
    }
    match sub.poll_next_unpin(&mut cx) {
        std::task::Poll::Ready(Some(Ok(e))) => panic!(
            "tenant-a's subscription yielded tenant-b's event seq {} {:?} (b1, b2 skipped)",
            e.seq,
            String::from_utf8_lossy(&e.payload)
        ),
        std::task::Poll::Ready(Some(Err(seglog::Error::Erased { execution }))) => {
            assert_eq!(execution, "x");
        }
        other => panic!("expected Erased, got {other:?}"),
    }
    assert!(matches!(
        sub.poll_next_unpin(&mut cx),
        std::task::Poll::Ready(None)
    ));
}

#[derive(Default)]
struct Counting(AtomicUsize);
impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
