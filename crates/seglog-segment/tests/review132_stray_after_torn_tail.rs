//! Review 132: a file of zeros under a segment name *after* the active segment, as a roll of
//! another log racing a move of its directory leaves it (its prepared file renamed in here,
//! the rename made durable by that log's directory fsync: design.md, "The directory moved
//! under an open log"; the existing test
//! `the_segment_before_a_zeroed_last_file_is_read_from_the_disk_after_a_restart` places one
//! named `1 << 40`). Recovery takes it for a cut creation and removes it, as it always did;
//! since 16da00a the segment before it is then judged "sealed before the next one's creation
//! began". But this log never rolled: its active segment was never sealed, and a real torn
//! tail in it (a short write then a restart; a power cut) now refuses to open, where the
//! same state without the stray file opens.
//! Fixed: the segment before a removed cut creation counts as sealed only when the removed
//! file's name is where that segment's records could end (`successor_fits`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::stray::torn_log;
use common::{contents, small_opts};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        ..small_opts()
    }
}

fn open(fs: &SimFs, what: &str, acked: &[(u64, Vec<u8>)]) {
    match SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) {
        Ok((log, report)) => {
            assert!(
                report.torn_tail.is_some(),
                "{what}: no torn tail: {report:?}"
            );
            assert_eq!(contents(&log), acked, "{what}");
            eprintln!(
                "{what}: opens, torn tail cut: {:?}, removed {:?}",
                report.torn_tail, report.removed_incomplete_segment
            );
        }
        Err(e) => panic!("{what}: the open refuses: {e}"),
    }
}

#[test]
fn a_short_write_then_a_restart_opens_without_a_stray_file() {
    let (fs, acked) = torn_log(opts(), false);
    open(&fs, "restart, no stray file", &acked);
}

#[test]
fn a_short_write_then_a_restart_opens_with_a_stray_file_after_the_log() {
    let (fs, acked) = torn_log(opts(), true);
    open(&fs, "restart, stray file after the log", &acked);
}

#[test]
fn a_power_cut_after_a_short_write_opens_with_a_stray_file_after_the_log() {
    let (fs, acked) = torn_log(opts(), true);
    // The half record was in the page cache; the power cut keeps it.
    let fs = fs.crash(CrashMode::KeepUnsynced);
    open(&fs, "power cut, stray file after the log", &acked);
}
