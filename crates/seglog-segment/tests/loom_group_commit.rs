//! The group-commit coordinator under loom: every interleaving (up to a preemption bound) of
//! a few appenders that submit, lead, hand leadership over, park and wake.
//!
//! Run with `RUSTFLAGS="--cfg seglog_loom" cargo test -p seglog-segment --features sim --test loom_group_commit`
//! (`.ci/run` does). `LOOM_MAX_PREEMPTIONS` (default here 3) widens the search.
//!
//! Checked, in every explored interleaving:
//! - no lost wake-up: every appender returns (loom reports a deadlock otherwise);
//! - no ack of the wrong group: when an append returns Ok, the durable watermark covers its
//!   LSN, and after a power cut the record is there;
//! - errors reach every waiter: with every fdatasync failing, every append returns an error,
//!   none returns Ok, none hangs;
//! - with rounds overlapping, one failed fsync (and later ones succeeding) still fails every
//!   appender: the later round's fsync goes through a second handle, which hears of the
//!   failure too, and its result publishes only after the failed round's (in order);
//! - root futures (`block_on`) relay wake-ups like threads: with async and blocking appenders
//!   mixed, none is stranded, and none is acknowledged before durable.
//!
//! Rounds may overlap from one queued record on (`overlap_min_records: 1`), so the models
//! explore two fsyncs in flight.
#![cfg(seglog_loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::Arc;

const APPENDERS: u64 = 3;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 1024,
        overlap_min_records: 1,
        ..SegmentOptions::default()
    }
}

fn append(log: &SegmentLog<SimFs>, i: u64) -> seglog_segment::Result<u64> {
    let payload = format!("appender {i}");
    let appended = log.append(&EventBatch {
        encoding: 0,
        execution_id: format!("exec-{i}").as_bytes(),
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[payload.as_bytes()],
    })?;
    Ok(appended.lsn)
}

/// Polls `future` on this loom thread until it is ready, parking in between (a `block_on`).
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    struct Unpark(loom::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(loom::thread::current())));
    let mut future = std::pin::pin!(future);
    loop {
        match future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker))
        {
            std::task::Poll::Ready(value) => return value,
            std::task::Poll::Pending => loom::thread::park(),
        }
    }
}

/// Like [`append`], through the async API, driven by [`block_on`] (a root future: it relays
/// its group's wake-ups).
fn append_root_future(log: &SegmentLog<SimFs>, i: u64) -> seglog_segment::Result<u64> {
    let payload = format!("appender {i}");
    let execution = format!("exec-{i}");
    let batch = EventBatch {
        encoding: 0,
        execution_id: execution.as_bytes(),
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[payload.as_bytes()],
    };
    Ok(block_on(log.append_async(&batch))?.lsn)
}

/// A loom thread with room for opening and recovering a log (loom's default stack is small).
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> loom::thread::JoinHandle<T> {
    loom::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(f)
        .unwrap()
}

/// Explores `f` under loom; returns how many interleavings it ran.
fn model(f: impl Fn() + Sync + Send + 'static) -> usize {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let f = std::sync::Arc::new(f);
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let f = f.clone();
        spawn(move || f()).join().unwrap();
    });
    let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("loom explored {runs} interleavings");
    runs
}

/// A root future whose owner stalls (review 56): the append's wait is polled once with a
/// waker that does nothing, then its thread blocks on the same LSN; the future goes last.
/// It relays nothing it is handed: the sweep must strand nobody.
fn append_stalled_root_then_blocking(
    log: &SegmentLog<SimFs>,
    i: u64,
) -> seglog_segment::Result<u64> {
    use std::future::Future;
    let payload = format!("appender {i}");
    let appended = log.submit(log.encode(&EventBatch {
        encoding: 0,
        execution_id: format!("exec-{i}").as_bytes(),
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[payload.as_bytes()],
    })?)?;
    let mut wait = Box::pin(log.wait_durable_async(appended.lsn));
    let _ = wait
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    log.wait_durable(appended.lsn)?;
    drop(wait);
    Ok(appended.lsn)
}

type Appender = fn(&SegmentLog<SimFs>, u64) -> seglog_segment::Result<u64>;

/// Appender 0 appends blocking, the others through `others`: every append returns (no lost
/// wake-up), none before its record is durable, and every record survives a power cut.
fn every_appender_acknowledged_once_durable(others: Appender) -> usize {
    appenders_acknowledged_once_durable(append, others)
}

