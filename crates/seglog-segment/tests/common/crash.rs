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
}

/// Single appends and batches, enough to roll over several segments.
pub fn workload(fs: &SimFs) -> Outcome {
    let mut out = Outcome::default();
    let Ok((log, _)) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) else {
        return out;
    };
    for i in 1..=24u64 {
        let payloads: Vec<Vec<u8>> = if i % 5 == 0 {
            (0..3).map(|k| payload(i * 10 + k)).collect()
        } else {
            vec![payload(i)]
        };
        let batch = EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: i,
            timestamp_unix_nanos: 0,
            payloads: &payloads,
        };
        let Ok(record) = log.encode(&batch) else {
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

/// A process dies after writing records it never synced (its fsync failed); it restarts on
/// the same machine and reads what recovery found; then the power fails. Returns what the
/// restarted process saw and what survived the power cut, for each point of failure.
pub fn process_restart_then_power_cut() -> Vec<(Records, Records)> {
    use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op};
    let mut out = Vec::new();
    for nth in 2..12 {
        let fs = SimFs::new();
        fs.inject(Fault {
            op: Some(Op::SyncData),
            nth,
            kind: FaultKind::Eio,
            persistent: true,
        });
        let _ = workload(&fs);
        fs.clear_faults();
        // Same machine, new process: the unsynced bytes are still in the page cache.
        let seen = recovered(&fs);
        let after_power_cut = recovered(&fs.crash(CrashMode::LoseUnsynced));
        out.push((seen, after_power_cut));
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
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
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
