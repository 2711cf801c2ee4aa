//! Review 145: review 143's close gate records a close that panicked as `Closed(None)`
//! (close_gate.rs, `FirstClose::drop`). Every later `SegmentLog::close` then gets
//! `CloseTurn::Done(None)` → `Err(Error::Closed)` (close.rs `stop_writes`), and
//! `SegmentLog::close` skips `release_lock` for `Closed` ("a close that did not end a close
//! leaves the lock to the one that will") — but the one that would has unwound and never
//! will. So once a close panics (a seal listener that panics in the round the closing thread
//! leads, which group_commit.rs `LeaderClaim::drop` names as the case it handles), no close
//! ever releases the directory lock again while a handle lives: the log cannot be reopened
//! in this process. Before the commit the second close found `st.closed` and released it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{Error, SegmentLog, SegmentOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        // Buffered records stay queued until a commit round (here: the close's drain).
        buffered_write_bytes: 1 << 30,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(id: &'a [u8], p: &'a [&'a [u8]]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: id,
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: p,
    }
}

#[test]
fn a_close_after_a_close_that_panicked_releases_the_directory_lock() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let filler = [b'f'; 1000];
    for _ in 0..3 {
        log.append(&batch(b"fill", &[&filler[..]])).unwrap();
    }
    let armed = Arc::new(AtomicBool::new(true));
    let in_listener = armed.clone();
    log.set_seal_listener(Box::new(move |_, _| {
        if in_listener.swap(false, Ordering::AcqRel) {
            panic!("a seal listener that panics (once)");
        }
    }));
    // Queued, not written: the close's drain writes it, on the closing thread, and rolls.
    let big = [b'R'; 1500];
    log.submit_buffered(log.encode(&batch(b"r", &[&big[..]])).unwrap())
        .unwrap();

    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| log.close()));
    eprintln!("first close: {:?}", first.as_ref().map_err(|_| "panicked"));
    assert!(
        first.is_err(),
        "setup: the first close was expected to panic in the seal listener"
    );

    // The application closes again (it still holds its handle) and reopens the directory.
    let second = log.close();
    let reopened = SegmentLog::open(fs.clone(), "/log", opts(), &mut ());
    eprintln!(
        "second close: {second:?}; reopen while the handle lives: {:?}",
        reopened.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    assert!(
        !matches!(reopened, Err(Error::Locked { .. })),
        "no close released the directory lock after the first close panicked: the log \
         cannot be reopened in this process while a handle lives (second close: {second:?})"
    );
}