/// As [`every_appender_acknowledged_once_durable`], appender 0 through `first`.
fn appenders_acknowledged_once_durable(first: Appender, others: Appender) -> usize {
    model(move || {
        let fs = SimFs::new();
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        let log = Arc::new(log);
        let threads: Vec<_> = (1..APPENDERS)
            .map(|i| {
                let log = log.clone();
                spawn(move || {
                    let lsn = others(&log, i).unwrap();
                    assert!(log.durable_lsn() >= lsn, "acknowledged before durable");
                })
            })
            .collect();
        let lsn = first(&log, 0).unwrap();
        assert!(log.durable_lsn() >= lsn, "acknowledged before durable");
        for t in threads {
            t.join().unwrap();
        }
        drop(log);
        let survived = fs.crash(CrashMode::LoseUnsynced);
        let (log, _) = SegmentLog::open(survived, "/log", opts(), &mut ()).unwrap();
        assert_eq!(log.records().unwrap().count() as u64, APPENDERS);
    })
}

#[test]
fn every_appender_is_acknowledged_only_once_durable_and_none_is_stranded() {
    let runs = every_appender_acknowledged_once_durable(append);
    assert!(runs > 100, "only {runs} interleavings explored");
}

#[test]
fn a_failed_fsync_reaches_every_waiter() {
    let runs = model(|| {
        let fs = SimFs::new();
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        fs.inject(Fault {
            op: Some(Op::SyncData),
            nth: fs.op_count(Op::SyncData) + 1,
            kind: FaultKind::Eio,
            persistent: true,
        });
        let log = Arc::new(log);
        let threads: Vec<_> = (1..APPENDERS)
            .map(|i| {
                let log = log.clone();
                spawn(move || {
                    assert!(
                        append(&log, i).is_err(),
                        "acknowledged after a failed fsync"
                    );
                })
            })
            .collect();
        assert!(
            append(&log, 0).is_err(),
            "acknowledged after a failed fsync"
        );
        for t in threads {
            t.join().unwrap();
        }
        assert!(log.poisoned().is_some());
    });
    assert!(runs > 100, "only {runs} interleavings explored");
}

#[test]
fn one_failed_fsync_among_overlapping_rounds_fails_every_appender() {
    let runs = model(|| {
        let fs = SimFs::new();
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        // Only the next fsync fails; any later one succeeds.
        fs.inject(Fault {
            op: Some(Op::SyncData),
            nth: fs.op_count(Op::SyncData) + 1,
            kind: FaultKind::Eio,
            persistent: false,
        });
        let log = Arc::new(log);
        let threads: Vec<_> = (1..APPENDERS)
            .map(|i| {
                let log = log.clone();
                spawn(move || append(&log, i).is_ok())
            })
            .collect();
        let mut acked = u32::from(append(&log, 0).is_ok());
        for t in threads {
            acked += u32::from(t.join().unwrap());
        }
        assert_eq!(acked, 0, "a round after the failed fsync was acknowledged");
        assert!(log.poisoned().is_some());
    });
    assert!(runs > 100, "only {runs} interleavings explored");
}

#[test]
fn durable_appenders_racing_a_buffered_round_are_acknowledged_only_once_durable() {
    let runs = model(|| {
        let fs = SimFs::new();
        // Every buffered submit writes the queue out itself (a write-only round).
        let opts = SegmentOptions {
            buffered_write_bytes: 1,
            ..opts()
        };
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts.clone(), &mut ()).unwrap();
        let log = Arc::new(log);
        let threads: Vec<_> = (1..APPENDERS)
            .map(|i| {
                let log = log.clone();
                spawn(move || {
                    let lsn = append(&log, i).unwrap();
                    assert!(log.durable_lsn() >= lsn, "acknowledged before durable");
                })
            })
            .collect();
        let buffered = log
            .submit_buffered(
                log.encode(&EventBatch {
                    encoding: 0,
                    execution_id: b"bulk",
                    tenant_id: b"tenant",
                    first_seq: 1,
                    timestamp_unix_nanos: 0,
                    payloads: &[b"buffered".as_slice()],
                })
                .unwrap(),
            )
            .unwrap();
        for t in threads {
            t.join().unwrap();
        }
        let through = log.sync().unwrap();
        assert!(through >= buffered.lsn && log.durable_lsn() >= through);
        drop(log);
        let survived = fs.crash(CrashMode::LoseUnsynced);
        let (log, _) = SegmentLog::open(survived, "/log", opts, &mut ()).unwrap();
        assert_eq!(log.records().unwrap().count() as u64, APPENDERS);
    });
    assert!(runs > 100, "only {runs} interleavings explored");
}

#[test]
fn root_futures_relaying_wake_ups_strand_nobody() {
    let runs = every_appender_acknowledged_once_durable(append_root_future);
    assert!(runs > 100, "only {runs} interleavings explored");
}

#[test]
fn stalled_roots_blocking_on_their_own_thread_strand_nobody() {
    let runs = every_appender_acknowledged_once_durable(append_stalled_root_then_blocking);
    assert!(runs > 100, "only {runs} interleavings explored");
}

#[test]
fn all_stalled_roots_strand_nobody() {
    let runs = appenders_acknowledged_once_durable(
        append_stalled_root_then_blocking,
        append_stalled_root_then_blocking,
    );
    assert!(runs > 100, "only {runs} interleavings explored");
}
