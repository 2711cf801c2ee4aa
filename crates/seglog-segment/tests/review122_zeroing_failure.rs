//! Review 122: dropping sealed segments from the page cache runs on the zeroing thread, and
//! that thread *returns* when zeroing fails for a reason that "only ends zeroing" (opening its
//! handle, writing zeros): the log goes on appending and rolling, but from then on no sealed
//! segment ever leaves the page cache, silently (`drop_behind` says "a failure to drop only
//! leaves pages cached": here a failure of something else stops every later drop).
//!
//! Fixed: such a failure ends the zeros only (`CommitState::zeros_failed`); the thread goes
//! on preparing and dropping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::append_payload;
use seglog_segment::io::sim::{Fault, FaultKind, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::time::{Duration, Instant};

const SEGMENT: u64 = 1 << 20;
const RECORD: usize = 200 << 10;

#[test]
fn a_failed_zero_write_does_not_end_dropping_sealed_segments() {
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    // Each zeroing step syncs: slow syncs keep the thread zeroing the window (four steps of
    // 256 KiB) well after the open returns, so the next write is one of its zeros.
    fs.set_sync_latency(Duration::from_millis(100));
    let opts = SegmentOptions {
        segment_size_bytes: SEGMENT,
        max_record_size_bytes: 512 << 10,
        // No tail bound: the zeroer's only writes are zeros (a failed bound write would
        // poison the log instead).
        prepare_next_segment: false,
        cached_sealed_segments: Some(1),
        ..SegmentOptions::default()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts, &mut ()).unwrap();
    // Nothing is appended yet: the next write is the zeroing thread's.
    fs.inject(Fault {
        op: Some(Op::Write),
        nth: fs.op_count(Op::Write) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    std::thread::sleep(Duration::from_millis(600));
    fs.set_sync_latency(Duration::ZERO);
    assert!(
        fs.op_count(Op::Write) >= 1,
        "the injected fault never hit the zeroer"
    );

    // The log goes on: appends and rolls work (the failure was not the records').
    let payload = vec![7u8; RECORD];
    while log.segments().iter().filter(|s| s.sealed).count() < 4 {
        append_payload(&log, &payload);
    }
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let expected: u64 = sealed[..sealed.len() - 1].iter().map(|s| s.data_end).sum();
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.stats().cache_dropped_bytes < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        log.stats().cache_dropped_bytes,
        expected,
        "after a failed zero write (zeroing ended, the log went on), {} sealed segments \
         never left the page cache (sim evicted {} bytes)",
        sealed.len() - 1,
        fs.evicted_bytes()
    );
    log.close().unwrap();
}
