// Regression test for a review finding (fixed): a segment file is untrusted input, and `analyze_segment` promises "never fails and
// never panics" (crates/seglog-segment/src/inspect.rs), but a valid commit marker (new in
// format v3) whose LSN is u64::MAX makes the record scan compute `last_lsn + 1`
// (inspect.rs, `scan_records`, `RecordScan::Commit` arm: `min_lsn = last_lsn + 1`) and panic
// with "attempt to add with overflow" (debug / overflow-checked builds; in release it wraps
// to 0 and LSN order is no longer checked after it). The same scan runs at open, so
// `SegmentLog::open` panics on such a file instead of reporting corruption, and so do the
// CLI's inspect commands.
//! Review finding (see the comment above).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::{encode_commit_marker, segment_file_name, SegmentHeader};
use seglog_segment::inspect::analyze_segment;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;

fn crafted_segment() -> Vec<u8> {
    let header = SegmentHeader::new(1, 1, 0).unwrap();
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(&encode_commit_marker(
        header.record_salt(),
        u64::MAX,
        u64::MAX - 1,
    ));
    bytes
}

#[test]
fn analyze_segment_never_panics_on_a_commit_marker_with_the_largest_lsn() {
    let bytes = crafted_segment();
    let outcome = std::panic::catch_unwind(|| analyze_segment(&bytes, 0));
    assert!(
        outcome.is_ok(),
        "analyze_segment panicked on a crafted segment (commit marker with LSN u64::MAX)"
    );
}

#[test]
fn open_reports_corruption_instead_of_panicking_on_a_commit_marker_with_the_largest_lsn() {
    let fs = SimFs::new();
    let (log, _) =
        SegmentLog::open(fs.clone(), "/log", SegmentOptions::default(), &mut ()).unwrap();
    log.close().unwrap();
    drop(log);
    let path = Path::new("/log").join(segment_file_name(1));
    fs.replace_file(&path, crafted_segment()).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        SegmentLog::open(fs.clone(), "/log", SegmentOptions::default(), &mut ()).map(|_| ())
    }));
    match outcome {
        Ok(r) => eprintln!("open returned {r:?}"),
        Err(_) => panic!(
            "SegmentLog::open panicked on a crafted segment (commit marker with LSN u64::MAX)"
        ),
    }
}
