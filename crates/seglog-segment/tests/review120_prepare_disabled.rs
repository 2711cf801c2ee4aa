//! Review 120 (of b8c36b5, "rounds of large records go without zeros ahead"): with
//! `prepare_next_segment: false` the zeroing thread still prepares the next segment.
//!
//! `zeroing_thread` runs `prepare_step(false)` whenever `zero_step` is idle, and neither
//! `prepare_step` nor `prepare_towards` checks `prepares_segments()`. So once the active
//! segment is half full, a log that turned preparation off still creates `NEXT_SEGMENT`,
//! preallocates a whole segment's size for it and writes and syncs zeros through all of it
//! (`prepared_bytes`), and no roll ever takes it (`create_segment` only looks at the slot
//! when `prepares_segments()`): an extra segment of disk space and a segment's worth of
//! zeros written and synced, which the option exists to avoid.
//!
//! This predates b8c36b5 (the small-record case goes through code the commit does not
//! change), but b8c36b5 makes it more frequent: while rounds are large `zero_step` returns
//! `Idle` on every pass, so the thread goes to `prepare_step` at once instead of only when
//! the zeroed window is full.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::format::{EventBatch, PREPARED_SEGMENT_FILE_NAME};
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;
use std::time::{Duration, Instant};

fn append(log: &SegmentLog<SimFs>, len: usize, i: u64) {
    let p = vec![(1 + i % 250) as u8; len];
    log.append(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[p.as_slice()],
    })
    .unwrap();
}

/// Fills an 8 MiB segment to 6 MiB with records of `len` bytes, zeros ahead on and the next
/// segment's preparation off; then waits up to 2 s for a `NEXT_SEGMENT` to appear.
fn next_segment_appears_without_preparation(len: usize) -> Option<String> {
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    let opts = SegmentOptions {
        segment_size_bytes: 8 << 20,
        max_record_size_bytes: 1 << 20,
        prepare_next_segment: false,
        ..SegmentOptions::default()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts, &mut ()).unwrap();
    let mut i = 0;
    while log.segments().last().unwrap().data_end < (6 << 20) {
        append(&log, len, i);
        i += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let names = fs.file_names(Path::new("/log"));
        let stats = log.stats();
        if names.iter().any(|n| n == PREPARED_SEGMENT_FILE_NAME) || stats.prepared_bytes > 0 {
            return Some(format!(
                "{names:?}, prepared_bytes: {}",
                stats.prepared_bytes
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_log_that_turned_preparation_off_prepares_no_next_segment_with_large_rounds() {
    if let Some(seen) = next_segment_appears_without_preparation(600 << 10) {
        panic!("prepare_next_segment is false, yet the zeroing thread prepared one: {seen}");
    }
}

#[test]
fn a_log_that_turned_preparation_off_prepares_no_next_segment_with_small_rounds() {
    if let Some(seen) = next_segment_appears_without_preparation(4000) {
        panic!("prepare_next_segment is false, yet the zeroing thread prepared one: {seen}");
    }
}
