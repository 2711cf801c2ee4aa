//! The tail bound (`TAIL_BOUND`, format.md §3.6): after a crash, recovery reads a prepared
//! segment's zeros only up to the bound the writer made durable before writing there, not to
//! the segment's end; and nothing it detected before goes undetected: damage to acknowledged
//! records with a proof after it, stray bytes after the end of data, a bound a build that
//! keeps none wrote past.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tail_bound::{crashed_after_a_prepared_roll, last_segment, opts};

use common::prepared::{append, lost};
use seglog_segment::format::{EventBatch, TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::{RecoveryReport, SegmentLog, SegmentOptions};
use std::path::Path;

const SEGMENT: u64 = 16 << 20;
const STEP: u64 = 4 << 20;

fn reopen(fs: &SimFs) -> seglog_segment::Result<(SegmentLog<SimFs>, RecoveryReport)> {
    SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
}

#[test]
fn recovery_reads_a_prepared_segments_zeros_only_up_to_the_tail_bound() {
    let (fs, acked) = crashed_after_a_prepared_roll(20);
    let path = last_segment(&fs);
    assert_eq!(fs.read_file(&path).unwrap().len() as u64, SEGMENT);
    let (log, report) = reopen(&fs).unwrap();
    assert!(report.tail_bound_used, "{report:?}");
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert!(
        report.bytes_checked_after_data <= STEP,
        "read {} bytes of zeros (bound step {STEP})",
        report.bytes_checked_after_data
    );
    assert!(lost(&log, &acked).is_empty());
    drop(log);

    // The same crash without the bound file: every zero to the segment's end is read.
    let (fs, _) = crashed_after_a_prepared_roll(20);
    fs.remove(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
        .unwrap();
    let (_, report) = reopen(&fs).unwrap();
    assert!(!report.tail_bound_used);
    assert!(
        report.bytes_checked_after_data > SEGMENT - STEP,
        "{report:?}"
    );
}

#[test]
fn a_torn_write_after_the_data_is_cut_and_the_search_stops_at_the_bound() {
    let (fs, acked) = crashed_after_a_prepared_roll(20);
    let path = last_segment(&fs);
    let mut bytes = fs.read_file(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes[end..end + 100].fill(0xab);
    fs.replace_file(&path, bytes).unwrap();
    let (log, report) = reopen(&fs).unwrap();
    assert!(report.tail_bound_used, "{report:?}");
    assert!(report.torn_tail.is_some(), "{report:?}");
    assert!(report.bytes_checked_after_data <= STEP, "{report:?}");
    assert!(lost(&log, &acked).is_empty());
}

#[test]
fn damage_to_an_acknowledged_record_with_a_later_proof_still_refuses_to_open() {
    let (fs, _) = crashed_after_a_prepared_roll(40);
    let path = last_segment(&fs);
    let mut bytes = fs.read_file(&path).unwrap();
    // A byte in the middle of the segment's records: later rounds vouch for it.
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes[end / 2] ^= 0x40;
    fs.replace_file(&path, bytes).unwrap();
    let Err(err) = reopen(&fs) else {
        panic!("damaged acknowledged data opened");
    };
    assert!(err.is_corruption(), "{err}");
}

/// A bound a build that keeps none appended past (it ignores the file): not trusted, and
/// stray bytes after the end of data are found as before.
#[test]
fn a_bound_the_data_reaches_past_is_not_trusted() {
    let (fs, acked) = crashed_after_a_prepared_roll(20);
    let path = last_segment(&fs);
    let mut bytes = fs.read_file(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    // Garbage well past the data: past the stale bound written below.
    let garbage_at = end + (1 << 20);
    bytes[garbage_at..garbage_at + 100].fill(0xab);
    fs.replace_file(&path, bytes).unwrap();
    let tb = Path::new("/log").join(TAIL_BOUND_FILE_NAME);
    let newest = TailBound::newest(&fs.read_file(&tb).unwrap()).unwrap();
    assert_eq!(newest.segment, 2);
    let stale = TailBound {
        generation: newest.generation + 1,
        bound: (end as u64) - 100,
        ..newest
    };
    let file = fs.open(&tb).unwrap();
    file.write_all_at(&stale.encode(), stale.slot_offset())
        .unwrap();
    file.sync_data().unwrap();
    let (log, report) = reopen(&fs).unwrap();
    assert!(!report.tail_bound_used, "{report:?}");
    assert!(
        report.torn_tail.is_some(),
        "the bytes after the end of data went unnoticed: {report:?}"
    );
    assert!(lost(&log, &acked).is_empty());
}

#[test]
fn a_writer_that_prepares_no_segments_removes_the_bound_before_it_appends() {
    let (fs, mut acked) = crashed_after_a_prepared_roll(5);
    let tb = Path::new("/log").join(TAIL_BOUND_FILE_NAME);
    assert!(fs.read_file(&tb).is_some());
    let no_prepare = SegmentOptions {
        prepare_next_segment: false,
        ..opts()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", no_prepare, &mut ()).unwrap();
    assert!(fs.read_file(&tb).is_none(), "the bound file stayed");
    // Its removal is durable before anything is appended.
    acked.insert(append(&log, 99).unwrap(), 99);
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    assert!(fs.read_file(&tb).is_none(), "the removal was not durable");
    let (log, _) = reopen(&fs).unwrap();
    assert!(lost(&log, &acked).is_empty());
}

/// The bound moves in steps, each made durable before the write past the old one: after a
/// power cut that keeps only synced bytes, the newest slot still covers every record.
#[test]
fn every_record_written_lies_below_the_durable_bound() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let mut i = 0;
    let tb = Path::new("/log").join(TAIL_BOUND_FILE_NAME);
    while log.segments().last().unwrap().data_end < 2 * STEP + (1 << 20) {
        i += 1;
        append(&log, i).unwrap();
        if i % 500 == 0 {
            let crashed = fs.fork().crash(CrashMode::LoseUnsynced);
            let slot = TailBound::newest(&crashed.read_file(&tb).unwrap()).unwrap();
            let data_end = log.segments().last().unwrap().data_end;
            assert!(slot.bound >= data_end, "{slot:?} below {data_end}");
            assert!(slot.bound <= data_end + STEP + (16 << 10), "{slot:?}");
        }
    }
    let slot = TailBound::newest(&fs.read_file(&tb).unwrap()).unwrap();
    assert!(slot.generation >= 3, "the bound never moved: {slot:?}");
    // Both slots' pages were written when the file was made: no slot write needs space.
    assert_eq!(fs.read_file(&tb).unwrap().len(), 2 * 4096);
}

#[test]
fn a_failed_sync_of_the_bound_fails_the_append_and_nothing_is_written_past_it() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    append(&log, 1).unwrap();
    let tb = Path::new("/log").join(TAIL_BOUND_FILE_NAME);
    let bound = TailBound::newest(&fs.read_file(&tb).unwrap())
        .unwrap()
        .bound;
    // Fill up to just below the bound, then fail every sync from the next one on.
    let mut i = 1;
    while log.segments().last().unwrap().data_end + 4096 < bound {
        i += 1;
        append(&log, i).unwrap();
    }
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: true,
    });
    // One record that crosses the bound: the bound must move (and its sync fails) first.
    let data_end = log.segments().last().unwrap().data_end;
    let crossing = vec![7u8; (bound - data_end) as usize + 100];
    let appended = log.append(&EventBatch {
        encoding: 0,
        execution_id: b"crossing",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[crossing.as_slice()],
    });
    assert!(
        appended.is_err(),
        "an append past the bound succeeded without a durable bound"
    );
    let path = last_segment(&fs);
    let bytes = fs.read_file(&path).unwrap();
    let written_to = bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    assert!(
        written_to <= bound,
        "bytes written to {written_to}, past the durable bound {bound}"
    );
}

/// Buffered (write-only) rounds write to the file without a commit fsync; their bytes may
/// reach the disk all the same, and a later record among them can prove damage before it:
/// the bound covers them too.
#[test]
fn buffered_writes_stay_below_the_durable_bound() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let tb = Path::new("/log").join(TAIL_BOUND_FILE_NAME);
    let payload = vec![9u8; 6000];
    for _ in 0..2000 {
        let batch = EventBatch {
            encoding: 0,
            execution_id: b"buffered",
            tenant_id: b"tenant",
            first_seq: 1,
            timestamp_unix_nanos: 0,
            payloads: &[payload.as_slice()],
        };
        log.submit_buffered(log.encode(&batch).unwrap()).unwrap();
    }
    let path = last_segment(&fs);
    let written_to = fs
        .read_file(&path)
        .unwrap()
        .iter()
        .rposition(|&b| b != 0)
        .unwrap() as u64
        + 1;
    assert!(
        written_to > STEP,
        "the buffered rounds wrote only {written_to} bytes"
    );
    let durable = fs.fork().crash(CrashMode::LoseUnsynced);
    let slot = TailBound::newest(&durable.read_file(&tb).unwrap()).unwrap();
    assert!(
        slot.bound >= written_to,
        "buffered bytes written to {written_to}, past the durable bound {}",
        slot.bound
    );
}
