//! Helpers of the tests of waiting for durability: records to submit, and the wakers the
//! async waits are polled with.

use seglog_segment::format::{EncodedRecord, EventBatch};
use seglog_segment::io::sim::{Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::Arc;
use std::task::Wake;
use std::time::Duration;

/// A log on `fs` at `/log` with 1 MiB segments and records up to 4 KiB.
pub fn open_small_log(fs: &SimFs) -> SegmentLog<SimFs> {
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    };
    SegmentLog::open(fs.clone(), "/log", opts, &mut ())
        .unwrap()
        .0
}

/// A record of one `payload_bytes`-byte event, to `submit`.
pub fn record(log: &SegmentLog<SimFs>, payload_bytes: usize) -> EncodedRecord {
    let payload = vec![7u8; payload_bytes];
    log.encode(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: std::slice::from_ref(&payload),
    })
    .unwrap()
}

/// Waits until `fs` has seen a write more than it had seen when `writes_before` was read:
/// a leader started on another thread is in its round (no sleep: a loaded machine may not
/// have scheduled it yet).
pub fn wait_for_a_write(fs: &SimFs, writes_before: u64) {
    while fs.op_count(Op::Write) == writes_before {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A waker that unparks a thread (a plain `block_on`'s).
pub struct Unpark(pub std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A waker that does nothing (a future that is never polled again).
pub struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// A waker that panics when woken (a bug in some executor or in the caller's own code).
pub struct Panics;

impl Wake for Panics {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics when woken");
    }
}

/// A panic payload whose drop panics (the caller's value, and its `Drop` the caller's code).
pub struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the caller's panic payload panicked when dropped");
    }
}

/// A waker that panics with a [`Bomb`] when woken.
pub struct PanicsWithBomb;

impl Wake for PanicsWithBomb {
    fn wake(self: Arc<Self>) {
        std::panic::panic_any(Bomb);
    }
}

/// Threads that keep appending to a log until dropped (then they are stopped and joined):
/// a busy log, whose leader keeps leading.
pub struct BusyAppenders {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyAppenders {
    /// Starts `threads` appenders on `log`, each submitting records of `payload_bytes` and
    /// waiting for them in a loop.
    pub fn start(log: &SegmentLog<SimFs>, threads: usize, payload_bytes: usize) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let (log, stop) = (log.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let a = log.submit(record(&log, payload_bytes)).unwrap();
                        log.wait_durable(a.lsn).unwrap();
                    }
                })
            })
            .collect();
        BusyAppenders { stop, threads }
    }
}

impl Drop for BusyAppenders {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            // An appender's failure fails the test, unless the test is failing already.
            if let Err(panic) = t.join() {
                if !std::thread::panicking() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
}
