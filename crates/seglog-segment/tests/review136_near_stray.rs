//! Review 136: a header-less last file (another log's file of zeros) named one or two LSNs
//! past a live writer's unsynced tail. Review 134's first fix took the segment before such a
//! file for sealed when it ended right before the file's name (or one earlier, review 135),
//! and a writer's tail passes through every LSN: readers served its unsynced records, which
//! a power cut then took. Fixed: readers serve the segment before a last file with no
//! header as the active one (its proven part).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::stray::{place_stray, served_through, submit_buffered};
use common::{append_one, contents, small_opts};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        buffered_write_bytes: 1,
        ..small_opts()
    }
}

/// Another log's file of zeros, named a few LSNs ahead of this log (its LSN: design.md,
/// "The directory moved under an open log"). The writer goes on appending, as it must,
/// and its written tail passes the name: at that moment a reader takes the active segment
/// for sealed and serves records the writer never synced.
fn run(offset: u64) {
    let fs = SimFs::new();
    let (writer, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&writer, i).unwrap();
    }
    let durable = writer.durable_lsn();
    // The other log's name: `offset` LSNs past what this log will have written.
    place_stray(&fs, Path::new("/log"), durable + 5 + offset);
    let before = served_through(&fs, "/log");
    assert!(before <= durable);
    for i in 11..=15 {
        submit_buffered(&writer, i);
    }
    assert!(
        writer.durable_lsn() < 15,
        "the buffered records were synced"
    );
    let served = served_through(&fs, "/log");
    let after = fs.crash(CrashMode::LoseUnsynced);
    drop(writer);
    let (reopened, _) = SegmentLog::open(after, "/log", opts(), &mut ()).unwrap();
    let kept = contents(&reopened).last().map_or(0, |r| r.0);
    assert!(
        served <= kept,
        "a reader served through LSN {served}; the writer had synced through {durable}, and \
         after a power cut the log holds through {kept}"
    );
}

#[test]
fn stray_named_one_past_the_unsynced_tail() {
    run(1);
}

#[test]
fn stray_named_two_past_the_unsynced_tail() {
    run(2);
}
