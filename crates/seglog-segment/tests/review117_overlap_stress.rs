//! Review 117 (of b9d76fa): rounds now overlap at the default `overlap_min_records` (32) as
//! soon as the queue is as large as the round in flight (and 8 records). Attacks: 16 writers
//! (rounds of about 8, so the new rule is what overlaps them) beside explicit rolls, buffered
//! appends (`write_queued_if_large`), `block_on` roots (the bell sleep and its pause), a
//! failed fsync, and a close while all of it runs. Each run checks, under a watchdog, that
//! nothing hangs, the watermark and readable ends never move back, an acknowledged append is
//! durable when acknowledged and survives a power cut.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::growth::{append_checked, GrowthWatcher};

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeSet;
use std::sync::{mpsc, Arc};
use std::time::Duration;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 32 << 10,
        max_record_size_bytes: 4096,
        buffered_write_bytes: 2 << 10,
        ..SegmentOptions::default()
    }
}

fn append(log: &SegmentLog<SimFs>, thread: u64, i: u64) -> seglog_segment::Result<u64> {
    let (id, payload) = (
        format!("exec-{thread}-{i}"),
        vec![u8::try_from(thread % 250).unwrap() + 1; 200],
    );
    log.append(&EventBatch {
        encoding: 0,
        execution_id: id.as_bytes(),
        tenant_id: b"tenant",
        first_seq: i + 1,
        timestamp_unix_nanos: 0,
        payloads: std::slice::from_ref(&payload),
    })
    .map(|a| a.lsn)
}

fn encoded(log: &SegmentLog<SimFs>, thread: u64, i: u64) -> seglog_segment::format::EncodedRecord {
    let payload = vec![7u8; 300];
    let id = format!("buf-{thread}-{i}");
    log.encode(&EventBatch {
        encoding: 0,
        execution_id: id.as_bytes(),
        tenant_id: b"tenant",
        first_seq: i + 1,
        timestamp_unix_nanos: 0,
        payloads: std::slice::from_ref(&payload),
    })
    .unwrap()
}

struct Outcome {
    acked: BTreeSet<u64>,
    failed: u64,
    overlapped: u64,
}

/// One run; `fault`: the nth fsync from now fails; `close_early`: close while appending.
fn run(fs: &SimFs, fault: Option<u64>, close_early: bool) -> Outcome {
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    if let Some(nth) = fault {
        fs.inject(Fault {
            op: Some(Op::SyncData),
            nth: fs.op_count(Op::SyncData) + nth,
            kind: FaultKind::Eio,
            persistent: false,
        });
    }
    let log = Arc::new(log);
    let watcher = GrowthWatcher::start(&log);
    let mut handles = Vec::new();
    // 16 blocking writers.
    for t in 0..16u64 {
        let log = log.clone();
        handles.push(std::thread::spawn(move || {
            append_checked(&log, 40, |i| append(&log, t, i))
        }));
    }
    // 4 `block_on` roots of a multi-threaded runtime.
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap(),
    );
    for t in 100..104u64 {
        let (log, runtime) = (log.clone(), runtime.clone());
        handles.push(std::thread::spawn(move || {
            append_checked(&log, 40, |i| {
                let payload = vec![9u8; 150];
                let id = format!("async-{t}-{i}");
                runtime
                    .block_on(log.append_async(&EventBatch {
                        encoding: 0,
                        execution_id: id.as_bytes(),
                        tenant_id: b"tenant",
                        first_seq: i + 1,
                        timestamp_unix_nanos: 0,
                        payloads: std::slice::from_ref(&payload),
                    }))
                    .map(|a| a.lsn)
            })
        }));
    }
    // A buffered importer, syncing now and then.
    {
        let log = log.clone();
        handles.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut failed = 0;
            let mut since_sync = Vec::new();
            for i in 0..120 {
                match log.submit_buffered(encoded(&log, 200, i)) {
                    Ok(a) => since_sync.push(a.lsn),
                    Err(_) => failed += 1,
                }
                if i % 10 == 9 {
                    match log.sync() {
                        Ok(through) => {
                            assert!(
                                log.durable_lsn() >= through,
                                "sync: acknowledged before durable"
                            );
                            acked.extend(since_sync.drain(..).filter(|l| *l <= through));
                        }
                        Err(_) => {
                            since_sync.clear();
                            failed += 1;
                        }
                    }
                }
            }
            (acked, failed)
        }));
    }
    // A roller.
    {
        let log = log.clone();
        handles.push(std::thread::spawn(move || {
            let mut failed = 0;
            for _ in 0..15 {
                std::thread::sleep(Duration::from_millis(3));
                if log.roll().is_err() {
                    failed += 1;
                }
            }
            (Vec::new(), failed)
        }));
    }
    if close_early {
        std::thread::sleep(Duration::from_millis(40));
        let _ = log.close();
    }
    let mut acked = BTreeSet::new();
    let mut failed = 0;
    for h in handles {
        let (a, f) = h.join().unwrap();
        acked.extend(a);
        failed += f;
    }
    watcher.finish();
    let overlapped = log.stats().overlapped_rounds;
    let _ = log.close();
    drop(log);
    Outcome {
        acked,
        failed,
        overlapped,
    }
}

