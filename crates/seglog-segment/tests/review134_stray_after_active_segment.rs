//! Review 134: a file of zeros under a segment name *after* the active segment of a log
//! whose writer is still running (design.md, "The directory moved under an open log": the
//! other log "goes on appending", and its directory keeps a segment-named file of zeros with
//! no header; its name is this log's LSN, so it sorts after the other log's segments about
//! half the time).
//!
//! The snapshot took any header-less last file for "a segment the writer is creating" and
//! then called every segment before it sealed, the live active one included: read whole,
//! with no durability proof asked, where without the file only what a later record vouches
//! for is served. It served records the writer never acknowledged (lost at the next power
//! cut), and refused a torn tail (an append in flight) as damage to a sealed segment.
//! Fixed: readers serve the segment before a last file with no header as the active one
//! (a first fix, taking it for sealed when it ended right before the file's name, fell to
//! review 136).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::stray::{place_stray, served_through, submit_buffered, torn_log};
use common::{append_one, contents, small_opts};
use seglog_segment::format::segment_file_name;
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::FileSystem;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        // Every buffered submit writes its record to the file at once (no fsync).
        buffered_write_bytes: 1,
        ..small_opts()
    }
}

/// A writer goes on appending; some of its records are buffered (written to the file, not
/// synced, not acknowledged). A reader serves only what is durable; with the stray file
/// after the log, it serves the unsynced records too, and a power cut then takes them.
#[test]
fn a_reader_serves_unsynced_records_when_a_stray_file_follows_the_active_segment() {
    let fs = SimFs::new();
    let (writer, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&writer, i).unwrap();
    }
    let mut buffered = Vec::new();
    for i in 11..=15 {
        buffered.push(submit_buffered(&writer, i));
    }
    let durable = writer.durable_lsn();
    assert!(durable < buffered[0], "the buffered records were synced");
    let baseline = served_through(&fs, "/log");
    assert!(
        baseline <= durable,
        "without the stray file the reader serves LSN {baseline} > durable {durable}"
    );

    place_stray(&fs, Path::new("/log"), 1 << 40);
    let with_stray = served_through(&fs, "/log");

    // The power goes: unsynced writes are lost.
    let after = fs.crash(CrashMode::LoseUnsynced);
    drop(writer);
    let (reopened, _) = SegmentLog::open(after, "/log", opts(), &mut ()).unwrap();
    let kept = contents(&reopened).last().map_or(0, |r| r.0);
    assert!(
        with_stray <= durable,
        "with a stray file after the log, the reader served through LSN {with_stray}: \
         records the writer never acknowledged (durable through {durable}); after a power \
         cut the log holds through {kept}"
    );
}

#[test]
fn a_reader_without_the_stray_file_serves_the_acknowledged_records() {
    let (fs, acked) = torn_log(opts(), false);
    let (reader, _) = SegmentLog::open_read_only(fs.clone(), "/log", &mut ())
        .unwrap_or_else(|e| panic!("the reader refuses: {e}"));
    let served = contents(&reader);
    assert!(
        acked.starts_with(&served),
        "not a prefix of the acknowledged records"
    );
}

/// The writer's open reads the same state fine (review 132's test); the reader calls the
/// torn tail (an append in flight, to a live writer) corruption in a sealed segment.
#[test]
fn a_reader_refuses_a_torn_tail_before_a_stray_file_the_writers_open_accepts() {
    let (fs, acked) = torn_log(opts(), true);
    let read_only = SegmentLog::open_read_only(fs.clone(), "/log", &mut ())
        .map(|(reader, _)| contents(&reader));
    let (writer, report) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("the writer's open refuses: {e}"));
    assert!(report.torn_tail.is_some(), "{report:?}");
    assert_eq!(contents(&writer), acked);
    match read_only {
        Ok(records) => assert!(acked.starts_with(&records)),
        Err(e) => panic!("the read-only open refuses what the writer's open accepts: {e}"),
    }
}

/// A roll under way (the segment sealed, the next file created without its header yet), a
/// roll a crash cut there, and another log's file: a reader cannot tell them apart (review
/// 136: a file named right after a live writer's tail, or a writer's restart removing a cut
/// creation between the reader's look and its read, made any rule serve unsynced records).
/// So the segment before the file is served as the active one: what a later record proves
/// durable, a prefix of what was acknowledged. The rest shows once a writer's open has
/// removed the file and its close vouched for every record.
#[test]
fn a_reader_serves_the_proven_part_of_a_segment_before_a_last_file_with_no_header() {
    let fs = SimFs::new();
    let (writer, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&writer, i).unwrap();
    }
    let records = contents(&writer);
    let last = records.last().unwrap().0;
    drop(writer);
    let dir = Path::new("/log");
    let next = dir.join(segment_file_name(last + 1));
    fs.create_new(&next).unwrap();

    let (reader, _) = SegmentLog::open_read_only(fs.clone(), "/log", &mut ()).unwrap();
    let served = contents(&reader);
    assert!(
        served.len() < records.len() && records.starts_with(&served),
        "not the proven prefix: {} of {} records",
        served.len(),
        records.len()
    );
    let (writer, report) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    assert_eq!(report.removed_incomplete_segment, Some(next));
    writer.close().unwrap();
    let (reader, _) = SegmentLog::open_read_only(fs.clone(), "/log", &mut ()).unwrap();
    assert_eq!(contents(&reader), records);
}
