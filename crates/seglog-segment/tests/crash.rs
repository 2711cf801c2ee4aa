//! Power cuts at every point of a workload, on the simulated file system.
//!
//! For each n, the machine is powered off right after the n-th mutating I/O operation of
//! a workload that appends, batches and rolls over segments. The surviving state is then
//! taken three ways (only synced bytes, every write, a torn random subset of unsynced
//! writes) and recovered. What must hold, every time:
//! - every acknowledged record is there, with its bytes;
//! - what is there is a prefix of what was submitted (no holes, no phantom records), and
//!   each record is whole;
//! - recovering again after a second crash gives the same state (recovery is idempotent).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::crash::*;
use seglog_segment::io::sim::{CrashMode, SimFs};

#[test]
fn acknowledged_records_survive_a_power_cut_after_every_operation() {
    let total_ops = {
        let fs = SimFs::new();
        let out = workload(&fs);
        assert_eq!(out.acked.len(), 24);
        assert!(
            out.prepared_rolls >= 2,
            "the workload took {} prepared segments",
            out.prepared_rolls
        );
        fs.mutating_ops()
    };
    assert!(total_ops > 40, "workload too small: {total_ops} ops");
    eprintln!(
        "power cut after each of {total_ops} operations, 4 crash modes each: {} recoveries",
        total_ops * 4 * 2
    );
    for n in 1..=total_ops {
        let modes = [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Torn { seed: n * 7 + 3 },
            CrashMode::Reordered { seed: n },
        ];
        for mode in modes {
            let fs = SimFs::new();
            fs.power_off_after(n);
            let outcome = workload(&fs);
            let crashed = fs.crash(mode);
            let what = format!("power off after op {n}, {mode:?}");
            let first = recovered(&crashed);
            check(&outcome, &first, &what);
            // Crash again right after recovery: same state.
            let again = crashed.crash(CrashMode::LoseUnsynced);
            assert_eq!(recovered(&again), first, "{what}: recovery not idempotent");
        }
    }
}

#[test]
fn concurrent_appenders_survive_power_cuts() {
    for n in (10..400).step_by(13) {
        let (outcome, fs) = concurrent_workload(n);
        for mode in [CrashMode::LoseUnsynced, CrashMode::Torn { seed: n }] {
            let crashed = fs.crash(mode);
            check(
                &outcome,
                &recovered(&crashed),
                &format!("power off after op {n}, {mode:?}"),
            );
        }
    }
}

#[test]
fn what_a_restarted_process_reads_survives_a_later_power_cut() {
    for outcome in process_restart_then_power_cut() {
        if let Err(e) = outcome {
            panic!("{e}");
        }
    }
}

#[test]
fn slow_fsyncs_under_concurrency_survive_power_cuts() {
    // Slow fsyncs: big groups queue behind each sync, and cuts land mid-sync.
    for n in (20..300).step_by(17) {
        let (outcome, fs) = concurrent_workload_with(n, std::time::Duration::from_micros(500));
        for mode in [CrashMode::LoseUnsynced, CrashMode::Torn { seed: n }] {
            let crashed = fs.crash(mode);
            check(
                &outcome,
                &recovered(&crashed),
                &format!("power off after op {n}, {mode:?}"),
            );
        }
    }
}

#[test]
fn a_segment_replacement_cut_at_any_step_leaves_the_old_set_or_the_new_one() {
    let (runs, bad) = common::crash::replacement_runs();
    assert!(runs > 30, "{runs}");
    assert_eq!(
        bad, 0,
        "{bad} of {runs} power cuts broke a segment replacement"
    );
    eprintln!("segment replacement: {runs} power cuts, each recovered twice");
}
