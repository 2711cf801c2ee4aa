//! Overlapping commit rounds (`SegmentOptions::overlap_min_records`): a round may write and
//! fsync while the previous round's fsync is in flight. Acknowledgements must stay exactly
//! as strong as with one round at a time: every acknowledged record survives a power cut,
//! the watermark never moves back, results publish in order, a failed fsync fails every
//! later round, and rolls (which seal a segment) never overtake a round in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::growth::{append_checked, GrowthWatcher};

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const THREADS: u64 = 12;
const PER_THREAD: u64 = 30;

fn opts() -> SegmentOptions {
    SegmentOptions {
        // Small segments: rolls happen while rounds overlap.
        segment_size_bytes: 16 << 10,
        max_record_size_bytes: 4096,
        overlap_min_records: 1,
        ..SegmentOptions::default()
    }
}

fn append(log: &SegmentLog<SimFs>, thread: u64, i: u64) -> seglog_segment::Result<u64> {
    let payload = vec![u8::try_from(thread).unwrap(); 300];
    let id = format!("exec-{thread}");
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

/// Runs the appenders, with a watcher checking that the watermark never moves back; returns
/// the acknowledged LSNs and how many appends failed.
fn run(log: &Arc<SegmentLog<SimFs>>) -> (BTreeSet<u64>, u64) {
    let watcher = GrowthWatcher::start(log);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || append_checked(&log, PER_THREAD, |i| append(&log, t, i)))
        })
        .collect();
    let mut acked = BTreeSet::new();
    let mut failed = 0;
    for t in threads {
        let (a, f) = t.join().unwrap();
        acked.extend(a);
        failed += f;
    }
    watcher.finish();
    (acked, failed)
}

fn surviving_lsns(fs: &SimFs) -> BTreeSet<u64> {
    let survived = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(survived, "/log", opts(), &mut ()).unwrap();
    log.records()
        .unwrap()
        .map(|r| r.unwrap().view().lsn())
        .collect()
}

#[test]
fn overlapping_rounds_acknowledge_only_what_a_power_cut_keeps() {
    let fs = SimFs::new();
    // Slow fsyncs, so that records queue up while one is in flight, and of uneven length,
    // so that a later fsync overtakes an earlier one.
    fs.set_sync_latency_cycle(&[Duration::from_millis(3), Duration::from_micros(300)]);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let log = Arc::new(log);
    let (acked, failed) = run(&log);
    assert_eq!(failed, 0);
    assert_eq!(acked.len() as u64, THREADS * PER_THREAD);
    let stats = log.stats();
    assert!(
        stats.overlapped_rounds > 0,
        "no round overlapped another: the test did not exercise overlapping ({stats:?})"
    );
    assert!(log.segments().len() > 2, "no roll happened during the run");
    drop(log);
    let survived = surviving_lsns(&fs);
    let lost: Vec<_> = acked.difference(&survived).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
}

#[test]
fn a_failed_fsync_among_overlapping_rounds_loses_no_acknowledged_record() {
    for nth in [3, 6, 11, 17] {
        let fs = SimFs::new();
        fs.set_sync_latency_cycle(&[Duration::from_millis(3), Duration::from_micros(300)]);
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        // One fsync fails; the ones after it succeed (the log must not believe them).
        fs.inject(Fault {
            op: Some(Op::SyncData),
            nth: fs.op_count(Op::SyncData) + nth,
            kind: FaultKind::Eio,
            persistent: false,
        });
        let log = Arc::new(log);
        let (acked, failed) = run(&log);
        assert!(failed > 0, "fault {nth}: nothing failed");
        assert!(log.poisoned().is_some(), "fault {nth}: not poisoned");
        drop(log);
        let survived = surviving_lsns(&fs);
        let lost: Vec<_> = acked.difference(&survived).collect();
        assert!(
            lost.is_empty(),
            "fault {nth}: acknowledged records lost: {lost:?}"
        );
    }
}

/// `threads` writers appending `per_thread` records each with the default options, every
/// fsync taking 2 ms; returns the writer's stats, after checking that a power cut keeps every
/// acknowledged record.
fn default_threshold_run(threads: u64, per_thread: u64) -> seglog_segment::WriterStats {
    let fs = SimFs::new();
    fs.set_sync_latency(Duration::from_millis(2));
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts.clone(), &mut ()).unwrap();
    let log = Arc::new(log);
    let acked: BTreeSet<u64> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| append(&log, t, i).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let stats = log.stats();
    drop(log);
    let survived = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(survived, "/log", opts, &mut ()).unwrap();
    let kept: BTreeSet<u64> = log
        .records()
        .unwrap()
        .map(|r| r.unwrap().view().lsn())
        .collect();
    assert!(acked.is_subset(&kept), "acknowledged records lost");
    stats
}

/// 16 writers never queue the default 32 records behind a round in flight, but two rounds of
/// about 8 do overlap: each writer then waits about one round, not one and a half.
#[test]
fn sixteen_writers_overlap_rounds_as_large_as_the_one_in_flight() {
    let stats = default_threshold_run(16, 25);
    assert!(
        stats.overlapped_rounds > 0,
        "16 writers never overlapped a round ({stats:?})"
    );
}

/// A few writers do not: a second fsync for a round of one or two records costs more CPU
/// than the wait it saves.
#[test]
fn four_writers_never_overlap_tiny_rounds() {
    let stats = default_threshold_run(4, 25);
    assert_eq!(stats.overlapped_rounds, 0, "{stats:?}");
}
