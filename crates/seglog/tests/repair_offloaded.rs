//! `repair_dir` of a log with offloaded segments (a lazily restored log, or one whose
//! read-through keeps few segments local): damage in the local segments after them is
//! salvaged as in any log, keeping the offloaded segments (their stubs and checkpoints) and
//! the unshipped tail before the damage, which a restore from the bucket would lose. What a
//! salvage cannot make into a log that opens is refused before anything changes: an
//! offloaded segment after the cut, or one whose checkpoint is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;
use seglog::io::sim::SimFs;
use seglog_segment::inspect::analyze_segment;
use std::collections::BTreeMap;
use std::path::Path;

fn dir() -> &'static Path {
    Path::new("/log")
}

/// Every file of the directory with its bytes.
fn files(fs: &SimFs) -> BTreeMap<String, Vec<u8>> {
    fs.file_names(dir())
        .into_iter()
        .map(|n| {
            let bytes = fs.read_file(&dir().join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect()
}

/// Flips a bit in record `k` of the segment at `path`; returns how many records it holds.
fn damage_record(fs: &SimFs, path: &Path, k: usize) -> usize {
    let mut bytes = fs.read_file(path).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    let at = offsets[k] as usize + 40;
    bytes[at] ^= 0x04;
    fs.replace_file(path, bytes).unwrap();
    offsets.len()
}

/// A closed log whose sealed segments are all offloaded but the last `keep_local` of them,
/// with `tail` more events appended after; the source, and the events before the tail.
fn offloaded_log(keep_local: usize, tail: u64) -> (SimFs, std::sync::Arc<MapSource>, usize) {
    let (fs, source, _) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    assert!(sealed.len() > keep_local + 2, "{}", sealed.len());
    let offload = sealed.len() - keep_local;
    for s in &sealed[..offload] {
        log.offload_segment(s.number, &target(&source, s.number))
            .unwrap();
    }
    append_some(&log, 1000, tail);
    log.close().unwrap();
    (fs, source, offload)
}

fn event_count(log: &seglog::Log<SimFs>) -> usize {
    common::dump(log, &TENANTS)
        .values()
        .flat_map(|execs| execs.iter().map(|(_, _, events)| events.len()))
        .sum()
}

#[test]
fn damage_after_the_offloaded_segments_is_repaired_and_they_are_kept() {
    let (fs, source, offloaded) = offloaded_log(1, 12);
    let log = open(&fs, &source).unwrap();
    assert_eq!(log.offloaded_segments().len(), offloaded);
    let before = event_count(&log);
    // The sealed segment kept local, after the offloaded ones.
    let last = log.segments().into_iter().rfind(|s| s.sealed).unwrap();
    log.close().unwrap();
    drop(log);
    // Acknowledged damage: a record of a sealed segment (verify finds it; reads of it fail).
    let records = damage_record(&fs, &last.path, 1);
    assert!(records > 3, "{records}");
    assert!(!seglog::verify_dir_with_fs(&fs, dir()).unwrap().is_clean());

    let report = seglog::repair_dir_with_fs(fs.clone(), dir(), |_| true).unwrap();
    assert!(report.repaired, "{:?}", report.plan);
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(report.verified.is_clean(), "{:?}", report.verified);
    assert_eq!(report.verified.offloaded.len(), offloaded);
    let cut = report.plan.cut.as_ref().unwrap();
    assert_eq!(cut.segment, last.number);

    // The offloaded segments are still offloaded and read through the source; everything
    // before the damaged record is there, nothing from it on.
    let log = open(&fs, &source).unwrap();
    assert_eq!(log.offloaded_segments().len(), offloaded);
    let after = event_count(&log);
    assert!(after < before, "{after} of {before}");
    // What went: the damaged segment's records from the damaged one on, and the tail
    // segment's (up to 3 events a record).
    assert!(before - after >= records - 1, "{after} of {before}");
    // It takes appends again.
    append_some(&log, 2000, 3);
    log.close().unwrap();
}

#[test]
fn a_repair_that_would_leave_an_offloaded_segment_after_the_cut_is_refused_unchanged() {
    let (fs, source, _) = offloaded_log(1, 12);
    let log = open(&fs, &source).unwrap();
    // A local segment between offloaded ones (the second offloaded segment comes back),
    // then damage in it: the cut there would leave offloaded segments after it.
    let first_offloaded = log.offloaded_segments()[1].number;
    log.rehydrate_segment(first_offloaded).unwrap();
    let local = log
        .segments()
        .into_iter()
        .find(|s| s.number == first_offloaded)
        .unwrap();
    log.close().unwrap();
    drop(log);
    damage_record(&fs, &local.path, 1);
    let before = files(&fs);
    // The plan alone (`seglog repair --dry-run`) says so too, not a plan the run refuses.
    let planned = seglog::plan_salvage(&fs, dir()).unwrap_err();
    assert!(
        matches!(planned, seglog::Error::Unrepairable(_)),
        "{planned:?}"
    );
    let e = seglog::repair_dir_with_fs(fs.clone(), dir(), |_| true).unwrap_err();
    assert!(
        matches!(e, seglog::Error::Unrepairable(_)),
        "{e:?}: not a clear refusal"
    );
    assert!(e.to_string().contains("offloaded"), "{e}");
    assert_eq!(files(&fs), before, "a refused repair changed the directory");
}

#[test]
fn an_offloaded_segment_without_its_checkpoint_is_refused_unchanged() {
    let (fs, source, _) = offloaded_log(1, 12);
    let log = open(&fs, &source).unwrap();
    let victim = log.offloaded_segments()[0].clone();
    let last = log.segments().last().unwrap().clone();
    log.close().unwrap();
    drop(log);
    let idx = dir().join(format!("{:020}.idx", victim.first_lsn));
    fs.replace_file(&idx, b"not a checkpoint".to_vec()).unwrap();
    damage_record(&fs, &last.path, 1);
    let before = files(&fs);
    let e = seglog::repair_dir_with_fs(fs.clone(), dir(), |_| true).unwrap_err();
    assert!(matches!(e, seglog::Error::Unrepairable(_)), "{e:?}");
    assert!(e.to_string().contains("checkpoint"), "{e}");
    assert_eq!(files(&fs), before, "a refused repair changed the directory");
}
