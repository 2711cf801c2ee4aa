//! `sync` under `SyncMode::Never` (review 69): appends are acknowledged once written, and
//! `sync` is the caller's explicit request for stable storage (RocksDB's `SyncWAL`,
//! raft-engine's `sync`). It must fsync what it returns for, even though the mode counts
//! written records as acknowledged; and after a failed fsync it must never return Ok.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::crash::{check, Outcome};
use common::never::{batch, opts, payload, recovered};
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::{Error, SegmentLog};

/// Appends (every third one waited for, the rest buffered) with a `sync` every `sync_every`;
/// stops at the first error. Under `Never` only what a returned `sync` covered is promised.
fn import(fs: &SimFs, records: u64, sync_every: u64) -> Outcome {
    let mut out = Outcome::default();
    let Ok((log, _)) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) else {
        return out;
    };
    for i in 1..=records {
        let p = payload(i);
        let Ok(record) = log.encode(&batch(i, &p)) else {
            return out;
        };
        let waited = i % 3 == 0;
        let submitted = if waited {
            log.submit(record)
        } else {
            log.submit_buffered(record)
        };
        let Ok(appended) = submitted else {
            return out;
        };
        out.submitted.insert(appended.lsn, vec![p]);
        if waited && log.wait_durable(appended.lsn).is_err() {
            return out;
        }
        if i % sync_every == 0 {
            let Ok(through) = log.sync() else {
                return out;
            };
            out.acked.extend(1..=through);
        }
    }
    out
}

#[test]
fn what_sync_returned_for_survives_a_power_cut_right_after_it() {
    let fs = SimFs::new();
    let out = import(&fs, 10, 10);
    assert_eq!(out.acked.iter().max(), Some(&10));
    let got = recovered(&fs.crash(CrashMode::LoseUnsynced));
    check(&out, &got, "power cut right after sync");
    assert_eq!(got.len(), 10, "sync returned for 10 records");
}

#[test]
fn a_power_cut_anywhere_keeps_what_sync_returned_for() {
    const RECORDS: u64 = 40;
    let total_ops = {
        let fs = SimFs::new();
        let out = import(&fs, RECORDS, 7);
        assert_eq!(out.acked.iter().max(), Some(&35));
        fs.mutating_ops()
    };
    for n in 1..=total_ops {
        let fs = SimFs::new();
        fs.power_off_after(n);
        let mut outcome = import(&fs, RECORDS, 7);
        outcome.acked.sort_unstable();
        outcome.acked.dedup();
        let modes = [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n },
        ];
        for mode in modes {
            let what = format!("power off after op {n}, {mode:?}");
            check(&outcome, &recovered(&fs.fork().crash(mode)), &what);
        }
    }
}

#[test]
fn sync_syncs_only_when_something_is_unsynced() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let p = payload(1);
    let lsn = log.submit(log.encode(&batch(1, &p)).unwrap()).unwrap().lsn;
    log.wait_durable(lsn).unwrap();
    let before = fs.op_count(Op::SyncData);
    assert_eq!(log.sync().unwrap(), lsn);
    assert!(fs.op_count(Op::SyncData) > before, "sync made no fdatasync");
    let before = fs.op_count(Op::SyncData);
    assert_eq!(log.sync().unwrap(), lsn);
    assert_eq!(
        fs.op_count(Op::SyncData),
        before,
        "a second sync with nothing new synced again"
    );
}

#[test]
fn a_failed_sync_poisons_the_log_and_never_returns_ok() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let p = payload(1);
    log.submit_buffered(log.encode(&batch(1, &p)).unwrap())
        .unwrap();
    // The next fdatasync fails (a fault's `nth` counts from the file system's creation).
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    assert!(
        matches!(
            log.sync(),
            Err(Error::Poisoned { .. }) | Err(Error::Io { .. })
        ),
        "a sync whose fdatasync failed returned Ok"
    );
    // The fault was one-shot: a retried fsync would succeed, and must not be trusted.
    assert!(
        matches!(log.sync(), Err(Error::Poisoned { .. })),
        "sync after a failed fdatasync"
    );
    let p = payload(2);
    assert!(matches!(
        log.submit(log.encode(&batch(2, &p)).unwrap()),
        Err(Error::Poisoned { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_async_from_a_task_makes_buffered_records_stable() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let log = std::sync::Arc::new(log);
    // On a runtime's worker: the fsync goes to the blocking pool.
    let through = tokio::spawn({
        let log = log.clone();
        async move {
            for i in 1..=5u64 {
                let p = payload(i);
                log.submit_buffered(log.encode(&batch(i, &p)).unwrap())
                    .unwrap();
            }
            log.sync_async().await
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(through, 5);
    assert_eq!(recovered(&fs.crash(CrashMode::LoseUnsynced)).len(), 5);
}
