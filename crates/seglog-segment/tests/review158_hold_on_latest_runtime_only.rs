//! Review 158: the last handle's drop holds only the runtime of the *latest* hand-off
//! (`RoundRunner::hold_runtime_until_led` uses `State::handing_runtime`), not the runtimes
//! whose rounds are still under way.
//!
//! `handing_runtime` is overwritten by every hand-off and cleared only when no claim at all
//! is under way. When two runtimes hand rounds to the same log (a library's own runtime
//! beside the application's, a test harness, a `Runtime::new()` per request in sync code),
//! the one remembered is whichever handed last, even after it is gone. Here runtime A hands a
//! long round (a cancelled append; a 1.5 s fsync); while its fsync is in flight, runtime B
//! hands a second, overlapping round (overlap_min_records = 1) and is then dropped (B's drop
//! returns at once: it has no blocking task). The log's last handle is dropped next:
//! `hold_runtime_until_led` spawns its waiting task on B, which is shut down, so
//! `spawn_blocking` is refused silently and nothing waits. Runtime A's drop, the program's
//! last step, then returns at once too, while A's round still runs: the reopen that follows
//! fails with `Locked`, the very thing review 153's fix promised cannot happen after
//! "a program drops its log and its runtime".
//!
//! Fixed (2026-12-08): the last handle's drop no longer leaves a blocking task, nor waits;
//! an open of the directory in this process waits for the departing log instead
//! (`seglog-segment`'s `departing.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{Error, SegmentLog, SegmentOptions};
use std::future::Future;
use std::time::{Duration, Instant};

const SYNC: Duration = Duration::from_millis(1500);

fn opts() -> SegmentOptions {
    SegmentOptions {
        overlap_min_records: 1,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(payloads: &'a [&'a [u8]]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"x",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads,
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// On `rt`, a spawned task's append, polled once (its round handed to the round runner),
/// then given up; returns once the fsync of a round started after the call has begun.
fn cancelled_append(rt: &tokio::runtime::Runtime, fs: &SimFs, log: &SegmentLog<SimFs>) {
    let syncs_before = fs.syncs_started();
    let log = log.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let payload: [&[u8]; 1] = [b"cancelled"];
            let b = batch(&payload);
            let mut append = std::pin::pin!(log.append_async(&b));
            std::future::poll_fn(|cx| {
                let _ = append.as_mut().poll(cx);
                std::task::Poll::Ready(())
            })
            .await;
        })
        .await
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.syncs_started() == syncs_before {
        assert!(
            Instant::now() < deadline,
            "setup: the handed round's fsync never began"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn dropping_log_and_every_runtime_leaves_the_directory_unlocked() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let warm: [&[u8]; 1] = [b"warm"];
    log.append(&batch(&warm)).unwrap();
    fs.set_sync_latency(SYNC);

    let rt_a = current_thread();
    let rt_b = current_thread();
    cancelled_append(&rt_a, &fs, &log); // A's round: its fsync is in flight
    cancelled_append(&rt_b, &fs, &log); // B's round, beside it
    drop(rt_b);
    drop(log);
    let dropping = Instant::now();
    drop(rt_a);
    let took = dropping.elapsed();

    let reopened = SegmentLog::open(fs.clone(), "/log", opts(), &mut ());
    let locked = matches!(reopened, Err(Error::Locked { .. }));
    drop(reopened);
    std::thread::sleep(SYNC + Duration::from_millis(500));
    assert!(
        !locked,
        "the log and both runtimes were dropped (runtime A's drop took {took:?}), yet the \
         directory is Locked: the last handle's drop held only runtime B, the latest to hand \
         a round and already gone, not A, whose round still ran"
    );
}
