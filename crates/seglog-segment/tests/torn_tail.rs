//! Damage to the end and the middle of a log: what recovery cuts, and what it refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{Error, RecoveryMode, SegmentLog, SegmentOptions};
use std::path::{Path, PathBuf};

fn opts(mode: RecoveryMode) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        recovery_mode: mode,
        ..small_opts()
    }
}

/// Writes `n` records into one segment, closes, and returns the fs, the segment path, the
/// segment's bytes, and each record's (start, end) offsets.
fn one_segment_log(n: u64) -> (SimFs, PathBuf, Vec<u8>, Vec<(usize, usize)>) {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(
        fs.clone(),
        "/log",
        opts(RecoveryMode::TolerateTornTail),
        &mut (),
    )
    .unwrap();
    let mut offsets = Vec::new();
    for i in 1..=n {
        append_one(&log, i).unwrap();
    }
    for r in log.records().unwrap() {
        let r = r.unwrap();
        let start = r.position().offset as usize;
        offsets.push((start, start + r.bytes().len()));
    }
    let path = log.segments()[0].path.clone();
    log.close().unwrap();
    let bytes = fs.read_file(&path).unwrap();
    let end = offsets.last().unwrap().1;
    (fs, path, bytes[..end].to_vec(), offsets)
}

fn reopen(
    fs: &SimFs,
    mode: RecoveryMode,
) -> seglog_segment::Result<(SegmentLog<SimFs>, seglog_segment::RecoveryReport)> {
    SegmentLog::open(fs.clone(), "/log", opts(mode), &mut ())
}

fn expected(k: usize) -> Vec<(u64, Vec<u8>)> {
    (1..=k as u64).map(|i| (i, payload(i))).collect()
}

#[test]
fn truncation_at_every_byte_of_the_last_records_keeps_exactly_the_whole_ones() {
    let (fs, path, bytes, offsets) = one_segment_log(8);
    let first_cut = offsets[offsets.len() - 3].0;
    eprintln!("truncation points: {}", bytes.len() + 1 - first_cut);
    for cut in first_cut..=bytes.len() {
        fs.replace_file(&path, bytes[..cut].to_vec()).unwrap();
        let whole = offsets.iter().filter(|(_, end)| *end <= cut).count();
        let (log, report) = reopen(&fs, RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(contents(&log), expected(whole), "cut at {cut}");
        let torn = cut != offsets[whole - 1].1;
        assert_eq!(report.torn_tail.is_some(), torn, "cut at {cut}: {report:?}");
        // The file was cut back to the last whole record, so new appends follow it.
        assert_eq!(append_one(&log, 100).unwrap(), whole as u64 + 1);
        drop(log);
    }
}

#[test]
fn truncation_on_real_files_behaves_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("log");
    let o = SegmentOptions {
        preallocate: false,
        ..opts(RecoveryMode::TolerateTornTail)
    };
    let (log, _) =
        SegmentLog::open(seglog_segment::io::StdFs, &logdir, o.clone(), &mut ()).unwrap();
    for i in 1..=5 {
        append_one(&log, i).unwrap();
    }
    let path = log.segments()[0].path.clone();
    let ends: Vec<u64> = log
        .records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            r.position().offset + r.bytes().len() as u64
        })
        .collect();
    log.close().unwrap();
    let original = std::fs::read(&path).unwrap();
    // Every 3rd byte of the last two records, on a real file system.
    for cut in (ends[2] as usize..original.len()).step_by(3) {
        std::fs::write(&path, &original[..cut]).unwrap();
        let whole = ends.iter().filter(|&&e| e as usize <= cut).count();
        let (log, _) =
            SegmentLog::open(seglog_segment::io::StdFs, &logdir, o.clone(), &mut ()).unwrap();
        assert_eq!(contents(&log), expected(whole), "cut at {cut}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[whole - 1]);
    }
}

