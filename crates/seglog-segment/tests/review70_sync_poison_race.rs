//! Review 70: `sync` under `SyncMode::Never` fsyncs the active segment itself
//! (`sync_written.rs`), outside the commit rounds' ticket order. Two such fsyncs of one
//! segment are not ordered against each other's result: when one fails (fsyncgate: the
//! dirty pages are marked clean, the error is reported once per open file), the other,
//! made through the same open file after it, returns Ok having written nothing, and its
//! `sync` returns Ok unless the failing thread has already poisoned the log. Nothing holds
//! the second back until the first has published its failure.
//!
//! The window between the failed fdatasync and `poison` taking the commit lock is widened
//! here by a tracing subscriber that is slow on error events (a slow log sink, or the
//! thread simply being preempted there on a loaded machine): `poison` logs its error before
//! it takes the lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::never::{batch, opts, payload, recovered};
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::SegmentLog;
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// A subscriber that takes its time over error events (and ignores everything else).
struct SlowOnErrors;

impl tracing::Subscriber for SlowOnErrors {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_sync_racing_a_failed_sync_never_returns_ok_for_lost_records() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let log = Arc::new(log);
    let mut last = 0;
    for i in 1..=5u64 {
        let p = payload(i);
        let appended = log.submit(log.encode(&batch(i, &p)).unwrap()).unwrap();
        log.wait_durable(appended.lsn).unwrap();
        last = appended.lsn;
    }
    // Both syncs are inside their fdatasync at once; the first of the two to reach the disk
    // fails (one-shot EIO), the other follows it.
    fs.set_sync_latency(Duration::from_millis(30));
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let log = log.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                tracing::subscriber::with_default(SlowOnErrors, || {
                    barrier.wait();
                    log.sync()
                })
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    fs.set_sync_latency(Duration::ZERO);
    let returned_ok: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    let after_cut: Vec<u64> = recovered(&fs.crash(CrashMode::LoseUnsynced))
        .into_iter()
        .map(|(lsn, _)| lsn)
        .collect();
    for through in returned_ok {
        assert!(
            (1..=through).all(|lsn| after_cut.contains(&lsn)),
            "sync returned Ok({through}) (results {results:?}), yet after a power cut the log holds only LSNs {after_cut:?} (records through {last} were appended)"
        );
    }
}
