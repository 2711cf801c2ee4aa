//! Review 39 (the tail bound after review 38): two ways the bound file could stop or break
//! the writer.
//!
//! - A `TAIL_BOUND` shorter than its two slot pages (a power cut between its creation and
//!   the sync of its pages leaves the name with an empty file) made the first slot write
//!   after the next open grow the file: on a full disk that write failed and poisoned a log
//!   whose appends fit, in every later session too. Now the open fills the missing pages (or,
//!   if it cannot, removes the file and keeps no bound).
//! - A slot with the greatest generation (only a crafted file: its CRC must check) made
//!   `last_generation + 1` overflow. Now such a file is treated as unreadable: removed at
//!   open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append, lost};
use common::tail_bound::{crashed_after_a_prepared_roll, opts};
use seglog_segment::format::{TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op};
use seglog_segment::SegmentLog;
use std::path::{Path, PathBuf};

fn bound_path() -> PathBuf {
    Path::new("/log").join(TAIL_BOUND_FILE_NAME)
}

#[test]
fn a_short_bound_file_and_a_full_disk_do_not_stop_appends_that_fit() {
    let (fs, mut acked) = crashed_after_a_prepared_roll(15);
    fs.replace_file(&bound_path(), Vec::new()).unwrap();
    // The next write fails for want of space (once).
    fs.inject(Fault {
        op: Some(Op::Write),
        nth: fs.op_count(Op::Write) + 1,
        kind: FaultKind::Enospc,
        persistent: false,
    });
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 21..=30 {
        let lsn = append(&log, i).unwrap_or_else(|e| panic!("append {i}: {e}"));
        acked.insert(lsn, i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(fs, "/log", opts(), &mut ()).unwrap();
    assert!(lost(&log, &acked).is_empty());
}

#[test]
fn an_open_fills_a_short_bound_file_and_keeps_its_valid_slot() {
    let (fs, _) = crashed_after_a_prepared_roll(15);
    let whole = fs.read_file(&bound_path()).unwrap();
    let newest = TailBound::newest(&whole).unwrap();
    // Cut after the first slot's page: the second page is gone.
    let mut short = whole[..4096].to_vec();
    let slot0 = TailBound {
        generation: newest.generation + (newest.generation % 2 == 1) as u64 + 2,
        ..newest
    };
    short[..slot0.encode().len()].copy_from_slice(&slot0.encode());
    fs.replace_file(&bound_path(), short).unwrap();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let now = fs.read_file(&bound_path()).unwrap();
    assert_eq!(now.len(), 2 * 4096, "the open left the bound file short");
    assert_eq!(TailBound::newest(&now), Some(slot0));
    drop(log);
}

#[test]
fn a_slot_with_the_greatest_generation_does_not_break_the_writer() {
    let (fs, mut acked) = crashed_after_a_prepared_roll(15);
    let newest = TailBound::newest(&fs.read_file(&bound_path()).unwrap()).unwrap();
    let crafted = TailBound {
        generation: u64::MAX,
        ..newest
    };
    let mut file = vec![0u8; 2 * 4096];
    let at = crafted.slot_offset() as usize;
    file[at..at + crafted.encode().len()].copy_from_slice(&crafted.encode());
    fs.replace_file(&bound_path(), file).unwrap();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let mut i = 20;
    while log.segments().last().unwrap().data_end < newest.bound + (64 << 10) {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    let data_end = log.segments().last().unwrap().data_end;
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    if let Some(slot) = fs
        .read_file(&bound_path())
        .and_then(|b| TailBound::newest(&b))
    {
        assert!(
            slot.segment != newest.segment || slot.bound >= data_end,
            "{slot:?} below the data's end {data_end}"
        );
    }
    let (log, _) = SegmentLog::open(fs, "/log", opts(), &mut ()).unwrap();
    assert!(lost(&log, &acked).is_empty());
}
