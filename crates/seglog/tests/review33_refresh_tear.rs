//! Review 33: a read-only log's `refresh` swaps two tables (the segment table, then the
//! offloaded table) after moving `layout_epoch` once, before both. A reader that loads the
//! epoch after the move but reads one table before its swap and the other after it passes
//! the epoch check with a view that is neither the old one nor the new one: a segment the
//! refresh moves between local and offloaded is then in neither table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use seglog::Log;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Check {
    AllSegments,
    ReadGlobal,
}

/// `read_global(first_lsn - 1, 1)` of the moving segment must return its first record
/// (segment local) or fail with `Offloaded` (segment offloaded); `read_global(0, MAX)` all
/// records or `Offloaded`. Fails on main: an `Ok` that skipped the moving segment's records.
#[test]
fn a_global_read_racing_a_refresh_never_skips_a_segment_that_moved() {
    run(Check::ReadGlobal);
}

/// `all_segments()` must always list every segment once (the moving one local or
/// offloaded). Fails on main: the moving segment missing from both tables.
#[test]
fn all_segments_racing_a_refresh_never_misses_a_segment_that_moved() {
    run(Check::AllSegments);
}

fn run(check: Check) {
    let (fs, source, _expected) = shipped_log();
    let writer = open(&fs, &source).unwrap();
    let segments = writer.segments();
    let active = segments.last().unwrap().number;
    let sealed: Vec<_> = segments
        .iter()
        .filter(|s| s.sealed && s.number < active)
        .cloned()
        .collect();
    assert!(sealed.len() >= 3);
    let moving = sealed[1].clone();
    let total_segments = segments.len();

    let reader = Arc::new(Log::open_read_only_with_fs(fs.clone(), "/log").unwrap());
    reader.set_segment_source(source.clone());
    // With every segment local: the first record after the moving segment's start is its own.
    let all = reader.read_global(0, usize::MAX).unwrap();
    let total_records = all.len();
    let first_of_moving = reader.read_global(moving.first_lsn - 1, 1).unwrap()[0].lsn;
    assert!(first_of_moving >= moving.first_lsn && first_of_moving <= moving.last_lsn);

    let stop = Arc::new(AtomicBool::new(false));
    let bad_segments = Arc::new(AtomicU64::new(0));
    let bad_reads = Arc::new(AtomicU64::new(0));
    let bad_full = Arc::new(AtomicU64::new(0));
    let checks = Arc::new(AtomicU64::new(0));
    let observer = {
        let (reader, stop) = (reader.clone(), stop.clone());
        let (bad_segments, bad_reads, bad_full, checks) = (
            bad_segments.clone(),
            bad_reads.clone(),
            bad_full.clone(),
            checks.clone(),
        );
        std::thread::spawn(move || {
            let mut first_error: std::collections::BTreeMap<&str, String> = Default::default();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                checks.fetch_add(1, Ordering::Relaxed);
                if check == Check::AllSegments {
                    let n = reader.all_segments().len();
                    if n != total_segments {
                        bad_segments.fetch_add(1, Ordering::Relaxed);
                        first_error.entry("all_segments").or_insert(format!(
                            "all_segments() listed {n} segments of {total_segments}"
                        ));
                    }
                    continue;
                }
                match reader.read_global(moving.first_lsn - 1, 1) {
                    Ok(r) if r.first().map(|r| r.lsn) == Some(first_of_moving) => {}
                    Ok(r) => {
                        bad_reads.fetch_add(1, Ordering::Relaxed);
                        first_error.entry("skipped").or_insert(format!(
                            "read_global({}, 1) returned LSN {:?}, expected {first_of_moving} \
                             (the records of segment {} were skipped)",
                            moving.first_lsn - 1,
                            r.first().map(|r| r.lsn),
                            moving.number
                        ));
                    }
                    Err(seglog::Error::Offloaded { .. }) => {}
                    // Neither view fails so: the old one serves the segment from its file,
                    // the new one refuses with `Offloaded`.
                    Err(e) => {
                        bad_reads.fetch_add(1, Ordering::Relaxed);
                        first_error.entry("failed").or_insert(format!(
                            "read_global({}, 1) failed: {e}",
                            moving.first_lsn - 1
                        ));
                    }
                }
                if i.is_multiple_of(8) {
                    match reader.read_global(0, usize::MAX) {
                        Ok(r) if r.len() == total_records => {}
                        Ok(r) => {
                            bad_full.fetch_add(1, Ordering::Relaxed);
                            first_error.entry("full short").or_insert(format!(
                                "read_global(0, MAX) returned {} records of {total_records}",
                                r.len()
                            ));
                        }
                        Err(seglog::Error::Offloaded { .. }) => {}
                        Err(e) => {
                            bad_full.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .entry("full failed")
                                .or_insert(format!("read_global(0, MAX) failed: {e}"));
                        }
                    }
                }
            }
            first_error
        })
    };

    let started = Instant::now();
    let mut refreshes = 0u64;
    while started.elapsed() < Duration::from_secs(15) {
        writer
            .offload_segment(moving.number, &target(&source, moving.number))
            .unwrap();
        reader.refresh().unwrap();
        writer.rehydrate_segment(moving.number).unwrap();
        reader.refresh().unwrap();
        refreshes += 2;
        if bad_segments.load(Ordering::Relaxed) + bad_reads.load(Ordering::Relaxed) >= 30 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let first_error = observer.join().unwrap();
    let (s, r, f) = (
        bad_segments.load(Ordering::Relaxed),
        bad_reads.load(Ordering::Relaxed),
        bad_full.load(Ordering::Relaxed),
    );
    eprintln!(
        "refreshes {refreshes}, checks {}, all_segments short {s}, read_global wrong {r}, \
         full reads short {f}; first: {first_error:?}",
        checks.load(Ordering::Relaxed)
    );
    assert_eq!(
        (s, r, f),
        (0, 0, 0),
        "a reader saw a half-installed refresh: {first_error:?}"
    );
    writer.close().unwrap();
}
