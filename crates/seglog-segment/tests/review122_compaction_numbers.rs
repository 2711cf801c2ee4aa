//! Review 122: `drop_behind` takes "the segments this writer sealed" to be those numbered
//! above the segment active at open, and "the newest" to be the highest numbers. Compaction
//! outputs get numbers above the active segment (`reserve_segment_number`), so:
//! - compaction outputs of an earlier session, found at open, are dropped as soon as this
//!   writer seals the segment active at open, although "segments found at open are never
//!   dropped";
//! - during a session, outputs count as the newest sealed segments: the segment sealed next
//!   (the newest records) is dropped at once, the outputs (the oldest records) stay cached.
//!
//! Fixed: the writer queues the segments its rolls seal, in order (`CommitState::rolled`),
//! and drops from that queue only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::page_cache::{data_bytes, fill, opts, residency, wait_dropped};
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::{RecordPosition, SegmentInfo, SegmentLog};
use std::time::Duration;

/// Whether every probed page of the segment's records is cached.
fn all_cached(segment: &SegmentInfo) -> bool {
    residency(segment) == Some(true)
}

/// Replaces the oldest sealed segment by `outputs` compaction outputs holding the same
/// records (one or more each), as compaction does; returns the outputs' numbers.
fn compact_oldest_into<F: FileSystem + Clone>(log: &SegmentLog<F>, outputs: usize) -> Vec<u64> {
    let oldest = log.segments().into_iter().find(|s| s.sealed).unwrap();
    let records: Vec<_> = log
        .records_from(RecordPosition {
            segment: oldest.number,
            offset: seglog_segment::format::SEGMENT_HEADER_LEN as u64,
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(records.len() >= outputs, "{} records", records.len());
    let per = records.len().div_ceil(outputs);
    let mut built = Vec::new();
    for (k, chunk) in records.chunks(per).enumerate() {
        let first = if k == 0 {
            oldest.first_lsn
        } else {
            chunk[0].view().lsn()
        };
        let mut b = log.segment_builder(first).unwrap();
        for r in chunk {
            b.push(&r.view()).unwrap();
        }
        built.push(b.finish().unwrap());
    }
    let numbers: Vec<u64> = built.iter().map(|b| b.number()).collect();
    let replacement = log.replace_segments(&[oldest.number], built).unwrap();
    log.install(replacement);
    numbers
}

/// A log that compacted in an earlier session: its outputs carry numbers above the segment
/// active at open. Found at open, they must be left alone, however many segments this
/// writer seals afterwards.
#[test]
fn compaction_outputs_found_at_open_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(None), &mut ()).unwrap();
    let mut i = 0;
    fill(&log, &mut i, 2);
    let outputs = compact_oldest_into(&log, 3);
    let active = log.segments().into_iter().find(|s| !s.sealed).unwrap();
    assert!(
        outputs.iter().all(|&n| n > active.number),
        "outputs {outputs:?}, active {}",
        active.number
    );
    log.close().unwrap();
    drop(log);

    let (log, _) = SegmentLog::open(StdFs, &path, opts(Some(2)), &mut ()).unwrap();
    let found: Vec<SegmentInfo> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let found_outputs: Vec<SegmentInfo> = found
        .iter()
        .filter(|s| outputs.contains(&s.number))
        .cloned()
        .collect();
    assert_eq!(found_outputs.len(), 3);
    for s in &found_outputs {
        assert!(all_cached(s), "output {} not cached at open", s.number);
    }
    // This writer seals the segment active at open and four more: the three oldest of its
    // own leave the page cache.
    fill(&log, &mut i, found.len() + 5);
    let ours: Vec<SegmentInfo> = log
        .segments()
        .into_iter()
        .filter(|s| s.sealed && !found.iter().any(|f| f.number == s.number))
        .collect();
    let expected = data_bytes(&ours[..ours.len() - 2]);
    let dropped = wait_dropped(&log, expected);
    std::thread::sleep(Duration::from_millis(300));
    let dropped_outputs: Vec<u64> = found_outputs
        .iter()
        .filter(|s| !all_cached(s))
        .map(|s| s.number)
        .collect();
    assert!(
        dropped_outputs.is_empty() && log.stats().cache_dropped_bytes == expected,
        "segments found at open (compaction outputs {dropped_outputs:?}) were dropped: \
         dropped {} bytes, this writer's own older segments hold {expected} (first wait saw \
         {dropped})",
        log.stats().cache_dropped_bytes
    );
    log.close().unwrap();
}

/// Compaction during the session: its outputs (numbered above the active segment) count as
/// the newest sealed segments, so the segment sealed next, the newest in the log, leaves the
/// page cache at once while the outputs (the log's oldest records) stay.
#[test]
fn the_newest_sealed_segment_stays_cached_after_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let keep = 2;
    let (log, _) = SegmentLog::open(StdFs, &path, opts(Some(keep)), &mut ()).unwrap();
    let mut i = 0;
    fill(&log, &mut i, 3);
    let outputs = compact_oldest_into(&log, keep + 1);
    let active = log.segments().into_iter().find(|s| !s.sealed).unwrap();
    assert!(outputs.iter().all(|&n| n > active.number));
    // Seal the active segment: it is now the newest sealed segment of the log.
    assert_eq!(log.roll().unwrap(), Some(active.number));
    std::thread::sleep(Duration::from_millis(500));
    let newest = log
        .segments()
        .into_iter()
        .find(|s| s.number == active.number)
        .unwrap();
    assert!(
        all_cached(&newest),
        "segment {} (the newest sealed segment, sealed just now) left the page cache while \
         the compaction outputs {outputs:?} (the oldest records) stay: dropped {} bytes",
        newest.number,
        log.stats().cache_dropped_bytes
    );
    log.close().unwrap();
}
