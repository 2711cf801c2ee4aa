//! Review 144: review 143's close gate makes every close that is not the closing thread itself
//! wait for the running close. But the running close's drain waits for the commit round that
//! another thread leads, and that round runs the seal listener on *its* thread (roll.rs,
//! `seal_segment`). A seal listener that closes the log (the case close.rs and design.md
//! "Closing" say fails with `Closed`: "a close from inside the running one (a seal
//! listener...)") then waits for the running close, which waits for the listener's round:
//! both closes hang for good (and the appender's acknowledged-or-not append with them).
//! Before the change the listener's close returned at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{Error, SegmentLog, SegmentOptions};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
fn a_seal_listener_that_closes_on_the_appenders_thread_does_not_hang_the_close() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let filler = [b'f'; 1000];
    for _ in 0..3 {
        log.append(&batch(b"fill", &[&filler[..]])).unwrap();
    }
    // The listener gets a handle of its own (set after; a weak cycle is not needed in a test).
    let handle: Arc<Mutex<Option<SegmentLog<SimFs>>>> = Arc::new(Mutex::new(None));
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (listener_done_tx, listener_done_rx) = mpsc::channel::<Result<(), String>>();
    let entered_tx = Mutex::new(entered_tx);
    let listener_done_tx = Mutex::new(listener_done_tx);
    let in_listener = handle.clone();
    log.set_seal_listener(Box::new(move |_, _| {
        let Some(log) = in_listener.lock().unwrap().clone() else {
            return;
        };
        let _ = entered_tx.lock().unwrap().send(());
        // Wait until another thread's close has begun (submits refused), then close too.
        let began = Instant::now();
        while !matches!(log.write_queued_if_large(), Err(Error::Closed)) {
            if began.elapsed() > Duration::from_secs(10) {
                return;
            }
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(50));
        let r = log.close().map_err(|e| e.to_string());
        let _ = listener_done_tx.lock().unwrap().send(r);
    }));
    *handle.lock().unwrap() = Some(log.clone());

    // The appender leads the round that rolls: the listener runs on its thread.
    let (appended_tx, appended_rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let big = [b'R'; 1500];
            let r = log.append(&batch(b"r-exec", &[&big[..]]));
            let _ = appended_tx.send(r.map(|a| a.lsn).map_err(|e| e.to_string()));
        });
    }
    entered_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the appender's round never sealed");

    // An ordinary close, from another thread, while the appender's round is in the listener.
    let (closed_tx, closed_rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let _ = closed_tx.send(log.close().map_err(|e| e.to_string()));
        });
    }

    let listener_close = listener_done_rx.recv_timeout(Duration::from_secs(15));
    let close = closed_rx.recv_timeout(Duration::from_secs(5));
    let appended = appended_rx.recv_timeout(Duration::from_secs(5));
    eprintln!(
        "close in the seal listener: {listener_close:?}; the other thread's close: {close:?}; \
         the append: {appended:?}"
    );
    // Break the cycle so the handle can go (if anything ever returns).
    handle.lock().unwrap().take();
    assert!(
        listener_close.is_ok(),
        "the seal listener's close never returned: it waits for the running close, which \
         waits for the listener's own commit round (deadlock)"
    );
    assert!(close.is_ok(), "the other thread's close never returned");
    assert!(appended.is_ok(), "the append never returned");
    // The listener's close is refused (it cannot wait for the round it runs in), the other
    // close drains and reports Ok, and the append it drained is acknowledged.
    assert!(
        matches!(&listener_close, Ok(Err(e)) if e.contains("seal listener")),
        "{listener_close:?}"
    );
    assert_eq!(close.unwrap(), Ok(()));
    assert!(appended.unwrap().is_ok());
}

/// The first close, from a seal listener (no other close running): before, its drain waited
/// for the round that was running the listener, for good. It is refused at once now, and the
/// log goes on: the append whose round ran the listener is acknowledged, and a close from an
/// ordinary thread closes the log.
#[test]
fn a_first_close_from_a_seal_listener_is_refused_and_the_log_goes_on() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let filler = [b'f'; 1000];
    for _ in 0..3 {
        log.append(&batch(b"fill", &[&filler[..]])).unwrap();
    }
    let handle: Arc<Mutex<Option<SegmentLog<SimFs>>>> = Arc::new(Mutex::new(None));
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let done_tx = Mutex::new(done_tx);
    let in_listener = handle.clone();
    log.set_seal_listener(Box::new(move |_, _| {
        if let Some(log) = in_listener.lock().unwrap().clone() {
            let r = log.close().map_err(|e| e.to_string());
            let _ = done_tx.lock().unwrap().send(r);
        }
    }));
    *handle.lock().unwrap() = Some(log.clone());
    let (appended_tx, appended_rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let big = [b'R'; 1500];
            let _ = appended_tx.send(log.append(&batch(b"r-exec", &[&big[..]])).is_ok());
        });
    }
    let in_listener = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the seal listener's close never returned");
    assert!(
        matches!(&in_listener, Err(e) if e.contains("seal listener")),
        "{in_listener:?}"
    );
    assert!(appended_rx.recv_timeout(Duration::from_secs(20)).unwrap());
    handle.lock().unwrap().take();
    log.close().unwrap();
    // The directory lock is free again, and the record reads back.
    let (reopened, _) = SegmentLog::open(fs, "/log", opts(), &mut ()).unwrap();
    let found = reopened
        .records()
        .unwrap()
        .filter(|r| {
            r.as_ref()
                .is_ok_and(|r| r.view().execution_id() == b"r-exec")
        })
        .count();
    assert_eq!(found, 1);
}
