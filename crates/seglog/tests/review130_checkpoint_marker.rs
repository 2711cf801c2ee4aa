//! Review 130: a sealed segment that ends in a commit marker (a close, then a reopen whose
//! first append rolls) and whose index checkpoint the open loads. A file of zeros named
//! after that marker's LSN sits right before the next segment (marker LSN + 1): no LSN is
//! missing around it, commit markers included (format.md §4, step 1). `verify_dir` calls it
//! a leftover that the next open removes (exit status 1 in the CLI); the open takes the
//! segment's last LSN from its checkpoint, which lists records only (not the marker), and
//! refuses the file as "records are missing".
//! Fixed: the open reads that segment for its greatest LSN (markers included) when a file
//! with no header follows it; the tools and the open agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::dump;
use seglog::{verify_dir, CheckpointMode, Damage, Health, Leftover, Log, Options};
use seglog_segment::format::{parse_segment_file_name, segment_file_name};
use seglog_segment::inspect::analyze_segment;
use std::path::{Path, PathBuf};

fn opts(mode: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(mode)
}

fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let lsn = parse_segment_file_name(p.file_name()?.to_str()?)?.ok()?;
            Some((lsn, p))
        })
        .collect();
    v.sort();
    v
}

/// A closed log whose second-to-last segment ends in a commit marker, with the next segment
/// starting right after it. Returns (the sealed segment's path, its marker's LSN).
fn log_with_a_sealed_segment_ending_in_a_marker(dir: &Path) -> (PathBuf, u64) {
    let log = Log::open_blocking(dir, opts(CheckpointMode::Inline)).unwrap();
    for i in 0..20u64 {
        log.append_blocking(&format!("e{}", i % 3), "t", format!("p{i}").as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    for round in 0..200u64 {
        let (_, last) = segment_files(dir).pop().unwrap();
        let marker = analyze_segment(&std::fs::read(&last).unwrap(), 0).last_lsn_with_markers;
        let log = Log::open_blocking(dir, opts(CheckpointMode::Inline)).unwrap();
        log.append_blocking("e0", "t", &vec![b'x'; 900 + (round as usize % 7) * 50])
            .unwrap();
        log.close().unwrap();
        let segs = segment_files(dir);
        if segs.iter().any(|(lsn, _)| *lsn == marker + 1) {
            let sealed = segs
                .iter()
                .rev()
                .find(|(lsn, _)| *lsn < marker + 1)
                .unwrap()
                .1
                .clone();
            let a = analyze_segment(&std::fs::read(&sealed).unwrap(), 0);
            assert_eq!(a.last_lsn_with_markers, marker);
            return (sealed, marker);
        }
    }
    panic!("no reopen rolled right after a close's commit marker");
}

#[test]
fn verify_and_the_open_agree_on_a_file_of_zeros_after_a_checkpointed_segment_ending_in_a_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (sealed, marker) = log_with_a_sealed_segment_ending_in_a_marker(dir);
    let idx = sealed.with_extension("idx");
    assert!(idx.exists(), "the sealed segment has a checkpoint");
    // The stray file: named after the marker's LSN, right before the next segment.
    let stray = dir.join(segment_file_name(marker));
    std::fs::write(&stray, vec![0u8; 64 << 10]).unwrap();

    let report = verify_dir(dir).unwrap();
    let seg = report.segments.iter().find(|s| s.path == stray).unwrap();
    eprintln!(
        "verify_dir: health {:?}, stray's damage {:?}",
        report.health(),
        seg.damage
    );
    let verify_says_leftover = seg.damage == Some(Damage::Leftover(Leftover::Zeros))
        && report.health() == Health::TornTail;

    let open = Log::open_blocking(dir, opts(CheckpointMode::Inline));
    match (&open, verify_says_leftover) {
        (Ok(log), true) => {
            assert_eq!(
                log.stats().recovery.removed_empty_files,
                vec![stray.clone()]
            );
        }
        (Err(e), true) => {
            // The same directory, read without checkpoints, opens and removes the file.
            let other = tempfile::tempdir().unwrap();
            for (_, p) in segment_files(dir) {
                std::fs::copy(&p, other.path().join(p.file_name().unwrap())).unwrap();
            }
            let without = Log::open_blocking(other.path(), opts(CheckpointMode::Off))
                .map(|l| l.stats().recovery.removed_empty_files.len());
            panic!(
                "verify_dir says {} is a leftover the next open removes (health TornTail, \
                 CLI exit status 1), but the open refuses it: {e}\n(the same segments opened \
                 without checkpoints: {without:?})",
                stray.display()
            );
        }
        (Ok(_), false) => panic!("the open removed a file verify calls corruption"),
        (Err(_), false) => {}
    }
}

/// A read-only open judges the file as the writer's open does: it reads past it (and keeps
/// it) where no LSN is missing, reading the checkpointed segment before it for its marker.
#[test]
fn a_read_only_open_reads_past_a_file_of_zeros_after_a_checkpointed_segment_ending_in_a_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (sealed, marker) = log_with_a_sealed_segment_ending_in_a_marker(dir);
    assert!(sealed.with_extension("idx").exists());
    let expected = dump(&Log::open_read_only_blocking(dir).unwrap(), &["t"]);
    let stray = dir.join(segment_file_name(marker));
    std::fs::write(&stray, vec![0u8; 64 << 10]).unwrap();

    let reader = Log::open_read_only_blocking(dir)
        .unwrap_or_else(|e| panic!("the read-only open refused a file with no record: {e}"));
    assert!(
        reader.stats().recovery.checkpoints_loaded > 0,
        "the sealed segment was read, not taken from its checkpoint"
    );
    assert_eq!(dump(&reader, &["t"]), expected);
    assert!(stray.exists(), "a read-only open removed a file");
}
