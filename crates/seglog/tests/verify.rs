//! `Log::verify` and `verify_dir`: clean logs verify clean (also while writers append and
//! compactions run), a flipped bit that a checkpoint hid at open is found with its segment
//! and offset, and a torn tail is told apart from corruption.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::{
    verify_dir, CheckpointCheck, CheckpointMode, CompactOptions, Damage, Health, Leftover, Log,
    Options,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn small() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
}

fn fill(log: &Log, n: u64) {
    for i in 0..n {
        let exec = format!("e{}", i % 5);
        let tenant = if i % 5 == 0 { "b" } else { "a" };
        log.append_blocking(
            &exec,
            tenant,
            format!("payload {i} {}", "z".repeat((i % 60) as usize)).as_bytes(),
        )
        .unwrap();
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_clean_log_verifies_clean_open_closed_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    fill(&log, 300);
    let report = log.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.records(), 300);
    assert!(report.segments.len() > 3);
    assert!(report
        .segments
        .iter()
        .filter(|s| !s.is_last)
        .all(|s| matches!(s.checkpoint, CheckpointCheck::Valid { .. })));
    log.close().unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.health(), Health::Clean, "{report:?}");
    assert_eq!(report.records(), 300);
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    assert!(reader.verify().unwrap().is_clean());
}

#[test]
fn verify_finds_a_flipped_bit_that_a_checkpoint_hid_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    fill(&log, 200);
    log.close().unwrap();
    let files = segment_files(dir.path());
    let victim = &files[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(victim, &bytes).unwrap();

    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.health(), Health::Corrupt);
    let seg = report.segments.iter().find(|s| &s.path == victim).unwrap();
    assert_eq!(seg.checksum_failures, 1);
    assert!(
        matches!(seg.damage, Some(Damage::Corrupt { .. })),
        "{seg:?}"
    );
    // The open trusts the checkpoint and does not read the segment; verify does.
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    let report = log.verify().unwrap();
    assert_eq!(report.health(), Health::Corrupt);
    let seg = report.segments.iter().find(|s| &s.path == victim).unwrap();
    assert_eq!(seg.checksum_failures, 1, "{seg:?}");
}

#[test]
fn a_torn_tail_is_torn_in_the_directory_and_absent_from_an_open_view() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small().preallocate(false)).unwrap();
    fill(&log, 100);
    log.close().unwrap();
    let last = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0x5A; 77]);
    std::fs::write(&last, &bytes).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.health(), Health::TornTail, "{report:?}");
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    assert!(reader.verify().unwrap().is_clean());
}

#[test]
fn verify_stays_clean_while_writers_append_and_a_compaction_waits() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    fill(&log, 100);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    log.append_blocking(&format!("w{w}"), "a", format!("{i}").as_bytes())
                        .unwrap();
                }
            })
        })
        .collect();
    let compacting = {
        let log = log.clone();
        std::thread::spawn(move || {
            let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), "b");
            log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
                .unwrap()
        })
    };
    for _ in 0..20 {
        let report = log.verify().unwrap();
        assert!(report.is_clean(), "{report:?}");
    }
    stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert_eq!(compacting.join().unwrap().executions_dropped, 1);
    assert!(log.verify().unwrap().is_clean());
}

#[test]
fn verify_on_the_simulated_file_system() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", small()).unwrap();
    for i in 0..150u64 {
        log.append_blocking("a", "t", format!("{i}").as_bytes())
            .unwrap();
    }
    let report = log.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.records(), 150);
    log.close().unwrap();
    let report = seglog::verify_dir_with_fs(&fs, Path::new("/log")).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// Files under segment names that hold no record and that the next open removes without
/// loss (format.md §4, step 1) are what the open makes of them, not corruption: a last
/// segment whose creation a crash cut (a segment name, no header: normal after a crash in a
/// roll), and a file of zeros inside the log where no record is missing (what a roll racing
/// a move of its directory leaves in another log's directory). A segment whose contents
/// were lost still is corruption.
#[test]
fn files_the_next_open_removes_without_loss_are_leftovers_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    fill(&log, 200);
    log.close().unwrap();
    let last_lsn = log.segments().iter().map(|s| s.last_lsn).max().unwrap();
    let files = segment_files(dir.path());
    let name = |lsn: u64| {
        dir.path()
            .join(seglog_segment::format::segment_file_name(lsn))
    };
    let first_lsn = |p: &Path| {
        seglog_segment::format::parse_segment_file_name(p.file_name().unwrap().to_str().unwrap())
            .unwrap()
            .unwrap()
    };
    let cut = name(last_lsn + 1);
    std::fs::write(&cut, []).unwrap();
    let stray = name(first_lsn(&files[2]) - 1);
    std::fs::write(&stray, vec![0u8; 64 << 10]).unwrap();

    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.health(), Health::TornTail, "{report:?}");
    for (path, what) in [(&cut, Leftover::CutCreation), (&stray, Leftover::Zeros)] {
        let seg = report.segments.iter().find(|s| &s.path == path).unwrap();
        assert_eq!(seg.damage, Some(Damage::Leftover(what)), "{seg:?}");
    }
    assert_eq!(report.records(), 200);
    // The open agrees: it removes both, and every record is there.
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    let removed = log.stats().recovery;
    assert_eq!(removed.removed_incomplete_segment.as_ref(), Some(&cut));
    assert_eq!(removed.removed_empty_files, vec![stray]);
    log.close().unwrap();
    assert!(verify_dir(dir.path()).unwrap().is_clean());

    // A sealed segment whose contents were lost reads as zeros too: records are missing.
    let lost = &files[3];
    let len = std::fs::metadata(lost).unwrap().len();
    std::fs::write(lost, vec![0u8; len as usize]).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.health(), Health::Corrupt, "{report:?}");
    let seg = report.segments.iter().find(|s| &s.path == lost).unwrap();
    assert!(matches!(seg.damage, Some(Damage::Header(_))), "{seg:?}");
    assert!(Log::open_blocking(dir.path(), small()).is_err());
}

/// The open removes one cut creation at the end of the log, and then finds nothing after a
/// file of zeros before it to show that no record is missing: that file is corruption to
/// the open, and to verify.
#[test]
fn a_file_of_zeros_right_before_a_cut_creation_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    fill(&log, 100);
    log.close().unwrap();
    // Named right after the greatest LSN (a commit marker's, at a close) and right before.
    let last = segment_files(dir.path()).pop().unwrap();
    let greatest = seglog_segment::inspect::analyze_segment(&std::fs::read(&last).unwrap(), 0)
        .last_lsn_with_markers;
    let name = |lsn: u64| {
        dir.path()
            .join(seglog_segment::format::segment_file_name(lsn))
    };
    std::fs::write(name(greatest + 1), []).unwrap();
    let zeros = name(greatest);
    std::fs::write(&zeros, vec![0u8; 4096]).unwrap();

    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.health(), Health::Corrupt, "{report:?}");
    let seg = report.segments.iter().find(|s| s.path == zeros).unwrap();
    assert!(matches!(seg.damage, Some(Damage::Header(_))), "{seg:?}");
    assert!(Log::open_blocking(dir.path(), small()).is_err());
}
