//! Power cuts and I/O errors at every step of a compaction, on the simulated file system
//! (contract clause 6). A compaction that erases a tenant and merges segments runs on a log
//! with several sealed segments and records of that tenant in the active one (so it rolls).
//! After a cut at any operation, in every crash mode, the log opens as either the old set
//! or the new set — every answer equal to one or the other, never a mix — and once
//! `compact` has returned Ok, only the new set, with the tenant's marker bytes in no file.
//! A second cut right after recovery changes nothing.
//!
//! Every scenario runs twice: erasing and merging (records keep log order), and erasing and
//! clustering (locality: each output segment's records grouped by execution, format.md
//! §3.5), where the answers compared include the whole log in global order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::compaction::{policy, Plan};
use seglog::io::sim::{CrashMode, Fault, FaultKind, SimFs};
use seglog::{CheckpointMode, CompactOptions, Error, Log, Options};
use seglog_segment::Error as SegmentError;
use std::collections::BTreeMap;
use std::path::Path;

const TENANTS: [&str; 2] = ["keep", "gone"];
const MARKER: &[u8] = b"ERASE-ME-91c";

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(2048)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

fn fill(log: &Log<SimFs>) {
    for i in 0..36u64 {
        let tenant = TENANTS[(i % 2) as usize];
        let exec = format!("{tenant}-{}", i % 4);
        let body = if tenant == "gone" {
            format!(
                "{} {i} {}",
                String::from_utf8_lossy(MARKER),
                "g".repeat((i * 7 % 90) as usize)
            )
        } else {
            format!("{i} {}", "k".repeat((i * 11 % 150) as usize))
        };
        if i % 5 == 0 {
            log.append_batch_blocking(&exec, tenant, &[body.as_bytes(), b"tail"])
                .unwrap();
        } else {
            log.append_blocking(&exec, tenant, body.as_bytes()).unwrap();
        }
    }
}

/// What a reader sees, without timestamps (they differ from run to run).
type Content = BTreeMap<String, Vec<(String, Option<String>, Vec<(u64, Vec<u8>)>)>>;

fn content(log: &Log<SimFs>) -> Content {
    let global = log
        .read_global(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| {
            let payloads = r.payloads.iter().flat_map(|p| p.to_vec()).collect();
            (
                r.lsn.to_string(),
                Some(r.execution),
                vec![(r.first_seq, payloads)],
            )
        })
        .collect();
    let mut dump: Content = common::dump(log, &TENANTS)
        .into_iter()
        .map(|(t, rows)| {
            let rows = rows
                .into_iter()
                .map(|(e, tenant, events)| {
                    (
                        e,
                        tenant,
                        events.into_iter().map(|(s, _, p)| (s, p)).collect(),
                    )
                })
                .collect();
            (t, rows)
        })
        .collect();
    // The whole log in global order (LSN, execution, first sequence, bytes).
    dump.insert("~global".into(), global);
    dump
}

