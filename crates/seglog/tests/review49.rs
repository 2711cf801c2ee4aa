//! Review 49: `repair_dir_with_fs` of logs with offloaded segments (commit 70be633).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::offload::*;
use seglog::compaction::Plan;
use seglog::io::sim::{CrashMode, SimFs};
use seglog::io::{FileSystem, SegmentFile};
use seglog::{CompactOptions, Log};
use seglog_segment::inspect::analyze_segment;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

fn dir() -> &'static Path {
    Path::new("/log")
}

fn files(fs: &SimFs) -> BTreeMap<String, Vec<u8>> {
    fs.file_names(dir())
        .into_iter()
        .map(|n| {
            let bytes = fs.read_file(&dir().join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect()
}

/// Every event a reader sees: (lsn, execution, seq, payload).
fn events(log: &Log<SimFs>) -> BTreeSet<(u64, String, u64, Vec<u8>)> {
    let mut out = BTreeSet::new();
    for t in TENANTS {
        for e in log.list_executions(t, usize::MAX, 0).unwrap() {
            for ev in log.read(&e).unwrap() {
                out.insert((ev.lsn, e.clone(), ev.seq, ev.payload.to_vec()));
            }
        }
    }
    out
}

/// Flips a bit in record `k` of the segment at `path`; returns the record's LSN.
fn damage_record(fs: &SimFs, path: &Path, k: usize) -> u64 {
    let mut bytes = fs.read_file(path).unwrap();
    let analysis = analyze_segment(&bytes, 0);
    let off = analysis.record_offsets[k];
    let lsn = analysis.record(&bytes, off).unwrap().lsn();
    bytes[off as usize + 40] ^= 0x04;
    fs.replace_file(path, bytes).unwrap();
    lsn
}

fn put_file(fs: &SimFs, path: &Path, bytes: &[u8]) {
    let f = fs.create_new(path).unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
    drop(f);
    fs.sync_dir(dir()).unwrap();
}

fn put_in_source(fs: &SimFs, source: &MapSource, path: &Path, number: u64) {
    let bytes = fs.read_file(path).unwrap();
    source
        .objects
        .lock()
        .unwrap()
        .insert(location(number), Bytes::from(bytes));
}

/// The outcome every repair must have: either it failed and changed nothing, or it
/// succeeded, the log opens with its source, and every event before `damaged_lsn` is there.
fn check_repair(
    fs: &SimFs,
    source: &Arc<MapSource>,
    damaged_lsn: u64,
    before_events: &BTreeSet<(u64, String, u64, Vec<u8>)>,
) {
    let before = files(fs);
    let result = seglog::repair_dir_with_fs(fs.clone(), dir(), |_| true);
    match result {
        Err(e) => assert_eq!(
            files(fs).keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "repair failed ({e}) after changing the directory"
        ),
        Ok(report) => {
            assert!(report.differences.is_empty(), "{:?}", report.differences);
            let log = open(fs, source).unwrap_or_else(|e| {
                panic!(
                    "repair reported success ({:?}) but the log does not open: {e}",
                    report.plan
                )
            });
            let after = events(&log);
            let expected: BTreeSet<_> = before_events
                .iter()
                .filter(|e| e.0 < damaged_lsn)
                .cloned()
                .collect();
            let lost: Vec<_> = expected.difference(&after).map(|e| e.0).collect();
            assert!(
                lost.is_empty(),
                "events before the damage lost: lsns {lost:?}"
            );
            let changed: Vec<_> = after.difference(before_events).collect();
            assert!(
                changed.is_empty(),
                "events changed or invented: {changed:?}"
            );
            log.close().unwrap();
        }
    }
}

/// An offloaded segment whose number is above the local segments the salvage leaves: a
/// compaction's output takes a fresh (high) number but keeps its input's first LSN; once the
/// writer has rolled past it, it can be offloaded. Damage in the first local segment after it
/// then cuts away every local segment numbered above it. `check_offloaded` checks only the
/// first LSNs; the salvage open then refuses the numbering (format.md §7) after cutting.
#[test]
fn review49_repair_leaves_an_offloaded_compaction_output_numbered_above_every_local_segment() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    log.set_segment_source(source.clone());
    append_some(&log, 0, 120);
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    assert!(sealed.len() >= 4, "{}", sealed.len());
    let plan = Plan {
        rewrite_segments: [sealed[0].number, sealed[1].number].into_iter().collect(),
        ..Plan::default()
    };
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let victim = sealed[2].clone();
    let outputs: Vec<_> = log
        .segments()
        .into_iter()
        .filter(|s| s.first_lsn < victim.first_lsn)
        .collect();
    let top = outputs.iter().map(|s| s.number).max().unwrap();
    assert!(top > victim.number, "{outputs:?} {victim:?}");
    // Roll past the outputs' numbers, so that they may be offloaded.
    let mut i = 200;
    while log.segments().last().unwrap().number <= top {
        append_some(&log, i, 5);
        i += 5;
    }
    for o in &outputs {
        put_in_source(&fs, &source, &o.path, o.number);
        log.offload_segment(o.number, &target(&source, o.number))
            .unwrap();
    }
    let before_events = events(&log);
    log.close().unwrap();
    drop(log);
    // The first local segment by LSN after the offloaded outputs, numbered below them.
    let damaged_lsn = damage_record(&fs, &victim.path, 1);
    check_repair(&fs, &source, damaged_lsn, &before_events);
}

/// An offload a crash interrupted (stub committed, `.seg` file still there, format.md §7
/// between steps 3 and 4), with a bit flipped in the left-over `.seg` file, which the open
/// removes anyway: the segment's bytes are in the bucket. The repair cuts the left-over
/// file instead, removes every later segment and the stub: events the bucket holds, and
/// every later one, are lost.
#[test]
fn review49_repair_cuts_the_leftover_file_of_an_interrupted_offload_and_drops_its_stub() {
    let (fs, source, _) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    assert!(sealed.len() >= 4);
    // Offload the first two; the second one's offload is interrupted.
    for s in &sealed[..2] {
        log.offload_segment(s.number, &target(&source, s.number))
            .unwrap();
    }
    let before_events = events(&log);
    log.close().unwrap();
    drop(log);
    let victim = &sealed[1];
    let original = source.objects.lock().unwrap()[&location(victim.number)].clone();
    put_file(&fs, &victim.path, &original);
    let damaged_lsn = damage_record(&fs, &victim.path, 1);
    // What a plain open does with this directory: finishes the offload; nothing is lost.
    {
        let probe = fs.fork();
        let log = open(&probe, &source).unwrap();
        assert_eq!(events(&log), before_events, "a plain open lost events");
        log.close().unwrap();
    }
    let stub = format!("{:020}.off", victim.first_lsn);
    let report = seglog::repair_dir_with_fs(fs.clone(), dir(), |_| true);
    let names = fs.file_names(dir());
    let log = open(&fs, &source).unwrap();
    let after = events(&log);
    let lost: Vec<_> = before_events.difference(&after).map(|e| e.0).collect();
    assert!(
        lost.is_empty() && names.contains(&stub),
        "repair ({:?}) of a log a plain open opens whole lost {} events (from LSN {:?}; the \
         damaged leftover record was LSN {damaged_lsn}); stub kept: {}",
        report.map(|r| r.plan),
        lost.len(),
        lost.first(),
        names.contains(&stub)
    );
}

/// Damage in the first record of the first local segment after the offloaded ones: the
/// cut leaves that segment with its header only.
#[test]
fn review49_damage_at_the_first_local_record_after_offloaded_segments() {
    let (fs, source, _) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    for s in &sealed[..sealed.len() - 1] {
        log.offload_segment(s.number, &target(&source, s.number))
            .unwrap();
    }
    append_some(&log, 1000, 20);
    let before_events = events(&log);
    log.close().unwrap();
    drop(log);
    let victim = sealed.last().unwrap();
    let damaged_lsn = damage_record(&fs, &victim.path, 0);
    check_repair(&fs, &source, damaged_lsn, &before_events);
    // It takes appends again, and reopens.
    let log = open(&fs, &source).unwrap();
    append_some(&log, 3000, 20);
    log.close().unwrap();
    open(&fs, &source).unwrap().close().unwrap();
}

/// A power cut at every step of a repair of a log with offloaded segments, then the repair
/// again: the log opens and keeps every event before the damage.
#[test]
fn review49_a_power_cut_anywhere_in_a_repair_with_offloaded_segments() {
    let build = || {
        let (fs, source, _) = shipped_log();
        let log = open(&fs, &source).unwrap();
        let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
        for s in &sealed[..sealed.len() - 2] {
            log.offload_segment(s.number, &target(&source, s.number))
                .unwrap();
        }
        append_some(&log, 1000, 20);
        let before_events = events(&log);
        log.close().unwrap();
        drop(log);
        let victim = &sealed[sealed.len() - 2];
        let damaged_lsn = damage_record(&fs, &victim.path, 2);
        (fs, source, before_events, damaged_lsn)
    };
    let ops = {
        let (fs, _, _, _) = build();
        let before = fs.mutating_ops();
        seglog::repair_dir_with_fs(fs.clone(), dir(), |_| true).unwrap();
        fs.mutating_ops() - before
    };
    assert!(ops > 2, "{ops}");
    for n in 1..=ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Reordered { seed: n },
        ] {
            let (fs, source, before_events, damaged_lsn) = build();
            fs.power_off_after(fs.mutating_ops() + n);
            let _ = seglog::repair_dir_with_fs(fs.clone(), dir(), |_| true);
            let after = fs.crash(mode);
            let what = format!("power cut after repair operation {n}, {mode:?}");
            // Whatever the cut left, the repair again finishes the job.
            let r = seglog::repair_dir_with_fs(after.clone(), dir(), |_| true);
            assert!(r.is_ok(), "{what}: the repair again fails: {:?}", r.err());
            let log = open(&after, &source)
                .unwrap_or_else(|e| panic!("{what}: the log does not open: {e}"));
            let got = events(&log);
            let lost: Vec<_> = before_events
                .iter()
                .filter(|e| e.0 < damaged_lsn && !got.contains(e))
                .map(|e| e.0)
                .collect();
            assert!(lost.is_empty(), "{what}: lost {lost:?}");
            log.close().unwrap();
        }
    }
}

