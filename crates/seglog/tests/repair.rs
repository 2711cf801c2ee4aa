//! `repair_dir`: the plan says exactly what the salvage then cuts, nothing changes without
//! confirmation or while a writer holds the log, and the result verifies clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Options becomes #[non_exhaustive]: built by assignment, not by struct literal.
#![allow(clippy::field_reassign_with_default)]

use seglog::{CheckpointMode, Log, Options, RecoveryMode};
use seglog_segment::inspect::analyze_segment;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn opts() -> Options {
    let mut o = Options::default();
    o.segment_size_bytes = 4096;
    o.max_record_size_bytes = Some(2048);
    o.checkpoints = CheckpointMode::Inline;
    o
}

/// A closed log of 120 events over several segments; its segment files.
fn make_log(dir: &Path) -> Vec<PathBuf> {
    let log = Log::open_blocking(dir, opts()).unwrap();
    for i in 0..120u64 {
        let body = format!("event {i} {}", "z".repeat((i * 11 % 90) as usize));
        log.append_blocking(&format!("exec-{}", i % 4), "tenant", body.as_bytes())
            .unwrap();
    }
    let segs: Vec<PathBuf> = log.segments().into_iter().map(|s| s.path).collect();
    log.close().unwrap();
    assert!(segs.len() >= 4, "{segs:?}");
    segs
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Flips a bit inside the record at index `k` of the segment; returns its offset and the
/// records of that segment.
fn damage_record(path: &Path, k: usize) -> (u64, usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    let at = offsets[k];
    bytes[at as usize + 50] ^= 0x04;
    std::fs::write(path, &bytes).unwrap();
    (at, offsets.len())
}

fn events(dir: &Path) -> u64 {
    let log = Log::open_blocking(dir, opts()).unwrap();
    let n = (0..4)
        .map(|e| log.count(&format!("exec-{e}")).unwrap())
        .sum();
    log.close().unwrap();
    n
}

#[test]
fn repair_cuts_exactly_what_it_planned_and_leaves_a_clean_log() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let (at, in_segment) = damage_record(&segs[1], 3);
    let later_records: u64 = segs[2..]
        .iter()
        .map(|p| {
            analyze_segment(&std::fs::read(p).unwrap(), 0)
                .record_offsets
                .len() as u64
        })
        .sum();
    let before_first = std::fs::read(&segs[0]).unwrap();

    let mut asked = None;
    let report = seglog::repair_dir(tmp.path(), |plan| {
        asked = Some(plan.clone());
        true
    })
    .unwrap();
    let plan = asked.expect("confirm was not asked");
    assert_eq!(plan, report.plan);
    let cut = plan.cut.clone().expect("no cut planned");
    assert_eq!(cut.path, segs[1]);
    assert_eq!(cut.offset, at);
    assert_eq!(cut.records_kept, 3);
    // The damaged record cannot be counted; every whole record after it is.
    assert_eq!(cut.records_dropped, in_segment as u64 - 4);
    assert!(cut.records_dropped_exact && cut.acknowledged);
    assert_eq!(
        plan.removed
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>(),
        segs[2..].to_vec()
    );
    assert_eq!(
        plan.removed.iter().map(|r| r.records).sum::<u64>(),
        later_records
    );
    assert!(plan.drops_acknowledged_data());
    assert!(report.repaired);
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(report.verified.is_clean(), "{:?}", report.verified);
    // Exactly the planned prefix is left: the first segment untouched, the second cut there.
    assert_eq!(std::fs::read(&segs[0]).unwrap(), before_first);
    for later in &segs[2..] {
        assert!(!later.exists(), "{} survived", later.display());
    }
    assert!(seglog::verify_dir(tmp.path()).unwrap().is_clean());
    assert_eq!(events(tmp.path()), plan.records_kept());
}

#[test]
fn repair_changes_nothing_without_confirmation() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    damage_record(&segs[2], 1);
    let before = files(tmp.path());
    let report = seglog::repair_dir(tmp.path(), |_| false).unwrap();
    assert!(!report.repaired);
    assert!(report.plan.cut.is_some());
    assert!(!report.verified.is_clean());
    assert_eq!(files(tmp.path()), before);
}

#[test]
fn repair_refuses_a_log_a_writer_holds_without_reading_or_asking() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    // Nothing in the background (no prepared next segment, no zeros ahead), so that the
    // directory only changes if the repair changes it.
    let quiet = opts().prepare_next_segment(false).zero_ahead_bytes(0);
    let writer = Log::open_blocking(tmp.path(), quiet).unwrap();
    // Damage the writer cannot see (a sealed segment it does not reread).
    damage_record(&segs[1], 2);
    let before = files(tmp.path());
    let mut asked = false;
    let err = seglog::repair_dir(tmp.path(), |_| {
        asked = true;
        true
    })
    .unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(!asked);
    assert_eq!(files(tmp.path()), before);
    writer.close().unwrap();
}

