//! The next segment prepared ahead (`SegmentOptions::prepare_next_segment`): a zeroed file
//! beside the log that the roll renames into place. What must hold: no acknowledged record is
//! lost at any point of preparing or installing it, a failure while preparing never costs
//! the log, the file never outlives a close, and a leftover is never trusted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append, lost, opts, payload, prepared_exists, stored};

use seglog_segment::format::{segment_file_name, PREPARED_SEGMENT_FILE_NAME, SEGMENT_HEADER_LEN};
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn check_acked<F: FileSystem>(log: &SegmentLog<F>, acked: &BTreeMap<u64, u64>, what: &str) {
    let lost = lost(log, acked);
    assert!(
        lost.is_empty(),
        "{what}: acknowledged LSNs {lost:?} lost or damaged"
    );
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn rolls_take_the_prepared_file_and_every_record_reads_back_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    let mut acked = BTreeMap::new();
    let mut i = 0;
    for _ in 0..4 {
        // Nothing is prepared before the active segment is half full.
        let segments = log.segments().len();
        while log.segments().last().unwrap().data_end < 40 << 10 {
            i += 1;
            acked.insert(append(&log, i).unwrap(), i);
        }
        // Then the background thread prepares the next segment while this one fills.
        wait_until("the next segment to be prepared", || {
            log.stats().prepared_bytes >= (log.stats().prepared_rolls + 1) * (64 << 10)
        });
        while log.segments().len() == segments {
            i += 1;
            acked.insert(append(&log, i).unwrap(), i);
        }
    }
    let stats = log.stats();
    assert!(stats.prepared_rolls >= 4, "{stats:?}");
    assert_eq!(stats.zeroed_bytes, 0, "{stats:?}");
    let segments = log.segments();
    check_acked(&log, &acked, "before close");
    log.close().unwrap();
    drop(log);
    assert!(
        !prepared_exists(&StdFs, &path),
        "the prepared file outlived the close"
    );
    // Every segment made from a prepared file has its own header and, sealed, ends where
    // its data ends.
    for info in &segments[..segments.len() - 1] {
        let file = StdFs.open(&info.path).unwrap();
        assert_eq!(file.len().unwrap(), info.data_end);
    }
    let (log, report) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert_eq!(log.segments().len(), segments.len());
    check_acked(&log, &acked, "after reopen");
    assert_eq!(stored(&log).len(), acked.len());
}

/// The prepared path at a known point, on the simulated disk: a power cut after every
/// operation from preparing the file to the records written into it, in every crash mode.
#[test]
fn acknowledged_appends_survive_a_power_cut_at_every_step_of_a_prepared_roll() {
    let run = |cut: Option<u64>, mode: CrashMode| {
        let fs = SimFs::new();
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        let mut acked = BTreeMap::new();
        for i in 1..=3 {
            acked.insert(append(&log, i).unwrap(), i);
        }
        let start = fs.mutating_ops();
        if let Some(n) = cut {
            fs.power_off_after(n);
        }
        let prepared = log.prepare_next_segment_now();
        let mut i = 3;
        if prepared {
            let _ = log.roll();
        }
        for _ in 0..3 {
            i += 1;
            match append(&log, i) {
                Ok(lsn) => {
                    acked.insert(lsn, i);
                }
                Err(_) => break,
            }
        }
        let stats = log.stats();
        let ops = fs.mutating_ops() - start;
        drop(log);
        (fs.crash(mode), acked, stats, ops, prepared)
    };
    let (_, _, stats, ops, prepared) = run(None, CrashMode::LoseUnsynced);
    assert!(prepared, "the segment was not prepared");
    assert_eq!(stats.prepared_rolls, 1, "{stats:?}");
    let mut cuts = 0;
    for n in 1..=ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n },
        ] {
            let (crashed, acked, _, _, _) = run(Some(n), mode);
            let (log, _) = SegmentLog::open(crashed.clone(), "/log", opts(), &mut ())
                .unwrap_or_else(|e| panic!("cut after {n} ({mode:?}): {e}"));
            check_acked(&log, &acked, &format!("cut after {n} ({mode:?})"));
            assert!(
                !prepared_exists(&crashed, Path::new("/log")),
                "cut after {n} ({mode:?}): the open kept a leftover prepared file"
            );
            // The log goes on: appends after recovery land and read back.
            let lsn = append(&log, 1000).unwrap();
            assert_eq!(stored(&log).get(&lsn), Some(&payload(1000)));
            cuts += 1;
        }
    }
    assert!(cuts > 20, "only {cuts} cuts");
}

