//! Sealed segments leave the page cache behind the tail
//! (`SegmentOptions::cached_sealed_segments`): the background thread drops the pages of the
//! segments this writer sealed, all but the newest few. What must hold: every record still
//! reads back (from the disk), the newest sealed segments and the active one stay cached,
//! segments found at open are left alone, and `None` drops nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::contents;
use common::page_cache::{data_bytes, fill, opts, residency, wait_dropped};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::{SegmentInfo, SegmentLog};
use std::time::Duration;

/// Every record's payload, in log order.
fn payloads<F: FileSystem>(log: &SegmentLog<F>) -> Vec<Vec<u8>> {
    contents(log).into_iter().map(|(_, p)| p).collect()
}

#[test]
fn sealed_segments_behind_the_newest_two_leave_the_page_cache_and_still_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(Some(2)), &mut ()).unwrap();
    let written = fill(&log, &mut 0, 6);
    let segments = log.segments();
    let sealed: Vec<&SegmentInfo> = segments.iter().filter(|s| s.sealed).collect();
    assert_eq!(sealed.len(), 6, "{segments:?}");
    let (older, newest) = sealed.split_at(sealed.len() - 2);
    let expected = data_bytes(older.iter().copied());
    assert_eq!(
        wait_dropped(&log, expected),
        expected,
        "the four oldest sealed segments are dropped, no more"
    );
    for segment in older {
        assert_eq!(
            residency(segment),
            Some(false),
            "segment {} is still cached",
            segment.number
        );
    }
    for segment in newest {
        assert_eq!(
            residency(segment),
            Some(true),
            "segment {} (one of the newest sealed) was dropped",
            segment.number
        );
    }
    // Every record reads back, the dropped ones from the disk.
    assert!(payloads(&log) == written, "records differ after the drop");
    log.close().unwrap();
}

/// A sealed segment read through its map (as the index checkpoint's scan and reads do)
/// has its pages mapped, and the kernel drops no mapped page: the map gives way to a new one
/// before the drop, or the segment would stay cached for good.
#[test]
fn sealed_segments_read_through_their_map_leave_the_page_cache_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(Some(1)), &mut ()).unwrap();
    let mut next = 0;
    // One sealed segment: the newest, kept. Reading faults in its pages through its map.
    let mut written = fill(&log, &mut next, 1);
    assert!(payloads(&log) == written);
    let read: Vec<SegmentInfo> = log.segments().into_iter().filter(|s| s.sealed).collect();
    written.extend(fill(&log, &mut next, 4));
    let sealed: Vec<SegmentInfo> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let expected = data_bytes(&sealed[..sealed.len() - 1]);
    assert_eq!(wait_dropped(&log, expected), expected);
    for segment in &read {
        assert_eq!(
            residency(segment),
            Some(false),
            "segment {}, read through its map, is still cached",
            segment.number
        );
    }
    assert!(payloads(&log) == written, "records differ after the drop");
    log.close().unwrap();
}

#[test]
fn none_keeps_every_sealed_segment_cached() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(None), &mut ()).unwrap();
    fill(&log, &mut 0, 5);
    // Long enough for a background thread that does drop them to have done so.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(log.stats().cache_dropped_bytes, 0);
    for segment in log.segments().iter().filter(|s| s.sealed) {
        assert_eq!(residency(segment), Some(true), "{segment:?}");
    }
    log.close().unwrap();
}

/// Segments sealed by an earlier session are not this writer's stream: a log opened to be
/// read leaves them to the kernel. Its own rolls are dropped as usual.
#[test]
fn segments_found_at_open_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(None), &mut ()).unwrap();
    let mut written = fill(&log, &mut 0, 4);
    log.close().unwrap();
    drop(log);

    let (log, _) = SegmentLog::open(StdFs, &path, opts(Some(1)), &mut ()).unwrap();
    let found: Vec<SegmentInfo> = log.segments().into_iter().filter(|s| s.sealed).collect();
    assert_eq!(found.len(), 4);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        log.stats().cache_dropped_bytes,
        0,
        "a segment found at open was dropped"
    );

    written.extend(fill(&log, &mut 1_000, 7));
    let segments = log.segments();
    let ours: Vec<&SegmentInfo> = segments
        .iter()
        .filter(|s| s.sealed && !found.iter().any(|f| f.number == s.number))
        .collect();
    assert_eq!(ours.len(), 3, "{segments:?}");
    // All of them but the newest: the segment active at open is this writer's too.
    let expected = data_bytes(ours.iter().take(2).copied());
    assert_eq!(wait_dropped(&log, expected), expected);
    for segment in &found {
        assert_ne!(residency(segment), Some(false), "{segment:?} was dropped");
    }
    assert!(payloads(&log) == written, "records differ after the drop");
    log.close().unwrap();
}

/// On the simulated file system (which models `POSIX_FADV_DONTNEED` as the kernel does: the
/// disk's bytes with the dirty pages on top), and through a power cut after the drops:
/// every acknowledged record survives.
#[test]
fn dropped_segments_read_back_and_survive_a_power_cut_on_the_simulator() {
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(Some(1)), &mut ()).unwrap();
    let written = fill(&log, &mut 0, 4);
    let segments = log.segments();
    let sealed: Vec<SegmentInfo> = segments.iter().filter(|s| s.sealed).cloned().collect();
    let expected = data_bytes(&sealed[..sealed.len() - 1]);
    assert_eq!(wait_dropped(&log, expected), expected);
    assert!(fs.evicted_bytes() >= expected);
    assert!(payloads(&log) == written, "records differ after the drop");

    let survived = fs.crash(CrashMode::LoseUnsynced);
    drop(log);
    let (log, _) = SegmentLog::open(survived, "/log", opts(Some(1)), &mut ()).unwrap();
    assert!(
        payloads(&log) == written,
        "acknowledged records lost after a power cut"
    );
}

/// A segment that left the disk (`forget_sealed_segment`: offloaded) and came back
/// (`adopt_sealed_segment`: rehydrated) under its old number is not this writer's roll any
/// more: it is left to the kernel (review 123: its number stayed queued, and the adopted
/// file was dropped at the next roll).
#[test]
fn a_segment_adopted_back_under_its_number_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(Some(1)), &mut ()).unwrap();
    let mut next = 0;
    let mut written = fill(&log, &mut next, 1);
    let first = log.segments().into_iter().find(|s| s.sealed).unwrap();
    // Offload and rehydrate it: the file leaves the directory and comes back whole.
    let bytes = std::fs::read(&first.path).unwrap();
    log.forget_sealed_segment(first.number).unwrap();
    std::fs::write(&first.path, &bytes).unwrap();
    std::fs::File::open(&first.path)
        .unwrap()
        .sync_all()
        .unwrap();
    let adopted = log
        .adopt_sealed_segment(&first.path, first.last_lsn)
        .unwrap();
    assert_eq!(adopted.number, first.number);
    // The next roll: the newest sealed segment stays, and the adopted one is not ours.
    written.extend(fill(&log, &mut next, 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        log.stats().cache_dropped_bytes,
        0,
        "the adopted segment {} was dropped",
        first.number
    );
    assert!(payloads(&log) == written);
    log.close().unwrap();
}
