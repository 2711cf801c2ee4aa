//! Automatic retention: a thread per writable log that runs compaction's retention policies
//! every `Retention::interval` (raft-engine's `purge_threshold`, Kafka's `retention.ms` /
//! `retention.bytes`, for whole executions).
//!
//! The thread holds the log weakly: it never keeps a dropped log alive, and a log closed or
//! dropped stops it. A pass is an ordinary online compaction (`Log::compact_blocking`), so
//! it has every guarantee of one and takes turns with compactions the application runs.

use crate::compact::PlanSource;
use crate::log::{Log, Shared};
use crate::{CompactOptions, Retention};
use parking_lot::{Condvar, Mutex};
use seglog_compact::{policy, IndexView, Plan};
use seglog_segment::io::FileSystem;
use std::sync::{Arc, Weak};
use std::thread::{JoinHandle, ThreadId};

/// What retention has done since open (in [`crate::Stats::retention`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionStats {
    /// Passes run (including those that found nothing to drop; not those skipped because
    /// another compaction was running).
    pub passes: u64,
    /// Executions dropped.
    pub executions_dropped: u64,
    /// Events dropped.
    pub events_dropped: u64,
    /// Disk space given back, bytes.
    pub bytes_reclaimed: u64,
    /// Passes that failed (the log stays as it was; the next pass tries again).
    pub failures: u64,
    /// The error of the last failed pass.
    pub last_error: Option<String>,
}

/// The retention thread and how to stop it.
pub(crate) struct RetentionWorker {
    stop: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: Mutex<Option<ThreadId>>,
    stats: Mutex<RetentionStats>,
}

impl RetentionWorker {
    /// Starts the thread for the log `shared` (a writable one).
    pub(crate) fn start<F: FileSystem + Clone>(
        shared: &Arc<Shared<F>>,
        retention: Retention,
    ) -> std::io::Result<Arc<Self>> {
        let worker = Arc::new(RetentionWorker {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            thread: Mutex::new(None),
            thread_id: Mutex::new(None),
            stats: Mutex::new(RetentionStats::default()),
        });
        let log: Weak<Shared<F>> = Arc::downgrade(shared);
        let me = worker.clone();
        let handle = std::thread::Builder::new()
            .name("seglog-retention".into())
            .spawn(move || me.run(&log, &retention))?;
        *worker.thread_id.lock() = Some(handle.thread().id());
        *worker.thread.lock() = Some(handle);
        Ok(worker)
    }

    fn run<F: FileSystem + Clone>(&self, log: &Weak<Shared<F>>, retention: &Retention) {
        loop {
            {
                let mut stop = self.stop.lock();
                if !*stop {
                    let _ = self.wake.wait_for(&mut stop, retention.interval);
                }
                if *stop {
                    return;
                }
            }
            let Some(shared) = log.upgrade() else { return };
            let log = Log { shared };
            if log.is_closed() {
                return;
            }
            self.pass(&log, retention);
            // If this was the last handle, the log is dropped here, on this thread: `finish`
            // knows not to wait for itself.
        }
    }

    /// One pass: plan from the index and compact, if there is anything to drop and no other
    /// compaction is running (then the pass is skipped: it never waits for the compaction
    /// lock, which a `close` from that compaction's progress callback would deadlock on).
    /// The plan is made at the compaction's step 1, under the index's write lock: an append
    /// acknowledged before it makes its execution recent, and no append lands in between.
    fn pass<F: FileSystem + Clone>(&self, log: &Log<F>, retention: &Retention) {
        let _span = tracing::info_span!("retention", dir = %log.dir().display()).entered();
        let plan = |view: &IndexView| {
            let mut plan = Plan::default();
            if let Some(age) = retention.max_age {
                plan = plan.and(policy::drop_older_than(view, age));
            }
            if let Some(bytes) = retention.max_log_bytes {
                plan = plan.and(policy::keep_log_under(view, bytes));
            }
            plan
        };
        let outcome = log.compact_if_idle(PlanSource::AtStart(&plan), CompactOptions::default());
        let mut stats = self.stats.lock();
        match outcome {
            Ok(Some(report)) => {
                stats.passes += 1;
                stats.executions_dropped += report.executions_dropped;
                stats.events_dropped += report.events_dropped;
                stats.bytes_reclaimed += report.bytes_reclaimed;
                if report.executions_dropped > 0 {
                    tracing::info!(
                        executions = report.executions_dropped,
                        events = report.events_dropped,
                        bytes_reclaimed = report.bytes_reclaimed,
                        "retention pass dropped executions"
                    );
                }
            }
            Ok(None) => tracing::debug!("retention pass skipped: another compaction is running"),
            // Closed under us: not a failure, the thread stops at its next look.
            Err(crate::Error::Closed) => {}
            Err(e) => {
                stats.passes += 1;
                stats.failures += 1;
                stats.last_error = Some(e.to_string());
                tracing::warn!(error = %e, "retention pass failed");
            }
        }
    }

    pub(crate) fn stats(&self) -> RetentionStats {
        self.stats.lock().clone()
    }

    /// Stops the thread and waits for it (for a pass in progress to end), unless called on
    /// the thread itself (the log dropped by its last handle, held by a pass).
    pub(crate) fn finish(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
        if *self.thread_id.lock() == Some(std::thread::current().id()) {
            return;
        }
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
    }
}
