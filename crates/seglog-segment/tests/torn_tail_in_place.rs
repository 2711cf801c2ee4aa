//! A torn tail in a segment file that holds its whole reservation (prepared: written zeros to
//! its end; or preallocated) is repaired in place: recovery writes zeros over the damaged
//! bytes and syncs them, instead of cutting the file at the end of data. The cut gave back the
//! reservation the writer takes again at once, and on a real disk cutting a prepared file's
//! 128 MiB of written zeros cost more than the rest of the open (docs/benchmarks.md, R1).
//!
//! What must hold either way: no acknowledged record is lost, the damaged bytes never read
//! again (also after a power cut right after the open), and appends after the repair read
//! back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append, lost};
use common::tail_bound::{crashed_after_a_prepared_roll, last_segment, opts};
use seglog_segment::io::sim::{CrashMode, Op, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use seglog_segment::{RecoveryReport, SegmentLog, SegmentOptions};
use std::path::Path;

const SEGMENT: u64 = 16 << 20;

fn reopen(fs: &SimFs) -> (SegmentLog<SimFs>, RecoveryReport) {
    SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap()
}

/// Where the data of `bytes` ends (its last non-zero byte + 1).
fn data_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).unwrap() + 1
}

#[test]
fn a_torn_tail_in_a_prepared_segment_is_zeroed_in_place_and_the_file_keeps_its_zeros() {
    let (fs, mut acked) = crashed_after_a_prepared_roll(20);
    let path = last_segment(&fs);
    let mut bytes = fs.read_file(&path).unwrap();
    let end = data_end(&bytes);
    // A torn round: garbage after the last whole record.
    bytes[end..end + 300].fill(0xab);
    fs.replace_file(&path, bytes).unwrap();

    let cuts = fs.op_count(Op::SetLen);
    let (log, report) = reopen(&fs);
    assert_eq!(fs.op_count(Op::SetLen), cuts, "the repair cut the file");
    let cut = report
        .torn_tail
        .clone()
        .expect("the torn round went unnoticed");
    assert_eq!(cut.offset, end as u64, "{report:?}");
    assert_eq!(cut.bytes_dropped, 300, "{report:?}");
    assert!(lost(&log, &acked).is_empty());
    let after = fs.read_file(&path).unwrap();
    assert_eq!(
        after.len() as u64,
        SEGMENT,
        "the repair cut the prepared file's written zeros"
    );
    assert!(after[end..].iter().all(|&b| b == 0), "damaged bytes left");

    // Appends go where the damage was and read back, also after a power cut.
    for i in 100..130 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    let (log, report) = reopen(&fs);
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert!(lost(&log, &acked).is_empty());
}

#[test]
fn the_zeros_over_a_torn_tail_are_durable_before_the_open_returns() {
    let (fs, acked) = crashed_after_a_prepared_roll(20);
    let path = last_segment(&fs);
    let mut bytes = fs.read_file(&path).unwrap();
    let end = data_end(&bytes);
    bytes[end..end + 5000].fill(0x5c);
    fs.replace_file(&path, bytes).unwrap();
    let (log, report) = reopen(&fs);
    assert!(report.torn_tail.is_some());
    drop(log);
    // Power lost right after the open, before any append: the damage stays gone.
    let fs = fs.crash(CrashMode::LoseUnsynced);
    let after = fs.read_file(&path).unwrap();
    assert!(
        after[end..].iter().all(|&b| b == 0),
        "the zeros were not synced"
    );
    let (log, report) = reopen(&fs);
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert!(lost(&log, &acked).is_empty());
}

/// A half-written last record (its header whole, its body garbage): the record goes, the
/// records before it stay, and the file keeps its length.
#[test]
fn a_torn_last_record_is_zeroed_from_its_start() {
    let (fs, acked) = crashed_after_a_prepared_roll(20);
    let path = last_segment(&fs);
    let (log, _) = reopen(&fs);
    let last = log.records().unwrap().last().unwrap().unwrap();
    let (start, len) = (last.position().offset as usize, last.bytes().len());
    drop(log);
    let fs = fs.crash(CrashMode::KeepUnsynced);
    let mut bytes = fs.read_file(&path).unwrap();
    bytes[start + len / 2..start + len].fill(0x77);
    fs.replace_file(&path, bytes).unwrap();

    let cuts = fs.op_count(Op::SetLen);
    let (log, report) = reopen(&fs);
    assert_eq!(fs.op_count(Op::SetLen), cuts, "the repair cut the file");
    let cut = report.torn_tail.clone().expect("torn record unnoticed");
    assert_eq!(cut.offset, start as u64);
    let last_lsn = *acked.keys().last().unwrap();
    let mut kept = acked.clone();
    kept.remove(&last_lsn);
    assert!(lost(&log, &kept).is_empty());
    let after = fs.read_file(&path).unwrap();
    assert_eq!(after.len() as u64, SEGMENT);
    assert!(after[start..].iter().all(|&b| b == 0));
}