/// The prepared file holds no record: a failed sync of its zeros must not poison the log
/// (it concerns no acknowledged byte), and the file goes.
#[test]
fn a_failed_sync_while_preparing_drops_the_file_but_not_the_log() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    append(&log, 1).unwrap();
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    assert!(!log.prepare_next_segment_now());
    assert_eq!(log.poisoned(), None);
    assert!(!prepared_exists(&fs, Path::new("/log")));
    let mut acked = BTreeMap::new();
    for i in 2..60 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert!(log.segments().len() > 1, "no roll happened");
    assert_eq!(log.stats().prepared_rolls, 0);
    // A later segment tries again.
    assert!(log.prepare_next_segment_now());
    log.roll().unwrap();
    assert_eq!(log.stats().prepared_rolls, 1);
    check_acked(&log, &acked, "after the failed preparation");
}

/// A full disk while preparing: the log goes on, creating segments as before.
#[test]
fn no_space_for_the_prepared_file_leaves_appends_alone() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    fs.inject(Fault {
        op: Some(Op::Allocate),
        nth: fs.op_count(Op::Allocate) + 1,
        kind: FaultKind::Enospc,
        persistent: false,
    });
    assert!(!log.prepare_next_segment_now());
    assert!(!prepared_exists(&fs, Path::new("/log")));
    let mut acked = BTreeMap::new();
    for i in 1..60 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert_eq!(log.poisoned(), None);
    check_acked(&log, &acked, "after the full disk");
}

/// A file under the prepared name is never trusted: an interrupted roll may have written a
/// header into it, a crash may have cut its zeros short. The open removes it.
#[test]
fn a_leftover_prepared_file_is_removed_at_open_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let no_prepare = SegmentOptions {
        prepare_next_segment: false,
        ..opts()
    };
    let (log, _) = SegmentLog::open(StdFs, &path, no_prepare.clone(), &mut ()).unwrap();
    append(&log, 1).unwrap();
    log.close().unwrap();
    drop(log);
    let leftover = path.join(PREPARED_SEGMENT_FILE_NAME);
    std::fs::write(&leftover, vec![0xAB; 64 << 10]).unwrap();
    // Even a log that no longer prepares segments removes it.
    let (log, _) = SegmentLog::open(StdFs, &path, no_prepare, &mut ()).unwrap();
    assert!(!leftover.exists());
    log.close().unwrap();
    drop(log);

    std::fs::write(&leftover, vec![0xAB; 64 << 10]).unwrap();
    let (log, _) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    assert!(log.prepare_next_segment_now());
    let file = StdFs.open(&leftover).unwrap();
    let mut head = vec![0xFF; 4096];
    file.read_exact_at(&mut head, 0).unwrap();
    assert!(
        head.iter().all(|b| *b == 0),
        "the prepared file kept the leftover's bytes"
    );
    let mut acked = BTreeMap::from([(1, 1)]);
    log.roll().unwrap();
    for i in 2..10 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    let active = log.segments().pop().unwrap();
    assert_eq!(log.stats().prepared_rolls, 1);
    // The installed segment starts with its own header.
    let mut header = vec![0; SEGMENT_HEADER_LEN];
    StdFs
        .open(&active.path)
        .unwrap()
        .read_exact_at(&mut header, 0)
        .unwrap();
    assert_eq!(&header[..8], b"SEGLOGSG");
    log.close().unwrap();
    drop(log);
    let (log, _) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    check_acked(&log, &acked, "after reopen");
}

/// A log that never gets half way through a segment never carries a prepared file (small
/// logs keep their disk space; a background step that finds nothing to do writes nothing).
#[test]
fn nothing_is_prepared_before_the_active_segment_is_half_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    let mut i = 0;
    while log.segments().last().unwrap().data_end < 24 << 10 {
        i += 1;
        append(&log, i).unwrap();
    }
    // The thread is woken after every round; give it time to act wrongly.
    std::thread::sleep(Duration::from_millis(300));
    append(&log, i + 1).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!prepared_exists(&StdFs, &path));
    assert_eq!(log.stats().prepared_bytes, 0);
    // Past the half it comes.
    while log.segments().last().unwrap().data_end < 40 << 10 {
        i += 1;
        append(&log, i).unwrap();
    }
    wait_until("the prepared file", || prepared_exists(&StdFs, &path));
}

