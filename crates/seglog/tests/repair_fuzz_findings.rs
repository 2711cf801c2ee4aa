//! Repair, as the `log_dir` fuzz target drives it (tests/fuzz): a repair that reports
//! success leaves the files it planned and a log that opens. Two defects found while
//! reproducing its first finding, each test failing before its fix:
//! - a log whose only segment's creation was interrupted: the salvage open removes the file
//!   as planned, then starts the log again with a fresh segment of the same name, and the
//!   repair called that a difference from its plan (`seglog repair` exited 2 saying "the
//!   files differ from the plan");
//! - any repair of a directory given by a relative path failed, saying the log "is open in
//!   another process": the repair holds the lock under the relative path, the salvage open
//!   asks for it under the absolute one.
//!
//! This binary changes the process's working directory (the relative-path case).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::io::FileSystem;
use seglog::{Log, Options};
use std::path::Path;

/// The first bytes of a segment header (magic, version, length, flags, number, first LSN):
/// what a crash leaves of a segment whose header write was cut short.
fn partial_header(first_lsn: u64) -> Vec<u8> {
    let mut b = b"SEGLOGSG".to_vec();
    b.extend_from_slice(&5u16.to_le_bytes());
    b.extend_from_slice(&64u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&9u64.to_le_bytes());
    b.extend_from_slice(&first_lsn.to_le_bytes());
    b.extend_from_slice(&[0x5a; 7]);
    b
}

#[test]
fn a_repair_that_removes_the_only_segment_reports_no_difference_from_its_plan() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    fs.create_dir_all(dir).unwrap();
    let path = dir.join("00000000000000000001.seg");
    let file = fs.create_new(&path).unwrap();
    use seglog::io::SegmentFile;
    file.write_all_at(&partial_header(1), 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();

    let report = seglog::repair_dir_with_fs(fs.clone(), dir, |_| true).unwrap();
    assert!(report.repaired);
    assert_eq!(
        report.plan.incomplete_segment.as_deref(),
        Some(path.as_path())
    );
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    let log = Log::open_with_fs(fs, dir, Options::default()).unwrap();
    assert_eq!(log.latest_lsn().unwrap(), 0);
    log.close().unwrap();
}

#[test]
fn a_repair_of_a_log_named_by_a_relative_path_repairs_it() {
    let base = tempfile::tempdir().unwrap();
    std::env::set_current_dir(base.path()).unwrap();
    let log = Log::open_blocking("log", Options::default()).unwrap();
    for i in 0..10u64 {
        log.append_blocking("e", "t", format!("event {i}").as_bytes())
            .unwrap();
    }
    let next = log.latest_lsn().unwrap() + 1_000;
    log.close().unwrap();
    // A later segment whose creation was interrupted: the repair removes it.
    let incomplete = Path::new("log").join(format!("{next:020}.seg"));
    std::fs::write(&incomplete, partial_header(next)).unwrap();

    let report = seglog::repair_dir("log", |_| true).unwrap();
    assert!(report.repaired);
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(!incomplete.exists());
    let log = Log::open_blocking("log", Options::default()).unwrap();
    assert_eq!(log.read("e").unwrap().len(), 10);
    log.close().unwrap();
}

/// Found by the fuzzer: a cut in a clustered segment (compaction's, which no writer appends
/// to) keeps its greatest LSN (its records are in execution order, not LSN order), so the
/// salvage open's new segment after it takes the very name of the segment the repair
/// removed — and the number too, once that one is gone. The repair called it a difference.
#[test]
fn a_repair_whose_open_starts_a_segment_under_a_removed_name_reports_no_difference() {
    use seglog::compaction::policy;
    use seglog::{CheckpointMode, CompactOptions};
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let options = Options::default()
        .segment_size_bytes(2048)
        .zero_ahead_bytes(0)
        .prepare_next_segment(false)
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open_with_fs(fs.clone(), dir, options.clone()).unwrap();
    for i in 0..60u64 {
        log.append_blocking(
            &format!("e{}", i % 3),
            "t",
            format!("payload {i}").as_bytes(),
        )
        .unwrap();
    }
    let view = log.compaction_view(true).unwrap();
    log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let segments = log.segments();
    log.close().unwrap();
    let n = segments.len();
    assert!(n >= 2);
    let (clustered, after) = (&segments[n - 2], &segments[n - 1]);
    assert!(clustered.clustered);
    // The last record of the clustered segment (in file order), damaged.
    let bytes = fs.read_file(&clustered.path).unwrap();
    let analysis = seglog_segment::inspect::analyze_segment(&bytes, 0);
    let last = *analysis.record_offsets.last().unwrap() as usize;
    let mut damaged = bytes.clone();
    damaged[last + 50] ^= 0xff;
    fs.replace_file(&clustered.path, damaged).unwrap();

    let report = seglog::repair_dir_with_fs(fs.clone(), dir, |_| true).unwrap();
    assert!(report.repaired);
    assert!(
        report.plan.removed.iter().any(|r| r.path == after.path),
        "{:?}",
        report.plan
    );
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    let log = Log::open_with_fs(fs, dir, options).unwrap();
    log.close().unwrap();
}