/// A file shorter than its reservation (never preallocated) is still cut, as before.
#[test]
fn a_file_without_its_reservation_is_still_cut() {
    let (fs, _) = crashed_after_a_prepared_roll(20);
    let path = last_segment(&fs);
    let bytes = fs.read_file(&path).unwrap();
    let end = data_end(&bytes);
    let mut short = bytes[..end + 64].to_vec();
    short[end..].fill(0xab);
    fs.replace_file(&path, short).unwrap();
    let cuts = fs.op_count(Op::SetLen);
    let (_log, report) = reopen(&fs);
    assert!(report.torn_tail.is_some());
    assert!(fs.op_count(Op::SetLen) > cuts, "not cut");
}

/// The same on a real file system: a segment file holding written zeros to its reserved
/// size keeps its length and its allocated blocks when its torn tail is repaired.
#[test]
fn on_real_files_the_repair_keeps_the_files_written_zeros() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("log");
    let o = SegmentOptions {
        segment_size_bytes: 4 << 20,
        ..opts()
    };
    let (log, _) = SegmentLog::open(StdFs, &logdir, o.clone(), &mut ()).unwrap();
    let mut acked = std::collections::BTreeMap::new();
    for i in 1..=40 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    let path = log.segments().last().unwrap().path.clone();
    log.close().unwrap();
    // What a crash leaves of a prepared segment: written zeros to its reserved size, and a
    // torn round after the last whole record.
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.len();
    bytes.resize(4 << 20, 0);
    bytes[end..end + 1000].fill(0xee);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&bytes).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let (log, report) = SegmentLog::open(StdFs, &logdir, o, &mut ()).unwrap();
    let cut = report.torn_tail.clone().expect("torn round unnoticed");
    assert_eq!(cut.offset, end as u64);
    assert!(lost(&log, &acked).is_empty());
    let meta = std::fs::metadata(Path::new(&path)).unwrap();
    assert_eq!(meta.len(), 4 << 20, "the repair cut the file");
    // Cut and preallocated again, the space after the data would be unwritten extents (holes
    // to SEEK_HOLE on ext4 and XFS while none of it is cached: asked before reading the file).
    let written = StdFs.open(&path).unwrap().written_data_end(0).unwrap();
    assert_eq!(
        written,
        4 << 20,
        "the written zeros after the data were given back"
    );
    let after = std::fs::read(&path).unwrap();
    assert!(after[end..].iter().all(|&b| b == 0));
    for i in 41..=60 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    log.close().unwrap();
    let (log, report) = SegmentLog::open(StdFs, &logdir, opts(), &mut ()).unwrap();
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert!(lost(&log, &acked).is_empty());
}

/// Recovery is idempotent: a power cut at any step of the open that zeroes a torn tail
/// (however much of the zeros reached the disk) leaves a log the next open repairs the
/// same way, with every acknowledged record and no damaged byte.
#[test]
fn a_power_cut_at_any_step_of_the_repair_leaves_a_log_that_opens_the_same() {
    let torn = || {
        let (fs, acked) = crashed_after_a_prepared_roll(20);
        let path = last_segment(&fs);
        let mut bytes = fs.read_file(&path).unwrap();
        let end = data_end(&bytes);
        // Garbage over several pages, so a torn write of the zeros can keep some of it.
        bytes[end..end + 20_000].fill(0xab);
        fs.replace_file(&path, bytes).unwrap();
        (fs, acked, path, end)
    };
    let (fs, _, _, _) = torn();
    let start = fs.mutating_ops();
    drop(reopen(&fs));
    let ops = fs.mutating_ops() - start;
    assert!(ops >= 2, "the repair wrote nothing ({ops} mutating calls)");
    for n in 1..=ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n },
        ] {
            let (fs, acked, path, end) = torn();
            fs.power_off_after(n);
            let _ = SegmentLog::open(fs.clone(), "/log", opts(), &mut ());
            let fs = fs.crash(mode);
            let what = format!("cut after {n} of {ops} ({mode:?})");
            let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(lost(&log, &acked).is_empty(), "{what}");
            let after = fs.read_file(&path).unwrap();
            assert!(after[end..].iter().all(|&b| b == 0), "{what}: damage left");
            drop(log);
            let (_, report) = reopen(&fs);
            assert!(report.torn_tail.is_none(), "{what}: {report:?}");
        }
    }
}
