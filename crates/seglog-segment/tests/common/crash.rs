//! The crash workload shared by `crash.rs` and `teeth.rs`.
#![allow(dead_code)]

use super::payload;
use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;

/// What a recovered log holds: (LSN, the record's event payloads), in log order.
pub type Records = Vec<(u64, Vec<Vec<u8>>)>;

pub fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 2048,
        max_record_size_bytes: 1024,
        ..SegmentOptions::default()
    }
}

/// Everything the workload submitted (LSN → payloads) and what it saw acknowledged.
#[derive(Default)]
pub struct Outcome {
    pub submitted: BTreeMap<u64, Vec<Vec<u8>>>,
    pub acked: Vec<u64>,
    /// Rolls that took a prepared next segment.
    pub prepared_rolls: u64,
}

/// Record `i` of the one execution the workloads write.
fn batch_of(i: u64, payloads: &[Vec<u8>]) -> EventBatch<'_, Vec<u8>> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: 0,
        payloads,
    }
}

/// Single appends and batches, enough to roll over several segments.
pub fn workload(fs: &SimFs) -> Outcome {
    workload_of(fs, 24)
}

/// The first `appends` appends of [`workload`].
pub fn workload_of(fs: &SimFs, appends: u64) -> Outcome {
    workload_with(fs, appends, opts())
}

/// The first `appends` appends of [`workload`], with `opts`.
pub fn workload_with(fs: &SimFs, appends: u64, opts: SegmentOptions) -> Outcome {
    let mut out = Outcome::default();
    let Ok((log, _)) = SegmentLog::open(fs.clone(), "/log", opts, &mut ()) else {
        return out;
    };
    for i in 1..=appends {
        // Some rolls take a prepared next segment (renamed into place), the others create
        // theirs: both paths are in every enumeration (and the teeth test).
        if i % 8 == 3 {
            let _ = log.prepare_next_segment_now();
        }
        let payloads: Vec<Vec<u8>> = if i % 5 == 0 {
            (0..3).map(|k| payload(i * 10 + k)).collect()
        } else {
            vec![payload(i)]
        };
        let Ok(record) = log.encode(&batch_of(i, &payloads)) else {
            break;
        };
        let Ok(appended) = log.submit(record) else {
            break;
        };
        out.submitted.insert(appended.lsn, payloads);
        if log.wait_durable(appended.lsn).is_err() {
            break;
        }
        out.acked.push(appended.lsn);
    }
    out.prepared_rolls = log.stats().prepared_rolls;
    out
}

pub fn recovered(fs: &SimFs) -> Vec<(u64, Vec<Vec<u8>>)> {
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    let records = log
        .records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.view().lsn(),
                r.view().events().map(<[u8]>::to_vec).collect(),
            )
        })
        .collect();
    records
}

pub fn check(outcome: &Outcome, got: &[(u64, Vec<Vec<u8>>)], what: &str) {
    for (i, (lsn, events)) in got.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1, "{what}: hole or phantom at LSN {lsn}");
        assert_eq!(
            outcome.submitted.get(lsn),
            Some(events),
            "{what}: LSN {lsn} differs from what was written"
        );
    }
    let last = got.last().map_or(0, |(l, _)| *l);
    for lsn in &outcome.acked {
        assert!(
            *lsn <= last,
            "{what}: acknowledged LSN {lsn} lost (recovered through {last})"
        );
    }
}

/// Like [`check`], but returns the first violation instead of panicking.
pub fn violation(outcome: &Outcome, got: &[(u64, Vec<Vec<u8>>)]) -> Option<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check(outcome, got, "teeth")
    }))
    .err()
    .map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "violation".into())
    })
}

/// Opens the log on `fs`, returning its records or the error.
pub fn try_recovered(fs: &SimFs) -> Result<Records, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| recovered(fs))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "recovery failed".into())
    })
}

