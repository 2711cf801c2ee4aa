//! Review 41: the open's cache drop of the last segment now stops 64 KiB past the tail bound
//! (a38ebab), on the claim that "nothing was written there since the file's zeros were
//! synced, so its cache cannot hide a failed writeback".
//!
//! Not so: the zeroing thread (`zero_ahead_bytes`, 2 MiB by default) writes zeros up to
//! 2 MiB past the tail, and the tail may be anywhere below the bound, so its writes run up to
//! ~2 MiB past the bound. When one of its fdatasyncs fails (the log is poisoned), the pages
//! stay cached and clean (fsyncgate) with the extent unwritten on ext4 (the simulated file
//! system's documented model: a later write into such a page does not become durable, even
//! after a sync that returns Ok, until the page is dropped from the cache or truncated
//! away). The application reopens the log in the same process (the documented way out of a
//! poisoned log, tests/restart_after_failure.rs); recovery drops the cache only up to the
//! bound + 64 KiB, so those pages stay. The new writer appends into them, fsync returns Ok,
//! the records are acknowledged — and a power cut takes them: the next open finds zeros and
//! opens *silently* without them (a torn tail at most).
//!
//! Before a38ebab the drop ran to the end of the file, and this test passes there.
//!
//! Fixed by keeping the bound's rule for the zeros too: the zeroing thread moves the bound
//! before it writes past it (`writer/zeroing.rs`), so recovery's drop covers them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append_bytes, stored};
use seglog_segment::format::{TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Where the zeroing thread starts (the first page after the header, once the first round
/// has created the segment), and its step.
const ZEROS_FROM: u64 = 4 * KIB;
const ZERO_STEP: u64 = 256 * KIB;

/// Defaults (zeros 2 MiB ahead, next segment prepared, so a tail bound is kept), with
/// 32 MiB segments (the next one is not prepared below 16 MiB) and records up to 1 MiB.
fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 32 * MIB,
        max_record_size_bytes: MIB as u32,
        ..SegmentOptions::default()
    }
}

fn payload(i: u64, len: u64) -> Vec<u8> {
    (0..len).map(|k| 1 + ((i + k) % 251) as u8).collect()
}

fn append(log: &SegmentLog<SimFs>, i: u64, len: u64) -> seglog_segment::Result<u64> {
    append_bytes(log, b"exec", &payload(i, len))
}

/// The acknowledged records (LSN → (index, length)) that `log` does not hold as appended.
fn lost(log: &SegmentLog<SimFs>, acked: &BTreeMap<u64, (u64, u64)>) -> Vec<u64> {
    let stored = stored(log);
    acked
        .iter()
        .filter(|(lsn, (i, len))| stored.get(lsn) != Some(&payload(*i, *len)))
        .map(|(lsn, _)| *lsn)
        .collect()
}

fn tail(log: &SegmentLog<SimFs>) -> u64 {
    log.segments().last().unwrap().data_end
}

