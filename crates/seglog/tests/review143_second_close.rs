//! Review 143: `Log::close` promises to flush everything appended ("Flushes everything
//! appended, writes pending checkpoints, releases the directory lock"), and for buffered
//! appends it is *the* acknowledgement: they are durable once a `sync`, a durable append or
//! `close` returns. A second `close` that runs while the first is still draining returns
//! Ok at once (`shared.closed.swap` in `Log::close`; the segment layer's `stop_writes` does
//! the same), before the buffered events are on disk. A program that shuts down from two
//! places (a signal handler and its main path) and exits when its own `close` returns loses
//! buffered events that `close` acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::{CrashMode, SimFs};
use seglog::{Log, Options};
use std::time::{Duration, Instant};

#[test]
fn a_second_close_does_not_return_before_buffered_appends_are_durable() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    for i in 0..10u32 {
        log.append_batch_buffered("import", "tenant", &[format!("event {i}").as_bytes()])
            .unwrap();
    }
    // The disk is slow: the first close's drain (one commit round) takes a while.
    fs.set_sync_latency(Duration::from_millis(300));
    let first = {
        let log = log.clone();
        std::thread::spawn(move || log.close())
    };
    let began = Instant::now();
    while !log.is_closed() {
        assert!(began.elapsed() < Duration::from_secs(20));
        std::thread::yield_now();
    }
    let second = log.close();
    // The program exits (power is cut) once its close returned Ok.
    let after = fs.crash(CrashMode::LoseUnsynced);
    fs.set_sync_latency(Duration::ZERO);
    let first = first.join().unwrap();
    let reopened = Log::open_with_fs(after, "/log", Options::default()).unwrap();
    let events = reopened.read("import").unwrap().len();
    reopened.close().unwrap();
    eprintln!("second close: {second:?}; first close: {first:?}; events after the cut: {events}");
    assert!(second.is_ok());
    assert_eq!(
        events, 10,
        "close returned Ok, yet the buffered events it flushes were not on disk"
    );
}