/// A read-only open never touches the writer's prepared file.
#[test]
fn a_read_only_open_leaves_the_writers_prepared_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    append(&log, 1).unwrap();
    assert!(log.prepare_next_segment_now());
    let (reader, _) = SegmentLog::open_read_only(StdFs, &path, &mut ()).unwrap();
    reader.close().unwrap();
    drop(reader);
    assert!(prepared_exists(&StdFs, &path));
    log.roll().unwrap();
    assert_eq!(log.stats().prepared_rolls, 1);
}

/// `close` releases the directory; the handle itself may live on (a clone in another task)
/// and be dropped after another writer has opened the log. That drop must not touch the new
/// owner's prepared file (found by the streaming differential test: the new owner's roll
/// failed to rename a `NEXT_SEGMENT` the old handle's drop had removed, and poisoned).
#[test]
fn a_closed_logs_late_drop_leaves_the_next_owners_prepared_file_alone() {
    let fs = SimFs::new();
    let (old, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    append(&old, 1).unwrap();
    old.close().unwrap();
    let (new, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    append(&new, 2).unwrap();
    assert!(new.prepare_next_segment_now());
    drop(old);
    assert!(
        prepared_exists(&fs, Path::new("/log")),
        "the closed log's drop removed the new owner's prepared file"
    );
    new.roll().unwrap();
    assert_eq!(new.poisoned(), None);
    assert_eq!(new.stats().prepared_rolls, 1);
}

/// A file that already holds the next segment's name (a stray copy, another tool's output)
/// is never replaced by a roll: a roll onto a prepared file refuses it, as a roll that
/// creates its file does (`create_new`). On the real kernel and in the simulation.
#[test]
fn a_roll_never_replaces_a_file_that_holds_the_next_segments_name() {
    const STRAY: &[u8] = b"not this log's segment";
    fn check<F: FileSystem + Clone>(fs: F, dir: &Path, prepared: bool) {
        let options = SegmentOptions {
            prepare_next_segment: prepared,
            ..opts()
        };
        let (log, _) = SegmentLog::open(fs.clone(), dir, options, &mut ()).unwrap();
        let lsn = append(&log, 1).unwrap();
        if prepared {
            assert!(log.prepare_next_segment_now());
        }
        // The next segment's first LSN depends on the roll's own bookkeeping: every
        // candidate name is taken.
        let strays: Vec<_> = (lsn + 1..=lsn + 4)
            .map(|first| dir.join(segment_file_name(first)))
            .collect();
        for stray_path in &strays {
            let stray = fs.create_new(stray_path).unwrap();
            stray.write_all_at(STRAY, 0).unwrap();
            stray.sync_data().unwrap();
        }
        // The roll seals the active segment and starts the next one.
        let err = match log.roll() {
            Err(e) => e,
            Ok(sealed) => {
                let segments = log.segments();
                panic!("prepared {prepared}: the roll of {sealed:?} took the name of a file that was there: {segments:?}")
            }
        };
        for stray_path in &strays {
            let file = fs.open(stray_path).unwrap();
            let mut kept = vec![0; STRAY.len()];
            assert_eq!(
                file.len().unwrap(),
                STRAY.len() as u64,
                "prepared {prepared}: {err}"
            );
            file.read_exact_at(&mut kept, 0).unwrap();
            assert_eq!(kept, STRAY, "prepared {prepared}: {err}");
        }
        assert!(
            strays
                .iter()
                .any(|p| err.to_string().contains(&*p.to_string_lossy())),
            "the error names the file: {err}"
        );
        // The acknowledged record is untouched.
        check_acked(&log, &BTreeMap::from([(lsn, 1)]), "after the refused roll");
    }
    for prepared in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        check(StdFs, &tmp.path().join("log"), prepared);
        check(SimFs::new(), Path::new("/log"), prepared);
    }
}
