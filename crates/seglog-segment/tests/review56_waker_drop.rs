//! Review 56: a caller's waker was contained when *woken*, but not when *dropped*. The sweep
//! keeps a relayed group (and with it each root future's waker) in
//! `CommitState::relayed_group` until the next acknowledgement, so the last reference to a
//! root future's waker is routinely dropped by the leader, at the end of `Wakeups::wake`, on
//! the leader's thread, a round after its owner finished and dropped everything. A waker
//! whose drop panicked (caller code, like its `wake`) unwound out of the leader after it
//! published with `leads_again`: the leader's seat was never given back, the leader's own
//! append (another caller's, durable rounds ago) panicked, and every later append hung for
//! good. Wakers are now kept as `CallerWaker`s, whose drop is contained too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::waiting::open_small_log;
use seglog_segment::io::sim::SimFs;
use seglog_segment::SegmentLog;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

fn record(log: &SegmentLog<SimFs>) -> seglog_segment::format::EncodedRecord {
    common::waiting::record(log, 5)
}

/// A waker whose wake does nothing and whose drop panics once armed (caller code: say, an
/// executor's debug check that its wakers die on its own thread).
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

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Spawns a blocking appender; its outcome (or its panic) arrives on the channel.
fn blocking_appender(
    log: &SegmentLog<SimFs>,
) -> (
    u64,
    mpsc::Receiver<Result<seglog_segment::Result<()>, String>>,
) {
    let (tx, rx) = mpsc::channel();
    let a = log.submit(record(log)).unwrap();
    let log = log.clone();
    std::thread::spawn(move || {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| log.wait_durable(a.lsn)))
                .map_err(|p| {
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default()
                });
        let _ = tx.send(outcome);
    });
    (a.lsn, rx)
}

#[test]
fn a_root_futures_waker_dropped_by_the_sweep_strands_nobody() {
    let fs = SimFs::new();
    let log = open_small_log(&fs);
    fs.set_sync_latency(Duration::from_millis(300));

    // Round 1: L leads it (a blocking appender), and keeps leading while records queue.
    let (l_lsn, l_rx) = blocking_appender(&log);
    std::thread::sleep(Duration::from_millis(50));

    // Queued for round 2: a root future (polled outside tokio) heading a blocking appender.
    let armed = Arc::new(AtomicBool::new(false));
    let waker = Waker::from(Arc::new(PanicsOnDrop(armed.clone())));
    let mine = log.submit(record(&log)).unwrap();
    let mut wait = Box::pin(log.wait_durable_async(mine.lsn));
    assert!(wait
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let (t1_lsn, t1_rx) = blocking_appender(&log);
    assert!(t1_lsn > mine.lsn);

    // Round 1 publishes; L leads round 2 at once. During its fsync, a record for round 3.
    wait_until("round 1", || log.durable_lsn() >= l_lsn);
    std::thread::sleep(Duration::from_millis(50));
    let (_t3_lsn, t3_rx) = blocking_appender(&log);

    // Round 2 publishes [root, T1]; L leads round 3. The root future completes, relays to
    // T1, and its owner drops everything: its waker now lives only in the relayed group.
    wait_until("round 2", || log.durable_lsn() >= t1_lsn);
    loop {
        match wait.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(r) => {
                r.unwrap();
                break;
            }
            Poll::Pending => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    drop(wait);
    t1_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("T1 hung")
        .expect("T1 panicked")
        .unwrap();
    armed.store(true, Ordering::SeqCst);
    // If ours is the last reference, the panic is ours (the owner's own problem), here; it is
    // not while the sweep's copy of the relayed group still holds the waker.
    let ours = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(waker)));
    eprintln!("the owner's drop of its waker panicked: {}", ours.is_err());

    // During round 3's fsync, one more record: round 3's publish leads again.
    std::thread::sleep(Duration::from_millis(50));
    let (_t4_lsn, t4_rx) = blocking_appender(&log);

    let t3 = t3_rx.recv_timeout(Duration::from_secs(30));
    let l = l_rx.recv_timeout(Duration::from_secs(30));
    let t4 = t4_rx.recv_timeout(Duration::from_secs(10));
    // A later caller.
    let (_t5_lsn, t5_rx) = blocking_appender(&log);
    let t5 = t5_rx.recv_timeout(Duration::from_secs(10));
    eprintln!("T3: {t3:?}\nL (leader, durable in round 1): {l:?}\nT4: {t4:?}\nT5: {t5:?}");
    assert!(
        matches!(l, Ok(Ok(Ok(())))),
        "the leader's own append (durable in round 1) did not return Ok: {l:?}"
    );
    assert!(matches!(t4, Ok(Ok(Ok(())))), "T4 stranded: {t4:?}");
    assert!(
        matches!(t5, Ok(Ok(Ok(())))),
        "a later append stranded: {t5:?}"
    );
}