fn newest_bound(fs: &SimFs) -> TailBound {
    TailBound::newest(
        &fs.read_file(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
            .unwrap(),
    )
    .unwrap()
}

/// Waits until the zeroing thread has stopped zeroing (its window is whole).
fn zeroing_idle(log: &SegmentLog<SimFs>) {
    let mut last = log.stats().zeroed_bytes;
    let mut still = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while still < 3 {
        assert!(Instant::now() < deadline, "zeroing never settled");
        std::thread::sleep(Duration::from_millis(300));
        let now = log.stats().zeroed_bytes;
        if now == last {
            still += 1;
        } else {
            still = 0;
            last = now;
        }
    }
}

/// The scenario above, the zeroing thread's `nth_sync`-th fdatasync after the commit's
/// failing. Run again (a few times at most) when the setup raced: the zeroing thread's idle
/// wake-up fell between the commit's write and its fdatasync, so the fault hit the commit.
fn a_failed_zeroing_sync_then_a_restart_then_a_power_cut(nth_sync: u64) {
    for _ in 0..5 {
        if scenario(nth_sync) == Setup::Done {
            return;
        }
    }
    panic!("setup: the commit's own sync took the fault in every run");
}

#[derive(PartialEq)]
enum Setup {
    Done,
    /// The commit's own fdatasync took the fault meant for the zeroing thread's.
    Raced,
}

/// One run of the scenario.
fn scenario(nth_sync: u64) -> Setup {
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let mut acked = BTreeMap::new();
    let mut i = 0;
    let mut push = |log: &SegmentLog<SimFs>, len: u64, acked: &mut BTreeMap<u64, (u64, u64)>| {
        i += 1;
        let r = append(log, i, len);
        if let Ok(lsn) = r {
            acked.insert(lsn, (i, len));
        }
        r
    };
    push(&log, 1000, &mut acked).unwrap();
    // The segment exists from the first round on: the thread's first step starts at the
    // first page after the header, and its window fills in whole steps from there.
    zeroing_idle(&log);
    assert_eq!(
        ZEROS_FROM + log.stats().zeroed_bytes,
        ZEROS_FROM + 2 * MIB,
        "setup: the zeros did not start at the first page"
    );
    let bound = newest_bound(&fs);
    let b = bound.bound;
    assert_eq!(bound.segment, log.segments().last().unwrap().number);
    // The zeroing thread zeroes whole 256 KiB steps from the first page after the header:
    // the step that holds the bound's first byte starts at `crossing`, and it is the first
    // to need the bound moved (its end lies past the bound). The tail goes where the window
    // (2 MiB past it) reaches `crossing` but not the end of that step: the zeros stop there.
    // (When the zeroing thread moved the bound first, before the first round's records, the
    // bound is a whole number of steps from the first page: the step *ending* at the bound
    // needs no move, so it must not be the one the fault is aimed at. It was, once, and the
    // fault then hit no sync at all: a CI run of 0803a0b.)
    let crossing = ZEROS_FROM + (b - ZEROS_FROM) / ZERO_STEP * ZERO_STEP;
    assert!(crossing <= b && b < crossing + ZERO_STEP);
    while tail(&log).next_multiple_of(4 * KIB) + 2 * MIB < crossing {
        push(&log, 60 * KIB, &mut acked).unwrap();
    }
    // (The last step may wait for the thread's idle wake-up: the window is more than half
    // full, so no round wakes it.)
    let started = Instant::now();
    while ZEROS_FROM + log.stats().zeroed_bytes < crossing {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "setup: the zeros never reached the step across the bound"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    zeroing_idle(&log);
    assert_eq!(newest_bound(&fs).bound, b, "the bound moved");
    assert_eq!(
        ZEROS_FROM + log.stats().zeroed_bytes,
        crossing,
        "setup: the zeros do not stop where the step across the bound starts"
    );

    // The next commit's fdatasync is fine; the zeroing thread's next step (256 KiB, from
    // below the bound to past it) fails its fdatasync.
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1 + nth_sync,
        kind: FaultKind::Eio,
        persistent: false,
    });
    if push(&log, 300 * KIB, &mut acked).is_err() {
        return Setup::Raced;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.poisoned().is_none() {
        assert!(
            Instant::now() < deadline,
            "setup: the zeroing sync never failed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(log);

    // The process restarts on the same machine (same page cache) and opens the log again.
    let (log, report) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    assert!(report.tail_bound_used, "{report:?}");
    assert!(lost(&log, &acked).is_empty(), "lost before the power cut");
    // Appends until the tail is well past the bound + 64 KiB, inside the failed chunk.
    while tail(&log) < b + 150 * KIB {
        push(&log, 16 * KIB, &mut acked).unwrap();
    }
    assert!(tail(&log) < b + 200 * KIB);
    assert!(log.poisoned().is_none());
    let last_acked = *acked.keys().last().unwrap();
    drop(log);

    let fs = fs.crash(CrashMode::LoseUnsynced);
    match SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) {
        Err(e) => panic!("open after the power cut refused: {e}"),
        Ok((log, report)) => {
            let lost = lost(&log, &acked);
            assert!(
                lost.is_empty(),
                "the log opened without {} acknowledged records (LSNs {:?}..={:?}, last acked \
                 {last_acked}; bound {b}; torn_tail {:?})",
                lost.len(),
                lost.first(),
                lost.last(),
                report.torn_tail
            );
        }
    }
    Setup::Done
}

/// Before the fix, the zeros' own sync (past the bound, which did not move); since, the sync
/// of the slot the thread writes before zeroing past the bound.
#[test]
fn a_failed_zeroing_sync_across_the_bound_loses_no_acknowledged_record() {
    a_failed_zeroing_sync_then_a_restart_then_a_power_cut(1);
}

/// Since the fix: the zeros' own sync, after the thread moved the bound past them.
#[test]
fn a_failed_sync_of_zeros_past_the_old_bound_loses_no_acknowledged_record() {
    a_failed_zeroing_sync_then_a_restart_then_a_power_cut(2);
}
