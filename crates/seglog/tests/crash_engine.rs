//! Power cuts at every point of an engine workload — appends, batches, segment rolls and the
//! index checkpoints written when segments are sealed — on the simulated file system.
//! After each cut (only-synced, all-written, and torn states, with a random prefix of the
//! unsynced directory changes) the log must open and hold, per execution, a dense prefix of
//! what was submitted that includes every acknowledged event; recovering again after a
//! second cut must give the same answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, Log, Options};

const TENANTS: [&str; 2] = ["t0", "t1"];

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(2048)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

/// Per execution: the payloads submitted in order, and how many were acknowledged.
use common::Outcome;

fn workload(fs: &SimFs) -> Outcome {
    let mut out = Outcome::new();
    let Ok(log) = Log::open_with_fs(fs.clone(), "/log", opts()) else {
        return out;
    };
    for i in 0..40u64 {
        let exec = format!("e{}", i % 3);
        let tenant = TENANTS[(i % 3 % 2) as usize];
        let payloads: Vec<Vec<u8>> = if i % 6 == 5 {
            (0..3)
                .map(|k| format!("{i}/{k}:{}", "b".repeat(60)).into_bytes())
                .collect()
        } else {
            vec![format!("{i}:{}", "a".repeat((i * 13 % 120) as usize)).into_bytes()]
        };
        let entry = out.entry(exec.clone()).or_default();
        entry.0.extend(payloads.iter().cloned());
        match log.append_batch_blocking(&exec, tenant, &payloads) {
            Ok(_) => entry.1 = entry.0.len(),
            Err(_) => break,
        }
    }
    out
}

fn state(fs: &SimFs, what: &str) -> (common::Dump, seglog::RecoveryStats) {
    let log = Log::open_with_fs(fs.clone(), "/log", opts())
        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let d = common::dump(&log, &TENANTS);
    let r = log.stats().recovery;
    drop(log);
    (d, r)
}

#[test]
fn the_engine_recovers_from_a_power_cut_after_every_operation() {
    let total_ops = {
        let fs = SimFs::new();
        let out = workload(&fs);
        assert!(out.values().all(|(s, a)| s.len() == *a));
        let (_, r) = state(&fs, "reference");
        assert!(
            r.checkpoints_loaded >= 2,
            "the workload should seal segments with checkpoints: {r:?} {:?}",
            fs.file_names(std::path::Path::new("/log"))
        );
        fs.mutating_ops()
    };
    let mut recoveries = 0;
    let mut from_checkpoints = 0;
    for n in 1..=total_ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Torn { seed: n ^ 0xA5A5 },
        ] {
            let fs = SimFs::new();
            fs.power_off_after(n);
            let outcome = workload(&fs);
            let crashed = fs.crash(mode);
            let what = format!("cut after op {n} of {total_ops}, {mode:?}");
            let (first, r) = state(&crashed, &what);
            common::check_acknowledged(&outcome, &first, &what);
            from_checkpoints += r.checkpoints_loaded;
            let again = crashed.crash(CrashMode::Torn { seed: n + 1 });
            let (second, _) = state(&again, &what);
            assert_eq!(
                second, first,
                "{what}: a second cut after recovery changed the answers"
            );
            recoveries += 2;
        }
    }
    assert!(from_checkpoints > 0);
    eprintln!("engine: power cut after each of {total_ops} operations × 4 modes: {recoveries} recoveries, {from_checkpoints} segments loaded from checkpoints");
}
