//! Process crashes: a child appends from 8 threads and reports each acknowledgement; the
//! parent SIGKILLs it at a random moment, reopens the log and checks the contract:
//! every acknowledged event is there with its bytes, sequences are dense, batches whole.
//! Then it starts the child again on the same log, for many cycles.
//!
//! The second test runs the child with `--compact`: it also erases executions with
//! `Log::compact` while the others append; erased executions must never come back.
//!
//! The third runs the child with `--global-reader`: a reader follows the log in global order
//! while the others append; after the kill, the reopened log's global order starts with
//! exactly what the reader saw, in the same order.
//!
//! CI runs a short version; `SEGLOG_CRASH_CYCLES=60 cargo test -p seglog-tests --test
//! process_crash --release` runs a longer one (~3 minutes; each cycle checks every
//! acknowledgement so far on a log that keeps growing, so the cost grows with the square of
//! the cycles).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::Rng;
use seglog::Log;
use seglog_tests::{check_acks, check_erased, crash_options, run_child, Ack, CutWhen, Seen};
use std::time::Duration;

fn cycles() -> usize {
    std::env::var("SEGLOG_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

#[test]
fn acknowledged_appends_survive_sigkill_at_random_moments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut rng = rand::rng();
    let mut all_acks: Vec<Ack> = Vec::new();
    let mut total_acks = 0;
    for cycle in 0..cycles() {
        let run_for = Duration::from_millis(rng.random_range(20..400));
        // Not before the child acknowledged something: every cycle checks some acks,
        // however slow the machine.
        let when = CutWhen {
            run_for,
            min_acks: 10,
            min_erased: 0,
        };
        // SIGKILL happens in run_child right after `cut`.
        let acks = run_child(
            env!("CARGO_BIN_EXE_seglog-crash-child"),
            &dir,
            &[],
            when,
            || {},
        );
        // After SIGKILL the page cache survives: acks printed up to the kill all count.
        let acks: Vec<Ack> = acks.before_cut.into_iter().chain(acks.after_cut).collect();
        total_acks += acks.len();
        all_acks.extend(acks);
        let what = format!("cycle {cycle} (killed after {run_for:?})");
        let log = Log::open_blocking(&dir, crash_options())
            .unwrap_or_else(|e| panic!("{what}: the log does not open: {e}"));
        check_acks(&log, &all_acks, &what);
        log.close().unwrap();
    }
    // At least 10 per cycle: `run_child` does not cut before.
    eprintln!(
        "{} SIGKILLs: {total_acks} acknowledged appends checked",
        cycles()
    );
}

#[test]
fn compaction_killed_at_random_moments_loses_nothing_and_resurrects_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut rng = rand::rng();
    let (mut all_acks, mut erased) = (Vec::new(), Vec::new());
    for cycle in 0..cycles() {
        let run_for = Duration::from_millis(rng.random_range(50..400));
        // Every other cycle not before an erasure, so that erasures are checked however
        // slow the machine; the other cycles are cut wherever `run_for` ends.
        let when = CutWhen {
            run_for,
            min_acks: 10,
            min_erased: cycle % 2,
        };
        let acks = run_child(
            env!("CARGO_BIN_EXE_seglog-crash-child"),
            &dir,
            &["--compact"],
            when,
            || {},
        );
        all_acks.extend(acks.before_cut.into_iter().chain(acks.after_cut));
        erased.extend(
            acks.erased_before_cut
                .into_iter()
                .chain(acks.erased_after_cut),
        );
        let what = format!("cycle {cycle} (killed after {run_for:?})");
        let log = Log::open_blocking(&dir, crash_options())
            .unwrap_or_else(|e| panic!("{what}: the log does not open: {e}"));
        check_acks(&log, &all_acks, &what);
        check_erased(&log, &dir, &erased, &what);
        log.close().unwrap();
    }
    // At least 10 acks per cycle and an erasure every other cycle: `run_child` does not cut
    // before.
    eprintln!(
        "{} kills during compactions: {} acknowledged appends and {} erasures checked",
        cycles(),
        all_acks.len(),
        erased.len()
    );
}

#[test]
fn the_global_order_after_sigkill_is_the_order_readers_saw() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut rng = rand::rng();
    let mut all_acks: Vec<Ack> = Vec::new();
    let mut checked = 0;
    for cycle in 0..cycles().div_ceil(2) {
        let run_for = Duration::from_millis(rng.random_range(20..400));
        let when = CutWhen {
            run_for,
            min_acks: 10,
            min_erased: 0,
        };
        let acks = run_child(
            env!("CARGO_BIN_EXE_seglog-crash-child"),
            &dir,
            &["--global-reader"],
            when,
            || {},
        );
        all_acks.extend(acks.before_cut.into_iter().chain(acks.after_cut));
        let what = format!("cycle {cycle} (killed after {run_for:?})");
        let log = Log::open_blocking(&dir, crash_options())
            .unwrap_or_else(|e| panic!("{what}: the log does not open: {e}"));
        check_acks(&log, &all_acks, &what);
        // The reader started at the beginning of the log and read on in order, so what it
        // saw is a prefix of the recovered global order: same records, same positions.
        let recovered: Vec<Seen> = log
            .read_global(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|r| Seen {
                lsn: r.lsn,
                execution: r.execution,
                first_seq: r.first_seq,
                count: r.payloads.len() as u64,
            })
            .collect();
        assert!(
            recovered.windows(2).all(|w| w[0].lsn < w[1].lsn),
            "{what}: positions do not increase"
        );
        let seen = &acks.seen;
        assert!(
            seen.len() <= recovered.len() && recovered[..seen.len()] == seen[..],
            "{what}: the reader saw {} records the recovered log does not start with",
            seen.len()
        );
        // Every acknowledged append is in the global order too.
        let in_order: std::collections::HashSet<(&str, u64, u64)> = recovered
            .iter()
            .map(|r| (r.execution.as_str(), r.first_seq, r.count))
            .collect();
        for a in &all_acks {
            assert!(
                in_order.contains(&(a.execution.as_str(), a.first_seq, a.count)),
                "{what}: acknowledged {a:?} missing from the global order"
            );
        }
        checked += seen.len();
        log.close().unwrap();
    }
    assert!(checked > 0, "the reader saw nothing");
    eprintln!("{checked} records seen by global readers checked after SIGKILL");
}