#[test]
fn a_clean_log_needs_no_repair_and_nothing_is_asked() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let before = files(tmp.path());
    let report = seglog::repair_dir(tmp.path(), |_| panic!("asked about a clean log")).unwrap();
    assert!(report.plan.is_empty() && !report.repaired);
    assert!(report.verified.is_clean());
    assert_eq!(files(tmp.path()), before);
}

#[test]
fn a_torn_tail_is_cut_as_unacknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let last = segs.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let a = analyze_segment(&bytes, 0);
    // The last record half written (and the close's marker not at all).
    let cut_at = *a.record_offsets.last().unwrap();
    std::fs::write(last, &bytes[..cut_at as usize + 20]).unwrap();
    let report = seglog::repair_dir(tmp.path(), |_| true).unwrap();
    let cut = report.plan.cut.clone().unwrap();
    assert_eq!(cut.offset, cut_at);
    assert!(!cut.acknowledged && !report.plan.drops_acknowledged_data());
    assert!(report.plan.removed.is_empty());
    assert!(report.verified.is_clean(), "{:?}", report.verified);
}

#[test]
fn a_damaged_checkpoint_is_removed_and_no_record_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let total = events(tmp.path());
    let first_lsn = analyze_segment(&std::fs::read(&segs[0]).unwrap(), 0)
        .header
        .unwrap()
        .first_lsn;
    let cp = tmp
        .path()
        .join(seglog_index::checkpoint::checkpoint_file_name(first_lsn));
    let mut bytes = std::fs::read(&cp).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&cp, &bytes).unwrap();
    assert!(!seglog::verify_dir(tmp.path()).unwrap().is_clean());
    let report = seglog::repair_dir(tmp.path(), |_| true).unwrap();
    assert_eq!(report.plan.damaged_checkpoints.len(), 1);
    assert!(report.plan.cut.is_none() && report.plan.removed.is_empty());
    assert!(!report.plan.drops_acknowledged_data());
    assert!(report.verified.is_clean(), "{:?}", report.verified);
    assert_eq!(events(tmp.path()), total);
}

#[test]
fn an_unreadable_sealed_header_is_refused_before_any_change() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    damage_record(&segs[3], 0); // damage after the bad header must not be cut either
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    bytes[3] ^= 0xff; // the magic
    std::fs::write(&segs[1], &bytes).unwrap();
    let before = files(tmp.path());
    let err = seglog::repair_dir(tmp.path(), |_| panic!("asked")).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(files(tmp.path()), before);
}

#[test]
fn repair_never_creates_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    let err = seglog::repair_dir(tmp.path(), |_| true).unwrap_err();
    assert!(matches!(err, seglog::Error::Unrepairable(_)), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let missing = tmp.path().join("nope");
    assert!(seglog::repair_dir(&missing, |_| true).is_err());
    assert!(!missing.exists());
}

#[test]
fn the_repaired_log_opens_in_the_default_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    damage_record(&segs[0], 5);
    let mut strict = opts();
    strict.recovery_mode = RecoveryMode::TolerateTornTail;
    // Without checkpoints, so the open reads the damaged sealed segment.
    strict.checkpoints = CheckpointMode::Off;
    assert!(Log::open_blocking(tmp.path(), strict.clone()).is_err());
    seglog::repair_dir(tmp.path(), |_| true).unwrap();
    Log::open_blocking(tmp.path(), strict)
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(events(tmp.path()), 5);
}

/// A segment with other names was refused (a cut in place would have cut them too); the cut
/// is a copy renamed over the segment now (reviews 63 and 64), so the repair goes ahead and
/// the other name keeps every byte.
#[test]
fn a_segment_with_other_names_is_cut_by_copy_and_the_other_name_keeps_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("log");
    let segs = make_log(&log_dir);
    // A backup's hard link to a sealed segment, which then rots.
    let backup = tmp.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    let linked = backup.join(segs[1].file_name().unwrap());
    std::fs::hard_link(&segs[1], &linked).unwrap();
    damage_record(&segs[1], 2);
    let backup_before = std::fs::read(&linked).unwrap();
    let report = seglog::repair_dir(&log_dir, |_| true).unwrap();
    assert!(
        report.repaired && report.differences.is_empty(),
        "{report:?}"
    );
    assert!(std::fs::read(&segs[1]).unwrap().len() < backup_before.len());
    assert_eq!(std::fs::read(&linked).unwrap(), backup_before);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&linked).unwrap().nlink(), 1);
}

#[test]
fn a_pending_compaction_switch_is_refused_before_anything_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    damage_record(&segs[2], 1);
    std::fs::write(
        tmp.path().join(seglog_segment::format::MANIFEST_FILE_NAME),
        b"",
    )
    .unwrap();
    let before = files(tmp.path());
    let err = seglog::repair_dir(tmp.path(), |_| panic!("asked")).unwrap_err();
    assert!(matches!(err, seglog::Error::Unrepairable(_)), "{err}");
    assert_eq!(files(tmp.path()), before);
}