fn survivors(fs: &SimFs) -> BTreeSet<u64> {
    let survived = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(survived, "/log", opts(), &mut ()).unwrap();
    log.records()
        .unwrap()
        .map(|r| r.unwrap().view().lsn())
        .collect()
}

fn with_watchdog(what: String, f: impl FnOnce() -> String + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(msg)) => eprintln!("{what}: {msg}"),
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{what}: hung (a waiter stranded or a round never ended)"),
    }
}

/// [`run`] on a simulated file system whose fsyncs take 2 ms and 300 µs in turn, then a
/// power cut: every acknowledged record must survive it.
fn run_and_cut_power(fail_fsync: Option<u64>, close_midway: bool) -> Outcome {
    let fs = SimFs::new();
    fs.set_sync_latency_cycle(&[Duration::from_millis(2), Duration::from_micros(300)]);
    let o = run(&fs, fail_fsync, close_midway);
    let survived = survivors(&fs);
    let lost: Vec<_> = o.acked.difference(&survived).collect();
    assert!(
        lost.is_empty(),
        "acknowledged records lost (failed fsync: {fail_fsync:?}): {lost:?}"
    );
    o
}

#[test]
fn default_threshold_overlap_with_rolls_buffered_and_roots() {
    let mut overlapped = 0;
    for iter in 0..6 {
        let (tx, rx) = mpsc::channel();
        with_watchdog(format!("run {iter}"), move || {
            let o = run_and_cut_power(None, false);
            assert_eq!(o.failed, 0);
            let _ = tx.send(o.overlapped);
            format!("{} acked, {} overlapped", o.acked.len(), o.overlapped)
        });
        overlapped += rx.recv().unwrap();
    }
    assert!(overlapped > 0, "no round overlapped: nothing was exercised");
}

#[test]
fn default_threshold_overlap_with_a_failed_fsync() {
    for nth in [2u64, 5, 9, 14, 20, 27, 35] {
        with_watchdog(format!("fault {nth}"), move || {
            let o = run_and_cut_power(Some(nth), false);
            format!(
                "{} acked, {} failed, {} overlapped",
                o.acked.len(),
                o.failed,
                o.overlapped
            )
        });
    }
}

#[test]
fn default_threshold_overlap_with_a_close_midway() {
    for iter in 0..6 {
        with_watchdog(format!("close run {iter}"), move || {
            let o = run_and_cut_power(None, true);
            format!(
                "{} acked, {} failed, {} overlapped",
                o.acked.len(),
                o.failed,
                o.overlapped
            )
        });
    }
}