/// A process dies after a failed write or fsync; it restarts on the same machine (the page
/// cache still holds the bytes the failed writeback never wrote) and reads what recovery
/// found; then the power fails. Again, with a few appends after the restart. Returns one
/// result per point of failure, scenario and crash mode: what the restarted process served
/// and what it acknowledged must survive the power cut.
pub fn process_restart_then_power_cut() -> Vec<Result<(), String>> {
    use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op};
    let mut out = Vec::new();
    // The failed step: a commit or seal fsync (whose pages the kernel then marks clean), or
    // a roll's preallocation or directory fsync (leaving a segment whose name is not durable).
    let failures = (2..12)
        .map(|nth| (Op::SyncData, FaultKind::Eio, nth))
        .chain((1..4).map(|nth| (Op::SyncDir, FaultKind::Eio, nth)))
        .chain((1..4).map(|nth| (Op::Allocate, FaultKind::Enospc, nth)));
    // And no failure at all: a process that never synced what it wrote (`SyncMode::Never`)
    // dies, leaving dirty pages that the restarted process reads.
    let failures = failures.map(Some).chain((1..25).step_by(6).map(|_| None));
    for (run, failure) in failures.enumerate() {
        let fs = SimFs::new();
        let (what, nth) = match failure {
            Some((op, kind, nth)) => {
                fs.inject(Fault {
                    op: Some(op),
                    nth,
                    kind,
                    persistent: true,
                });
                let _ = workload(&fs);
                (format!("{op:?} {kind:?} #{nth}"), nth)
            }
            None => {
                let appends = run as u64 % 24 + 1;
                let never = SegmentOptions {
                    sync_mode: seglog_segment::SyncMode::Never,
                    ..opts()
                };
                let _ = workload_with(&fs, appends, never);
                (format!("{appends} unsynced appends"), appends)
            }
        };
        fs.clear_faults();
        let served = match try_recovered(&fs) {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(format!("{what}: the restarted log did not open: {e}")));
                continue;
            }
        };
        let modes = [CrashMode::LoseUnsynced, CrashMode::Reordered { seed: nth }];
        for mode in modes {
            out.push(match try_recovered(&fs.fork().crash(mode)) {
                Ok(after) if after == served => Ok(()),
                other => Err(format!(
                    "{what}, {mode:?}: served {} records after the restart, the power cut left {other:?}",
                    served.len()
                )),
            });
        }
        // The restarted process appends (without rolling: its appends go into whatever
        // segment recovery left active).
        let second = workload_of(&fs, 3);
        for mode in modes {
            out.push(match try_recovered(&fs.crash(mode)) {
                Ok(after) => {
                    let lost: Vec<u64> = second
                        .acked
                        .iter()
                        .filter(|lsn| {
                            !after
                                .iter()
                                .any(|(l, p)| l == *lsn && second.submitted.get(l) == Some(p))
                        })
                        .copied()
                        .collect();
                    if after.starts_with(&served) && lost.is_empty() {
                        Ok(())
                    } else {
                        Err(format!(
                            "{what}, appends after the restart, {mode:?}: lost {lost:?}"
                        ))
                    }
                }
                Err(e) => Err(format!("{what}, appends after the restart, {mode:?}: {e}")),
            });
        }
    }
    out
}

/// 8 threads appending, the power cut after `n` operations. Returns (outcome, fs).
pub fn concurrent_workload(n: u64) -> (Outcome, SimFs) {
    concurrent_workload_with(n, std::time::Duration::ZERO)
}

/// As [`concurrent_workload`], with every fsync taking `sync_latency`, so that several
/// commit rounds are in flight when the power goes.
pub fn concurrent_workload_with(n: u64, sync_latency: std::time::Duration) -> (Outcome, SimFs) {
    let fs = SimFs::new();
    fs.set_sync_latency(sync_latency);
    let Ok((log, _)) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) else {
        return (Outcome::default(), fs);
    };
    fs.power_off_after(n);
    let results: Vec<(u64, Vec<u8>, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let log = log.clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for k in 0..30u64 {
                        let p = payload(t * 100 + k);
                        let batch = EventBatch {
                            encoding: 0,
                            execution_id: b"e",
                            tenant_id: b"t",
                            first_seq: 1,
                            timestamp_unix_nanos: 0,
                            payloads: &[&p[..]],
                        };
                        let Ok(record) = log.encode(&batch) else {
                            break;
                        };
                        let Ok(a) = log.submit(record) else { break };
                        let ok = log.wait_durable(a.lsn).is_ok();
                        out.push((a.lsn, p, ok));
                        if !ok {
                            break;
                        }
                    }
                    out
                })
            })
            .collect();
        // An appender's panic is the test's: re-raised as it was, never read as "nothing
        // acknowledged".
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    drop(log);
    let mut outcome = Outcome::default();
    for (lsn, p, ok) in results {
        outcome.submitted.insert(lsn, vec![p]);
        if ok {
            outcome.acked.push(lsn);
        }
    }
    (outcome, fs)
}