/// Per tenant, its executions and their event counts: enough to see how two dumps differ.
fn summary(c: &Content) -> Vec<(&str, Vec<(&str, usize)>)> {
    c.iter()
        .map(|(t, rows)| {
            let rows = rows
                .iter()
                .map(|(e, _, ev)| (e.as_str(), ev.len()))
                .collect();
            (t.as_str(), rows)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    EraseAndMerge,
    EraseAndCluster,
}

const KINDS: [Kind; 2] = [Kind::EraseAndMerge, Kind::EraseAndCluster];

fn plan(log: &Log<SimFs>, kind: Kind) -> Plan {
    let view = log.compaction_view(false).unwrap();
    let erase = policy::drop_tenant(&view, "gone");
    match kind {
        Kind::EraseAndMerge => erase.and(policy::merge_small_segments(&view, 4096, 8192)),
        Kind::EraseAndCluster => erase.and(policy::cluster_sealed_segments(&view)),
    }
}

/// Builds the log and returns (before, after) dumps and the ops the setup takes.
fn reference(kind: Kind) -> (Content, Content, u64, u64) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    fill(&log);
    let before = content(&log);
    let setup_ops = fs.mutating_ops();
    let p = plan(&log, kind);
    let report = log
        .compact_blocking(&p, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(report.rolled_active_segment);
    assert!(report.rewrite.input_segments >= 3, "{report:?}");
    let clustered = log.segments().iter().filter(|s| s.clustered).count();
    if kind == Kind::EraseAndCluster {
        assert!(clustered >= 3, "{:?}", log.segments());
    } else {
        assert_eq!(clustered, 0);
    }
    let total_ops = fs.mutating_ops();
    let after = content(&log);
    assert!(after["gone"].is_empty() && !before["gone"].is_empty());
    (before, after, setup_ops, total_ops)
}

/// The files that still hold an erased tenant's payload marker or one of its execution ids
/// (in a segment, or in an index checkpoint's string table: a crash after the commit point
/// must not leave the inputs' checkpoints behind).
fn marker_files(fs: &SimFs) -> Vec<String> {
    let erased_id: &[u8] = b"gone-";
    fs.file_names(Path::new("/log"))
        .into_iter()
        .filter(|n| {
            fs.read_file(&Path::new("/log").join(n)).is_some_and(|b| {
                b.windows(MARKER.len()).any(|w| w == MARKER)
                    || b.windows(erased_id.len()).any(|w| w == erased_id)
            })
        })
        .collect()
}

fn open_dump(fs: &SimFs, what: &str) -> Content {
    let log = Log::open_with_fs(fs.clone(), "/log", opts())
        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let d = content(&log);
    log.close().unwrap();
    d
}

/// Runs setup + compaction on `fs`; returns whether compact returned Ok.
fn run(fs: &SimFs, kind: Kind) -> bool {
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    fill(&log);
    let p = plan(&log, kind);
    log.compact_blocking(&p, CompactOptions::default(), &mut |_, _| {})
        .is_ok()
}

#[test]
fn a_power_cut_at_any_step_of_a_compaction_leaves_the_old_set_or_the_new_one() {
    for kind in KINDS {
        power_cuts(kind);
    }
}

fn power_cuts(kind: Kind) {
    let (before, after, setup_ops, total_ops) = reference(kind);
    let mut recoveries = 0;
    let (mut saw_old, mut saw_new) = (0, 0);
    for n in setup_ops + 1..=total_ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Torn { seed: n ^ 0x5A5A },
        ] {
            let fs = SimFs::new();
            fs.power_off_after(n);
            let completed = run(&fs, kind);
            let crashed = fs.crash(mode);
            let what = format!(
                "{kind:?}: cut after op {n} ({} into compaction), {mode:?}",
                n - setup_ops
            );
            let got = open_dump(&crashed, &what);
            if got == after {
                saw_new += 1;
                assert_eq!(marker_files(&crashed), Vec::<String>::new(), "{what}");
            } else {
                assert!(
                    got == before,
                    "{what}: neither the old set nor the new one: {got:?}"
                );
                assert!(!completed, "{what}: compaction returned Ok, then came back");
                saw_old += 1;
            }
            let again = crashed.crash(CrashMode::Torn { seed: n + 7 });
            assert!(
                open_dump(&again, &what) == got,
                "{what}: a second cut changed the answers"
            );
            recoveries += 2;
        }
    }
    assert!(saw_old > 0 && saw_new > 0, "old {saw_old}, new {saw_new}");
    eprintln!(
        "{kind:?}: power cut after each of {} operations × 4 modes: {recoveries} recoveries ({saw_old} old set, {saw_new} new set)",
        total_ops - setup_ops
    );
}

#[test]
fn an_io_error_at_any_step_of_a_compaction_is_typed_and_reopening_settles_it() {
    for kind in KINDS {
        io_errors(kind);
    }
}

fn io_errors(kind: Kind) {
    let (before, after, setup_ops, total_ops) = reference(kind);
    for n in setup_ops + 1..=total_ops {
        for persistent in [false, true] {
            let fs = SimFs::new();
            fs.inject(Fault {
                op: None,
                nth: n,
                kind: FaultKind::Eio,
                persistent,
            });
            let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
            fill(&log);
            let p = plan(&log, kind);
            let result = log.compact_blocking(&p, CompactOptions::default(), &mut |_, _| {});
            let what = format!("{kind:?}: EIO at op {n}, persistent {persistent}: {result:?}");
            let live = content(&log);
            match &result {
                Ok(_) => assert!(live == after, "{what}"),
                Err(e) => {
                    // Typed: the failed operation itself, or the poisoning it caused.
                    assert!(
                        e.is_poisoned() || matches!(e, Error::Segment(SegmentError::Io { .. })),
                        "{what}: untyped error"
                    );
                    // The index moves to the new segments only once they are in place, so a
                    // compaction that failed changed nothing readers see, poisoned or not.
                    assert!(
                        live == before,
                        "{what}: live reads changed: {:?} became {:?}",
                        summary(&before),
                        summary(&live)
                    );
                    if log.is_poisoned() {
                        let refused = log.append_blocking("keep-0", "keep", b"after");
                        assert!(
                            refused.as_ref().is_err_and(Error::is_poisoned),
                            "{what}: a poisoned log took an append: {refused:?}"
                        );
                    }
                }
            }
            let _ = log.close();
            drop(log);
            fs.clear_faults();
            let reopened = open_dump(&fs, &what);
            assert!(
                reopened == before || reopened == after,
                "{what}: a mix after reopen"
            );
            if result.is_ok() {
                assert!(reopened == after, "{what}");
            }
            // No temporary file outlives the reopen.
            let names = fs.file_names(Path::new("/log"));
            assert!(
                names
                    .iter()
                    .all(|n| !n.ends_with(".compacting") && !n.starts_with("REPLACE")),
                "{what}: {names:?}"
            );
        }
    }
}
