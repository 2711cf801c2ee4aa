//! `Log::verify` and `verify_dir`: clean logs verify clean (also while writers append and
//! compactions run), a flipped bit that a checkpoint hid at open is found with its segment
//! and offset, and a torn tail is told apart from corruption.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::{
    verify_dir, CheckpointCheck, CheckpointMode, CompactOptions, Damage, Health, Log, Options,
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
