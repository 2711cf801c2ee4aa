//! Review 18 (hostile review of read-through): failing tests for findings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use seglog::io::sim::SimFs;
use seglog::io::{FileSystem, SegmentFile};
use seglog::{CheckpointMode, Log};
use std::path::Path;

/// Writes `bytes` durably as a new file `path` (as a crash would have left it).
fn put_file(fs: &SimFs, path: &Path, bytes: &[u8]) {
    let f = fs.create_new(path).unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
    drop(f);
    fs.sync_dir(Path::new("/log")).unwrap();
}

/// Finding 1: an offload interrupted after its stub (the `.seg` file still there: a crash
/// between steps 3 and 4 of format.md §7) and finished by an open with
/// `CheckpointMode::Off` loses the segment's checkpoint: `remove_orphans` runs with
/// `keep = use_checkpoints || !offloaded.is_empty()`, i.e. `false` when the interrupted
/// offload is the only one, so every checkpoint goes (the still-local segment's included),
/// and then `finish_interrupted_offloads` removes the `.seg` file. The directory now holds a
/// stub whose checkpoint is gone: every later open fails ("no valid index checkpoint"), the
/// log's records are only in the bucket.
#[test]
fn review18_checkpoints_off_open_finishing_an_interrupted_offload_deletes_its_checkpoint() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let victim = log.segments().into_iter().find(|s| s.sealed).unwrap();
    let seg_bytes = fs.read_file(&victim.path).unwrap();
    log.offload_segment(victim.number, &target(&source, victim.number))
        .unwrap();
    log.close().unwrap();
    // The state a power cut between the stub's directory fsync and the file's removal leaves.
    put_file(&fs, &victim.path, &seg_bytes);
    assert!(fs
        .file_names(Path::new("/log"))
        .iter()
        .any(|n| n.ends_with(".off")));

    // An open with checkpoints off finishes the offload (legal options: no offload is made).
    let off = opts().checkpoints(CheckpointMode::Off);
    let log = Log::open_with_fs(fs.clone(), "/log", off).unwrap();
    log.set_segment_source(source.clone());
    assert_eq!(common::dump(&log, &TENANTS), expected);
    assert_eq!(log.offloaded_segments().len(), 1);
    log.close().unwrap();

    let idx = format!("{:020}.idx", victim.first_lsn);
    let names = fs.file_names(Path::new("/log"));
    let reopened = open(&fs, &source);
    assert!(
        reopened.is_ok(),
        "the log no longer opens: {:?}; files {names:?} (checkpoint {idx} present: {})",
        reopened.err(),
        names.contains(&idx)
    );
    assert_eq!(common::dump(&reopened.unwrap(), &TENANTS), expected);
}

/// Finding 2: `verify_dir` only verifies offloaded segments *before* some local segment
/// (`Pending::verify_before` is called per local file, never after the loop), so a stub that
/// lies after the last local segment (the situation the open refuses: "offloaded segment ...
/// lies after the log's last segment") is not listed, not checked, and the report is clean
/// while `Log::open` fails. The same for a stub with a missing checkpoint in that position.
#[test]
fn review18_verify_dir_reports_clean_a_log_whose_open_fails() {
    let (fs, source, _expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    assert!(sealed.len() >= 3);
    let middle = sealed[1].clone();
    log.offload_segment(middle.number, &target(&source, middle.number))
        .unwrap();
    let later: Vec<_> = log
        .segments()
        .into_iter()
        .filter(|s| s.first_lsn > middle.first_lsn)
        .collect();
    log.close().unwrap();
    // The local segments after it are lost (or cut by a salvage).
    for s in &later {
        fs.remove(&s.path).unwrap();
    }
    fs.sync_dir(Path::new("/log")).unwrap();
    let opened = open(&fs, &source);
    let report = seglog::verify_dir_with_fs(&fs, Path::new("/log")).unwrap();
    if let Err(e) = &opened {
        assert!(
            !report.is_clean(),
            "Log::open fails ({e}) but verify_dir says clean: offloaded listed {:?}",
            report.offloaded
        );
    }
}

/// Finding 3: `seglog repair` (salvage) knows nothing of offloaded segments. With damage in a
/// local segment before an offloaded one, the plan cuts there and removes the later local
/// segments (it does not mention the offloaded segment), the salvage open removes them, and
/// *then* the open fails (`OffloadedRecovery::finish`: the offloaded segment lies after the
/// last local segment). The repair fails after it changed the directory, and leaves a log
/// that no open accepts.
#[test]
fn review18_repair_with_an_offloaded_segment_after_the_damage_fails_after_cutting() {
    let (fs, source, _expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    assert!(sealed.len() >= 3);
    let middle = sealed[1].clone();
    log.offload_segment(middle.number, &target(&source, middle.number))
        .unwrap();
    log.close().unwrap();
    // A bit flip in the last record region of the first (local) segment.
    let first = &sealed[0];
    let mut bytes = fs.read_file(&first.path).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x10;
    fs.replace_file(&first.path, bytes).unwrap();
    let before = fs.file_names(Path::new("/log"));
    let result = seglog::repair_dir_with_fs(fs.clone(), Path::new("/log"), |_| true);
    let after = fs.file_names(Path::new("/log"));
    match &result {
        Ok(r) => {
            let reopened = open(&fs, &source);
            assert!(
                reopened.is_ok(),
                "repair reported {:?} but the log does not open: {:?}",
                r.plan,
                reopened.err()
            );
        }
        Err(e) => assert_eq!(
            before, after,
            "repair failed ({e}) after changing the directory"
        ),
    }
}

/// Finding 1, variant: the open finishes an interrupted offload without checking that the
/// segment's checkpoint is (still) valid, which `offload_segment` itself checks (step 2). With
/// the checkpoint damaged while the `.seg` file is still there (the only moment the segment
/// could be re-checkpointed), the open removes the file; the next open fails.
#[test]
fn review18_an_open_finishing_an_interrupted_offload_does_not_check_its_checkpoint() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let victim = log.segments().into_iter().find(|s| s.sealed).unwrap();
    let seg_bytes = fs.read_file(&victim.path).unwrap();
    log.offload_segment(victim.number, &target(&source, victim.number))
        .unwrap();
    log.close().unwrap();
    put_file(&fs, &victim.path, &seg_bytes);
    let idx = Path::new("/log").join(format!("{:020}.idx", victim.first_lsn));
    let mut cp = fs.read_file(&idx).unwrap();
    let at = cp.len() / 2;
    cp[at] ^= 0x01;
    fs.replace_file(&idx, cp).unwrap();

    let first = open(&fs, &source);
    if let Ok(log) = first {
        assert_eq!(common::dump(&log, &TENANTS), expected);
        log.close().unwrap();
        let names = fs.file_names(Path::new("/log"));
        let reopened = open(&fs, &source);
        assert!(
            reopened.is_ok(),
            "the first open accepted the directory and finished the offload, the second fails: \
             {:?}; files {names:?}",
            reopened.err()
        );
    }
}