/// An incomplete last segment (no header, zeros) right after the offloaded segments, with
/// no other local segment: every sealed segment is offloaded and the active one is zeroed.
#[test]
fn review49_incomplete_segment_right_after_offloaded_segments_only() {
    let (fs, source, _) = shipped_log();
    let log = open(&fs, &source).unwrap();
    offload_local(&log, &source);
    let before_events = events(&log);
    let active = log.segments().last().unwrap().clone();
    assert_eq!(log.segments().len(), 1);
    log.close().unwrap();
    drop(log);
    let len = fs.read_file(&active.path).unwrap().len();
    fs.replace_file(&active.path, vec![0; len.max(64)]).unwrap();
    check_repair(&fs, &source, active.first_lsn, &before_events);
}

/// A stub at the first LSN of a local segment that names another segment (here: the same
/// number, another salt: the stub of another copy of the log), with the local segment's
/// first record damaged. `check_offloaded` lets it through (it lies at the cut, not after
/// it, and verify leaves a stub at a local segment's LSN to that segment); the salvage open
/// cuts, then fails on the stub.
#[test]
fn review49_repair_with_a_foreign_stub_at_the_cut_segment_fails_after_cutting() {
    let (other, other_source, _) = shipped_log();
    let log = open(&other, &other_source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let victim = sealed[1].clone();
    log.offload_segment(victim.number, &target(&other_source, victim.number))
        .unwrap();
    log.close().unwrap();
    drop(log);
    let stub_name = format!("{:020}.off", victim.first_lsn);
    let foreign = other.read_file(&dir().join(&stub_name)).unwrap();

    let (fs, source, _) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let before_events = events(&log);
    let mine = log
        .segments()
        .into_iter()
        .find(|s| s.first_lsn == victim.first_lsn)
        .unwrap();
    assert_eq!(mine.number, victim.number);
    log.close().unwrap();
    drop(log);
    put_file(&fs, &dir().join(&stub_name), &foreign);
    let damaged_lsn = damage_record(&fs, &mine.path, 0);
    check_repair(&fs, &source, damaged_lsn, &before_events);
}
