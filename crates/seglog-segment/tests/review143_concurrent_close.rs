//! Review 143: `SegmentLog::close` on two clones at once. The second call finds `closed`
//! already set (`Inner::stop_writes`, close.rs: "Returns Ok once, on the first call; later
//! calls do nothing") and returns at once — and `SegmentLog::close` then releases the
//! directory lock (`release_lock`), while the first close is still draining the queue (a
//! commit round, possibly a roll) and has still to write its commit marker.
//!
//! So (1) the second close returns Ok before the appends submitted before it are durable
//! (its documentation: "Appends submitted before the call are made durable (or fail) before
//! it returns"), and (2) another writer can open the directory while this one still writes
//! in it: both append at the same LSNs, and what one of them acknowledged is lost (or the
//! log no longer opens).
//!
//! The first close is held inside its drain deterministically by a seal listener (the drain's
//! round rolls, and sealing calls the listener).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        preallocate: true,
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
fn a_second_close_neither_returns_before_the_drain_nor_lets_another_writer_in() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    // Segment 1 about three quarters full.
    let filler = [b'f'; 1000];
    for _ in 0..3 {
        log.append(&batch(b"fill", &[&filler[..]])).unwrap();
    }
    // The first close's drain will roll (the next record does not fit) and so seal segment 1:
    // the listener holds it there until released.
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let entered_tx = Mutex::new(entered_tx);
    log.set_seal_listener(Box::new(move |_, _| {
        let _ = entered_tx.lock().unwrap().send(());
        let _ = release_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
    }));
    let big = [b'R'; 1500];
    let r = log
        .submit(log.encode(&batch(b"r-exec", &[&big[..]])).unwrap())
        .unwrap();
    // Its appender waits for it: an acknowledged append, once the first close drains it.
    let waiter = {
        let log = log.clone();
        std::thread::spawn(move || log.wait_durable(r.lsn))
    };
    let first_close = {
        let log = log.clone();
        std::thread::spawn(move || log.close())
    };
    // The first close has begun (submits are refused) and its drain is inside the roll.
    let began = std::time::Instant::now();
    while !matches!(
        log.write_queued_if_large(),
        Err(seglog_segment::Error::Closed)
    ) {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the first close never began"
        );
        std::thread::yield_now();
    }
    entered_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the first close's round never sealed");

    // The second close, on another clone, while the first is inside its drain: it must wait
    // for the first (with the bug it returned Ok at once and released the lock).
    let second_close = {
        let log = log.clone();
        std::thread::spawn(move || {
            let result = log.close();
            (result, log.durable_lsn())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let second_returned_during_the_drain = second_close.is_finished();

    // Another writer, while the first close is still held inside its drain.
    let other = SegmentLog::open(fs.clone(), "/log", opts(), &mut ());
    let reopened_while_first_close_ran = other.is_ok();
    let mut other_acked = None;
    if let Ok((other, _)) = &other {
        let x = [b'X'; 100];
        other_acked = other
            .append(&batch(b"x-exec", &[&x[..]]))
            .ok()
            .map(|a| a.lsn);
    }
    release_tx.send(()).unwrap();
    let first = first_close.join().unwrap();
    let (second, durable_when_second_returned) = second_close.join().unwrap();
    let r_acked = waiter.join().unwrap().is_ok();
    if let Ok((other, _)) = other {
        let _ = other.close();
    }

    // What the directory holds now, after a power cut.
    let after = fs.crash(seglog_segment::io::sim::CrashMode::LoseUnsynced);
    let reopened = SegmentLog::open(after, "/log", opts(), &mut ());
    let contents: Result<Vec<(u64, Vec<u8>)>, String> = match &reopened {
        Ok((l, _)) => l
            .records()
            .unwrap()
            .map(|rec| {
                rec.map(|rec| {
                    let v = rec.view();
                    (v.lsn(), v.execution_id().to_vec())
                })
                .map_err(|e| e.to_string())
            })
            .collect(),
        Err(e) => Err(e.to_string()),
    };
    let has = |id: &[u8]| {
        contents
            .as_ref()
            .is_ok_and(|c| c.iter().any(|(_, e)| e.as_slice() == id))
    };

    assert!(
        !second_returned_during_the_drain,
        "the second close returned while the first was still draining"
    );
    assert!(second.is_ok() && first.is_ok(), "{second:?} {first:?}");
    eprintln!(
        "second close: {second:?} with durable_lsn {durable_when_second_returned} < R's LSN {}? {}; \
         first close: {first:?}; R acknowledged: {r_acked}; \
         another writer opened the directory meanwhile: {reopened_while_first_close_ran}, \
         and it acknowledged X at LSN {other_acked:?}; \
         after a power cut the log reads: {contents:?}",
        r.lsn,
        durable_when_second_returned < r.lsn
    );
    assert!(
        durable_when_second_returned >= r.lsn,
        "close returned Ok before an append submitted before it was durable \
         (durable_lsn {durable_when_second_returned}, append at {})",
        r.lsn
    );
    assert!(
        !reopened_while_first_close_ran,
        "the directory lock was released while the first close was still writing in the log"
    );
    assert!(
        !r_acked || has(b"r-exec"),
        "an acknowledged append is not in the log"
    );
    assert!(
        other_acked.is_none() || has(b"x-exec"),
        "an acknowledged append is not in the log"
    );
}