/// Records whose payload starts with this are dropped by the replacement scenario.
const DROPPED: &[u8] = b"drop";

/// Appends 30 records (every third one to be dropped by the replacement), then rolls so
/// that all of them are sealed.
fn replacement_setup(fs: &SimFs) -> Option<SegmentLog<SimFs>> {
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).ok()?;
    for i in 1..=30u64 {
        let body = if i % 3 == 0 {
            [DROPPED, &payload(i)].concat()
        } else {
            payload(i)
        };
        log.append(&batch_of(i, &[body])).ok()?;
    }
    log.roll().ok()?;
    Some(log)
}

/// The setup, then every sealed segment replaced by new ones (cut at 1.5 KiB) without the
/// dropped records. Returns whether the replacement returned Ok (`None`: the setup failed).
pub fn replacement_workload(fs: &SimFs) -> Option<bool> {
    let log = replacement_setup(fs)?;
    Some(replace_dropping(&log).is_ok())
}

fn replace_dropping(log: &SegmentLog<SimFs>) -> seglog_segment::Result<()> {
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let mut outputs = Vec::new();
    let mut builder: Option<seglog_segment::SegmentBuilder<SimFs>> = None;
    for s in &sealed {
        for record in log.records_from(seglog_segment::RecordPosition {
            segment: s.number,
            offset: seglog_segment::format::SEGMENT_HEADER_LEN as u64,
        })? {
            let record = record?;
            let view = record.view();
            if view.events().next().is_some_and(|e| e.starts_with(DROPPED)) {
                continue;
            }
            if builder
                .as_ref()
                .is_some_and(|b| b.len() + view.len() as u64 > 1536)
            {
                if let Some(b) = builder.take() {
                    outputs.push(b.finish()?);
                }
            }
            let b = match builder.as_mut() {
                Some(b) => b,
                None => {
                    let first = if outputs.is_empty() {
                        sealed[0].first_lsn
                    } else {
                        view.lsn()
                    };
                    builder.insert(log.segment_builder(first)?)
                }
            };
            b.push(&view)?;
        }
    }
    if let Some(b) = builder.take() {
        outputs.push(b.finish()?);
    }
    let inputs: Vec<u64> = sealed.iter().map(|s| s.number).collect();
    let replacement = log.replace_segments(&inputs, outputs)?;
    log.install(replacement);
    Ok(())
}

/// Power cuts after every operation of the replacement, in three crash modes. Returns (runs,
/// runs whose recovered log is neither the old one nor the new one, or is the old one
/// although the replacement had returned Ok).
pub fn replacement_runs() -> (usize, usize) {
    use seglog_segment::io::sim::CrashMode;
    let (first_op, last_op, old, new) = {
        let fs = SimFs::new();
        drop(replacement_setup(&fs));
        let first = fs.mutating_ops() + 1;
        // Reference states keep every write, so they hold even with a sync point removed.
        let old = recovered(&fs.crash(CrashMode::KeepUnsynced));
        let fs = SimFs::new();
        assert_eq!(replacement_workload(&fs), Some(true));
        let last = fs.mutating_ops();
        let new = recovered(&fs.crash(CrashMode::KeepUnsynced));
        assert_eq!(old.len(), 30);
        assert_eq!(new.len(), 20);
        (first, last, old, new)
    };
    let (mut runs, mut bad) = (0, 0);
    for n in first_op..=last_op {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n },
        ] {
            let fs = SimFs::new();
            fs.power_off_after(n);
            let completed = replacement_workload(&fs) == Some(true);
            let crashed = fs.crash(mode);
            runs += 1;
            let first = try_recovered(&crashed);
            let ok = match &first {
                Ok(got) => *got == new || (*got == old && !completed),
                Err(_) => false,
            };
            // Recovery's own steps must survive a cut right after them, too.
            let again = try_recovered(&crashed.crash(CrashMode::LoseUnsynced));
            if !ok || again.ok() != first.ok() {
                bad += 1;
            }
        }
    }
    (runs, bad)
}
