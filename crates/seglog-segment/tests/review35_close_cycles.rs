//! Review 35: crash at every mutating operation of open / append / close (cut) / reopen /
//! append / close cycles; every acknowledged LSN must survive and every open must succeed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::payload;
use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions, SyncMode};

fn append(log: &SegmentLog<SimFs>, i: u64) -> seglog_segment::Result<u64> {
    let p = payload(i);
    log.append(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: 0,
        payloads: &[&p[..]],
    })
    .map(|a| a.lsn)
}

fn variants() -> Vec<(&'static str, SegmentOptions)> {
    let base = SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        ..SegmentOptions::default()
    };
    vec![
        (
            "prealloc",
            SegmentOptions {
                preallocate: true,
                ..base.clone()
            },
        ),
        (
            "noprealloc",
            SegmentOptions {
                preallocate: false,
                ..base.clone()
            },
        ),
        (
            "never",
            SegmentOptions {
                preallocate: true,
                sync_mode: SyncMode::Never,
                ..base.clone()
            },
        ),
        (
            "prepared",
            SegmentOptions {
                preallocate: true,
                prepare_next_segment: true,
                ..base.clone()
            },
        ),
    ]
}

/// Runs the workload; returns acked LSNs (close() Ok counts as acking everything appended
/// under SyncMode::Never).
fn workload(fs: &SimFs, opts: &SegmentOptions) -> Vec<u64> {
    let mut acked = Vec::new();
    let mut i = 0u64;
    for cycle in 0..4u64 {
        let Ok((log, _)) = SegmentLog::open(fs.clone(), "/log", opts.clone(), &mut ()) else {
            return acked;
        };
        let mut pending = Vec::new();
        let n = if cycle == 2 { 0 } else { 3 + cycle * 5 };
        for _ in 0..n {
            i += 1;
            if i % 7 == 3 {
                let _ = log.prepare_next_segment_now();
            }
            match append(&log, i) {
                Ok(lsn) => {
                    if opts.sync_mode == SyncMode::Never {
                        pending.push(lsn)
                    } else {
                        acked.push(lsn)
                    }
                }
                Err(_) => return acked,
            }
        }
        if log.close().is_err() {
            return acked;
        }
        acked.extend(pending);
    }
    acked
}

fn recovered(fs: &SimFs, opts: &SegmentOptions) -> Result<Vec<u64>, String> {
    let (log, _) =
        SegmentLog::open(fs.clone(), "/log", opts.clone(), &mut ()).map_err(|e| e.to_string())?;
    let got = log
        .records()
        .map_err(|e| e.to_string())?
        .map(|r| r.map(|r| r.view().lsn()))
        .collect::<seglog_segment::Result<Vec<u64>>>()
        .map_err(|e| e.to_string())?;
    log.close().map_err(|e| e.to_string())?;
    Ok(got)
}

#[test]
fn crash_anywhere_in_close_reopen_cycles_loses_nothing_acknowledged() {
    let mut failures = Vec::new();
    for (name, opts) in variants() {
        let total = {
            let fs = SimFs::new();
            workload(&fs, &opts);
            fs.mutating_ops()
        };
        for n in 0..=total {
            for mode in [
                CrashMode::LoseUnsynced,
                CrashMode::KeepUnsynced,
                CrashMode::Torn { seed: n },
                CrashMode::Torn { seed: n + 1000 },
                CrashMode::Reordered { seed: n + 7 },
            ] {
                let fs = SimFs::new();
                fs.power_off_after(n);
                let acked = workload(&fs, &opts);
                let after = fs.crash(mode);
                match recovered(&after, &opts) {
                    Ok(got) => {
                        for lsn in &acked {
                            if !got.contains(lsn) {
                                failures.push(format!(
                                    "{name} n={n} {mode:?}: acked LSN {lsn} lost; got {got:?}"
                                ));
                            }
                        }
                        // And the log takes appends and reopens again.
                        let (log, _) =
                            SegmentLog::open(after.clone(), "/log", opts.clone(), &mut ()).unwrap();
                        append(&log, 9999).unwrap();
                        log.close().unwrap();
                        if let Err(e) = recovered(&after, &opts) {
                            failures.push(format!("{name} n={n} {mode:?}: second reopen: {e}"));
                        }
                    }
                    Err(e) => failures.push(format!("{name} n={n} {mode:?}: open failed: {e}")),
                }
            }
        }
        eprintln!("{name}: {total} ops enumerated");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}
