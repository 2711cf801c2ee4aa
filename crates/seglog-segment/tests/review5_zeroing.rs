//! Review 5: the zeroing thread (zeros kept ahead of the tail) must not take away what a log
//! without it could still do, and no option value may panic it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::append_one;
use seglog_segment::io::sim::{Fault, FaultKind, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::time::{Duration, Instant};

fn opts(zero_ahead_bytes: u64) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 8 << 10,
        zero_ahead_bytes,
        ..SegmentOptions::default()
    }
}

/// Waits until the zeroing thread has had its chance to run (a write after `writes`), or
/// half a second.
fn let_zeroer_run(fs: &SimFs, writes: u64) {
    let until = Instant::now() + Duration::from_millis(500);
    while fs.op_count(Op::Write) <= writes && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
}

/// A log reopened on a nearly full disk: the reservation of the active segment fails
/// (`SegmentLog::open` deliberately goes on without it, so that the log can still be read,
/// appended to while room lasts, and compacted to make room). Small appends still fit; the
/// zeroing thread's megabytes of zeros past the file's end do not. Its ENOSPC must not
/// poison a log that can still append (and, poisoned, can no longer be compacted).
fn reopen_on_a_nearly_full_disk(zero_ahead_bytes: u64) -> seglog_segment::Result<u64> {
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    {
        let (log, _) =
            SegmentLog::open(fs.clone(), "/log", opts(zero_ahead_bytes), &mut ()).unwrap();
        for i in 0..3 {
            append_one(&log, i).unwrap();
        }
        log.close().unwrap();
    }
    // Cut the active segment back to its data, as a torn-tail recovery or a log written
    // without preallocation leaves it: reopening must reserve the rest again.
    let path = SegmentLog::open(fs.clone(), "/log", opts(0), &mut ())
        .map(|(log, _)| {
            let p = log.segments().last().unwrap().path.clone();
            log.close().unwrap();
            p
        })
        .unwrap();
    let mut bytes = fs.read_file(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.truncate(end);
    fs.replace_file(&path, bytes).unwrap();

    // The disk is nearly full: the reservation fails. (SimFs cannot count free space, so
    // "room for the append, none for 256 KiB of zeros" is checked as: nothing but the append
    // writes. `tests/review5_full_disk.rs` shows the ENOSPC on a real nearly full disk.)
    fs.inject(Fault {
        op: Some(Op::Allocate),
        nth: fs.op_count(Op::Allocate) + 1,
        kind: FaultKind::Enospc,
        persistent: true,
    });
    let writes = fs.op_count(Op::Write);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(zero_ahead_bytes), &mut ())?;
    let_zeroer_run(&fs, writes);
    if fs.op_count(Op::Write) != writes {
        return Err(seglog_segment::Error::InvalidOptions(
            "the zeroing thread wrote past the end of a segment it could not reserve".into(),
        ));
    }
    append_one(&log, 11)
}

#[test]
fn a_small_append_that_fits_on_a_nearly_full_disk_is_not_refused_because_zeros_ahead_did_not_fit() {
    // Zeros ahead on (the default on real files).
    reopen_on_a_nearly_full_disk(2 << 20)
        .unwrap_or_else(|e| panic!("with zeros ahead, an append that fits is refused: {e}"));
}

/// `zero_ahead_bytes` is an option ("0 turns it off"); a caller asking for "the whole
/// segment" with `u64::MAX` must get either that or an `InvalidOptions` error, never a
/// panic on the zeroing thread.
#[test]
fn a_huge_zero_ahead_window_neither_panics_nor_is_silently_ignored() {
    let panics = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        previous(info);
    }));
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    let opened = SegmentLog::open(fs.clone(), "/log", opts(u64::MAX), &mut ());
    if let Ok((log, _)) = opened {
        for i in 0..5 {
            append_one(&log, i).unwrap();
        }
        // The zeroing thread's first pass: wait for it (a loaded machine may be slow).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while log.stats().zeroed_bytes == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let zeroed = log.stats().zeroed_bytes;
        log.close().unwrap();
        assert_eq!(
            panics.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a thread of the log panicked"
        );
        assert!(zeroed > 0, "the window was silently ignored");
    }
}

/// A window shorter than a page is a page, not "off" (only 0 turns zeroing off): it used to
/// zero nothing, since zeroing goes in whole pages.
#[test]
fn a_window_shorter_than_a_page_still_zeroes_a_page() {
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(1000), &mut ()).unwrap();
    for i in 0..5 {
        append_one(&log, i).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.stats().zeroed_bytes == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a 1000-byte window was silently ignored"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    log.close().unwrap();
    assert_eq!(log.stats().zeroed_bytes % 4096, 0, "{:?}", log.stats());
}