#[test]
fn zero_filled_tail_is_end_of_data_and_zeroed_record_is_a_torn_write() {
    let (fs, path, bytes, offsets) = one_segment_log(5);
    // Zeros after the last record: preallocated space, nothing lost, nothing cut.
    let mut padded = bytes.clone();
    padded.extend(std::iter::repeat_n(0u8, 10_000));
    fs.replace_file(&path, padded).unwrap();
    let (log, report) = reopen(&fs, RecoveryMode::AbsoluteConsistency).unwrap();
    assert!(report.torn_tail.is_none());
    assert_eq!(contents(&log), expected(5));
    drop(log);
    // The last record's sectors never written (zeros), or only its tail zeroed.
    let (start, end) = offsets[4];
    for zero_from in [start, start + 4, start + 30, end - 1] {
        let mut b = bytes.clone();
        b[zero_from..end].fill(0);
        fs.replace_file(&path, b).unwrap();
        let (log, _) = reopen(&fs, RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(contents(&log), expected(4), "zeroed from {zero_from}");
    }
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let (fs, path, bytes, _) = one_segment_log(5);
    for seed in 0..50u64 {
        let mut b = bytes.clone();
        let len = 1 + (seed * 7919 % 3000) as usize;
        b.extend((0..len).map(|i| (i as u64 * 31 + seed * 17 + 1) as u8));
        fs.replace_file(&path, b).unwrap();
        let (log, report) = reopen(&fs, RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(contents(&log), expected(5), "seed {seed}");
        assert!(report.torn_tail.is_some());
        drop(log);
        fs.replace_file(&path, bytes.clone()).unwrap();
    }
}

#[test]
fn absolute_consistency_refuses_a_torn_tail_and_salvage_cuts_it() {
    let (fs, path, bytes, offsets) = one_segment_log(5);
    fs.replace_file(&path, bytes[..offsets[4].1 - 3].to_vec())
        .unwrap();
    let err = reopen(&fs, RecoveryMode::AbsoluteConsistency).unwrap_err();
    assert!(matches!(err, Error::Corruption { segment: 1, .. }), "{err}");
    let (log, report) = reopen(&fs, RecoveryMode::Salvage).unwrap();
    assert_eq!(report.salvaged.len(), 1);
    assert_eq!(contents(&log), expected(4));
}

#[test]
fn bit_flip_in_a_record_that_later_records_prove_durable_is_corruption() {
    let (fs, path, bytes, offsets) = one_segment_log(6);
    let (start, end) = offsets[2];
    for byte in start..end {
        let mut b = bytes.clone();
        b[byte] ^= 0x10;
        fs.replace_file(&path, b).unwrap();
        match reopen(&fs, RecoveryMode::TolerateTornTail) {
            Err(Error::Corruption {
                segment: 1, offset, ..
            }) => assert_eq!(offset, start as u64),
            Err(e) => panic!("flip at {byte}: wrong error {e}"),
            Ok((log, _)) => panic!(
                "flip at {byte} opened with {} records",
                contents(&log).len()
            ),
        }
    }
    // Salvage opens, keeping what precedes the damage.
    let mut b = bytes.clone();
    b[start + 50] ^= 1;
    fs.replace_file(&path, b).unwrap();
    let (log, _) = reopen(&fs, RecoveryMode::Salvage).unwrap();
    assert_eq!(contents(&log), expected(2));
}

fn sealed_log() -> (SimFs, Vec<PathBuf>) {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", small_opts(), &mut ()).unwrap();
    for i in 1..=80 {
        append_one(&log, i).unwrap();
    }
    let paths = log.segments().iter().map(|s| s.path.clone()).collect();
    log.close().unwrap();
    (fs, paths)
}

#[test]
fn every_bit_flip_in_a_sealed_segment_is_typed_corruption() {
    let (fs, paths) = sealed_log();
    let mut opens = 0;
    assert!(paths.len() >= 3);
    let sealed: &Path = &paths[1];
    let original = fs.read_file(sealed).unwrap();
    // Every bit of the header and of the first two records.
    for bit in 0..(400.min(original.len()) * 8) {
        let mut b = original.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        fs.replace_file(sealed, b).unwrap();
        opens += 1;
        match SegmentLog::open(fs.clone(), "/log", small_opts(), &mut ()) {
            Err(e) if e.is_corruption() => {}
            Err(e) => panic!("bit {bit}: untyped error {e}"),
            Ok(_) => panic!("bit {bit}: flipped sealed segment opened"),
        }
    }
    fs.replace_file(sealed, original).unwrap();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", small_opts(), &mut ()).unwrap();
    assert_eq!(contents(&log), expected(80));
    eprintln!("sealed-segment bit flips: {opens} opens");
}

#[test]
fn truncated_or_missing_middle_segment_is_corruption() {
    let (fs, paths) = sealed_log();
    let original = fs.read_file(&paths[1]).unwrap();
    fs.replace_file(&paths[1], original[..original.len() - 10].to_vec())
        .unwrap();
    let err = SegmentLog::open(fs.clone(), "/log", small_opts(), &mut ()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn segment_with_an_unknown_format_version_is_refused_by_name() {
    let (fs, paths) = sealed_log();
    let mut b = fs.read_file(&paths[0]).unwrap();
    let mut header = seglog_segment::format::SegmentHeader::decode(&b)
        .unwrap()
        .encode();
    let unknown = seglog_segment::format::FORMAT_VERSION + 1;
    header[8..10].copy_from_slice(&unknown.to_le_bytes()); // one past what this build writes
    let crc = crc32fast::hash(&header[..60]);
    header[60..].copy_from_slice(&crc.to_le_bytes());
    b[..64].copy_from_slice(&header);
    fs.replace_file(&paths[0], b).unwrap();
    let err = SegmentLog::open(fs.clone(), "/log", small_opts(), &mut ()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found,
                supported: seglog_segment::format::FORMAT_VERSION,
                ..
            } if found == unknown
        ),
        "{err}"
    );
}

#[test]
fn garbage_inside_preallocated_space_on_real_files_is_found_and_cut() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("log");
    let o = SegmentOptions {
        segment_size_bytes: 1 << 20,
        ..opts(RecoveryMode::TolerateTornTail)
    };
    let (log, _) =
        SegmentLog::open(seglog_segment::io::StdFs, &logdir, o.clone(), &mut ()).unwrap();
    for i in 1..=5 {
        append_one(&log, i).unwrap();
    }
    let info = log.segments()[0].clone();
    log.close().unwrap();
    // A torn write far inside the preallocated region (a later page of an unsynced group).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&info.path)
        .unwrap();
    f.write_all_at(&[0xEE; 700], info.data_end + 300_000)
        .unwrap();
    drop(f);
    let (log, report) =
        SegmentLog::open(seglog_segment::io::StdFs, &logdir, o.clone(), &mut ()).unwrap();
    assert_eq!(contents(&log), expected(5));
    let cut = report
        .torn_tail
        .expect("garbage past the data was not noticed");
    // The data ends after the commit marker that close wrote.
    assert_eq!(
        cut.offset,
        info.data_end + seglog_segment::format::COMMIT_MARKER_LEN as u64
    );
    drop(log);
    // The garbage is gone for good: a clean reopen in strict mode.
    let strict = SegmentOptions {
        recovery_mode: RecoveryMode::AbsoluteConsistency,
        ..o
    };
    let (log, report) =
        SegmentLog::open(seglog_segment::io::StdFs, &logdir, strict, &mut ()).unwrap();
    assert!(report.torn_tail.is_none());
    assert_eq!(contents(&log), expected(5));
}
