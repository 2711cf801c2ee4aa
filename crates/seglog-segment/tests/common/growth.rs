//! Checks made while appenders run: what readers see only grows, and an append is durable
//! when it is acknowledged.

use seglog_segment::io::sim::SimFs;
use seglog_segment::SegmentLog;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A thread that checks, until [`GrowthWatcher::finish`], that the durable watermark never
/// moves back and no segment's readable end shrinks.
pub struct GrowthWatcher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl GrowthWatcher {
    pub fn start(log: &Arc<SegmentLog<SimFs>>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut last = 0;
            let mut ends = std::collections::BTreeMap::new();
            while !stopped.load(Ordering::Relaxed) {
                let now = log.durable_lsn();
                assert!(
                    now >= last,
                    "the durable watermark moved back: {last} -> {now}"
                );
                last = now;
                for s in log.segments() {
                    let seen = ends.entry(s.number).or_insert(0);
                    assert!(
                        s.data_end >= *seen,
                        "segment {} shrank for readers: {} -> {}",
                        s.number,
                        *seen,
                        s.data_end
                    );
                    *seen = s.data_end;
                }
                std::thread::yield_now();
            }
        });
        GrowthWatcher { stop, thread }
    }

    /// Stops the watcher; panics with its finding if it had one.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

/// Runs `appends` appends through `append(i)`, checking that each acknowledged one is durable
/// when acknowledged; returns the acknowledged LSNs and how many failed.
pub fn append_checked(
    log: &SegmentLog<SimFs>,
    appends: u64,
    mut append: impl FnMut(u64) -> seglog_segment::Result<u64>,
) -> (Vec<u64>, u64) {
    let mut acked = Vec::new();
    let mut failed = 0;
    for i in 0..appends {
        match append(i) {
            Ok(lsn) => {
                assert!(log.durable_lsn() >= lsn, "acknowledged before durable");
                acked.push(lsn);
            }
            Err(_) => failed += 1,
        }
    }
    (acked, failed)
}
