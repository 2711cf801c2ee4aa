//! Injected I/O errors: every failure poisons the log, errors are typed, nothing panics,
//! and no append is acknowledged after a failed write or fsync. Reopening recovers every
//! acknowledged record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::{Error, SegmentLog, SegmentOptions};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 2048,
        max_record_size_bytes: 1024,
        ..SegmentOptions::default()
    }
}

#[test]
fn every_injected_failure_poisons_and_keeps_acknowledged_records() {
    let ops = [
        Op::Write,
        Op::SyncData,
        Op::SyncDir,
        Op::Create,
        Op::SetLen,
        Op::Allocate,
    ];
    let kinds = [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite];
    let mut failures_seen = 0;
    for op in ops {
        for kind in kinds {
            for nth in 1..=12u64 {
                for persistent in [false, true] {
                    let what = format!("{op:?} #{nth} {kind:?} persistent={persistent}");
                    let fs = SimFs::new();
                    fs.inject(Fault {
                        op: Some(op),
                        nth,
                        kind,
                        persistent,
                    });
                    let mut acked = Vec::new();
                    let mut failed = false;
                    match SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) {
                        Err(e) => {
                            assert!(
                                matches!(e, Error::Io { .. }),
                                "{what}: open failed with {e}"
                            );
                            failed = true;
                        }
                        Ok((log, _)) => {
                            for i in 1..=40u64 {
                                match append_one(&log, i) {
                                    Ok(lsn) => {
                                        assert!(
                                            !failed,
                                            "{what}: append acknowledged after a failure"
                                        );
                                        acked.push((lsn, payload(i)));
                                    }
                                    Err(Error::Poisoned { .. }) => failed = true,
                                    Err(e) => panic!("{what}: untyped failure {e}"),
                                }
                            }
                            if failed {
                                assert!(log.poisoned().is_some(), "{what}");
                                assert!(matches!(
                                    append_one(&log, 99),
                                    Err(Error::Poisoned { .. })
                                ));
                            }
                        }
                    }
                    failures_seen += usize::from(failed);
                    // Reopen in the same process (faults cleared), then after a power cut:
                    // every acknowledged record is there either way.
                    fs.clear_faults();
                    let got = {
                        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
                            .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
                        contents(&log)
                    };
                    for a in &acked {
                        assert!(
                            got.contains(a),
                            "{what}: acknowledged LSN {} lost on reopen",
                            a.0
                        );
                    }
                    let crashed = fs.crash(CrashMode::LoseUnsynced);
                    let (log, _) = SegmentLog::open(crashed, "/log", opts(), &mut ())
                        .unwrap_or_else(|e| panic!("{what}: recovery after crash failed: {e}"));
                    let got = contents(&log);
                    for a in &acked {
                        assert!(
                            got.contains(a),
                            "{what}: acknowledged LSN {} lost after crash",
                            a.0
                        );
                    }
                }
            }
        }
    }
    assert!(failures_seen > 100, "faults did not bite: {failures_seen}");
    eprintln!(
        "fault matrix: {} runs, {failures_seen} of them failed an operation",
        ops.len() * kinds.len() * 12 * 2
    );
}

#[test]
fn waiters_of_a_failed_group_all_get_the_error() {
    const THREADS: u64 = 16;
    const APPENDS_PER_THREAD: u64 = 10;
    /// Commit rounds that succeed before the one whose fsync fails.
    const GOOD_ROUNDS: usize = 2;
    let fs = SimFs::new();
    // Slow fsyncs, so that rounds gather several appenders.
    fs.set_sync_latency(std::time::Duration::from_millis(2));
    let (log, _) = SegmentLog::open(
        fs.clone(),
        "/log",
        SegmentOptions {
            segment_size_bytes: 1 << 20, // no roll: every fsync is a commit round's
            ..opts()
        },
        &mut (),
    )
    .unwrap();
    append_one(&log, 0).unwrap();
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + GOOD_ROUNDS as u64 + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    // Each thread's results, in the order it appended (one append in flight at a time).
    let per_thread: Vec<Vec<(u64, Result<u64, Error>)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (1..=THREADS)
            .map(|t| {
                let log = log.clone();
                s.spawn(move || {
                    (0..APPENDS_PER_THREAD)
                        .map(|k| {
                            let i = t * APPENDS_PER_THREAD + k;
                            (i, append_one(&log, i))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut acked = Vec::new();
    for (t, results) in per_thread.iter().enumerate() {
        let oks = results.iter().take_while(|(_, r)| r.is_ok()).count();
        // A thread has one append in flight, so each successful round acknowledges at most
        // one of its appends; an Ok beyond that came from the failed round.
        assert!(
            oks <= GOOD_ROUNDS,
            "thread {t}: {oks} appends acknowledged, only {GOOD_ROUNDS} rounds succeeded: {results:?}"
        );
        // Every waiter of the failed round, and every append after it, gets the error.
        assert!(
            results[oks..]
                .iter()
                .all(|(_, r)| matches!(r, Err(Error::Poisoned { .. }))),
            "thread {t}: {results:?}"
        );
        acked.extend(
            results[..oks]
                .iter()
                .map(|(i, r)| (*r.as_ref().unwrap(), payload(*i))),
        );
    }
    assert!(log.poisoned().is_some());
    // What was acknowledged is on stable storage: only synced bytes survive this cut.
    let crashed = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(crashed, "/log", opts(), &mut ()).unwrap();
    let got = contents(&log);
    for a in &acked {
        assert!(
            got.contains(a),
            "acknowledged LSN {} lost after a crash",
            a.0
        );
    }
}

#[test]
fn a_poisoned_log_keeps_the_os_error_so_a_full_disk_is_told_apart_from_a_failing_one() {
    use std::error::Error as _;
    for (op, kind, errno, io_kind) in [
        (
            Op::Write,
            FaultKind::Enospc,
            libc::ENOSPC,
            std::io::ErrorKind::StorageFull,
        ),
        (
            Op::SyncData,
            FaultKind::Eio,
            libc::EIO,
            std::io::ErrorKind::Other,
        ),
    ] {
        let fs = SimFs::new();
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        append_one(&log, 1).unwrap();
        fs.inject(Fault {
            op: Some(op),
            nth: fs.op_count(op) + 1,
            kind,
            persistent: false,
        });
        // The failing call, and every later one, carry the same cause.
        for attempt in 0..2 {
            let err = append_one(&log, 2 + attempt).unwrap_err();
            let cause = err
                .poison_cause()
                .unwrap_or_else(|| panic!("{op:?}: {err}"));
            assert_eq!(cause.raw_os_error(), Some(errno), "{op:?}: {err}");
            if io_kind != std::io::ErrorKind::Other {
                assert_eq!(cause.io_kind(), Some(io_kind), "{op:?}: {err}");
            }
            // The chain: Poisoned -> its cause -> the operating system's error.
            let os = err.source().and_then(|c| c.source()).unwrap();
            let os = os.downcast_ref::<std::io::Error>().unwrap();
            assert_eq!(os.raw_os_error(), Some(errno));
        }
    }
}
