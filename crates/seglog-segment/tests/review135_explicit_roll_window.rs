//! Review 135: a roll by `SegmentLog::roll` (compaction's, and the open's after a compacted
//! last segment) takes an LSN of its own, so the next segment is named the sealed segment's
//! greatest LSN + 2, not + 1. While that segment's file had no header yet, review 134's
//! check took the sealed segment for the active one and hid its newest acknowledged commit
//! group. Fixed: a name one LSN further counts as a roll's too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{append_one, contents, small_opts};
use seglog_segment::format::segment_file_name;
use seglog_segment::io::sim::SimFs;
use seglog_segment::io::FileSystem;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        // The roll creates its file (a window with no header), not a prepared one.
        prepare_next_segment: false,
        ..small_opts()
    }
}

#[test]
fn a_reader_serves_a_segment_sealed_by_an_explicit_roll_whose_next_file_has_no_header_yet() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let (writer, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&writer, i).unwrap();
    }
    let records = contents(&writer);
    let last = records.last().unwrap().0;
    let before = SegmentLog::open_read_only(fs.clone(), "/log", &mut ())
        .map(|(r, _)| contents(&r).len())
        .unwrap();
    writer.roll().unwrap();
    drop(writer);
    let names = fs.file_names(dir);
    eprintln!("{names:?}");
    let by_roll = dir.join(segment_file_name(last + 2));
    assert!(
        names.iter().any(|n| dir.join(n) == by_roll),
        "the roll's segment is not named last + 2: {names:?}"
    );
    // The state while the roll creates that file: sealed segment, the new name, no header.
    fs.remove(&by_roll).unwrap();
    fs.create_new(&by_roll).unwrap();
    let (reader, _) = SegmentLog::open_read_only(fs.clone(), "/log", &mut ()).unwrap();
    let served = contents(&reader);
    assert_eq!(
        served.len(),
        records.len(),
        "a segment sealed (whole, synced) by roll() is served as the active one: {} of {} \
         acknowledged records (before the roll: {before})",
        served.len(),
        records.len()
    );
}
