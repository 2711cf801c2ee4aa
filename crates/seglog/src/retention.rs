//! Automatic retention: a thread per writable log that runs compaction's retention policies
//! every `Retention::interval` (raft-engine's `purge_threshold`, Kafka's `retention.ms` /
//! `retention.bytes`, for whole executions).
//!
//! The thread holds the log weakly: it never keeps a dropped log alive, and a log closed or
//! dropped stops it. A pass is an ordinary online compaction (`Log::compact_blocking`), so
//! it has every guarantee of one and takes turns with compactions the application runs.

use crate::log::{Log, Shared};
use crate::{CompactOptions, Retention};
use parking_lot::{Condvar, Mutex};
use seglog_compact::{policy, Plan};
use seglog_segment::io::FileSystem;
use std::sync::{Arc, Weak};
use std::thread::{JoinHandle, ThreadId};

/// What retention has done since open (in [`crate::Stats::retention`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionStats {
    /// Passes run (including those that found nothing to drop).
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

    /// One pass: plan from the index, compact if there is anything to drop.
    fn pass<F: FileSystem + Clone>(&self, log: &Log<F>, retention: &Retention) {
        let _span = tracing::info_span!("retention", dir = %log.dir().display()).entered();
        let outcome = log.compaction_view(false).and_then(|view| {
            let mut plan = Plan::default();
            if let Some(age) = retention.max_age {
                plan = plan.and(policy::drop_older_than(&view, age));
            }
            if let Some(bytes) = retention.max_log_bytes {
                plan = plan.and(policy::keep_log_under(&view, bytes));
            }
            if plan.is_empty() {
                return Ok(None);
            }
            log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
                .map(Some)
        });
        let mut stats = self.stats.lock();
        stats.passes += 1;
        match outcome {
            Ok(Some(report)) => {
                stats.executions_dropped += report.executions_dropped;
                stats.events_dropped += report.events_dropped;
                stats.bytes_reclaimed += report.bytes_reclaimed;
                tracing::info!(
                    executions = report.executions_dropped,
                    events = report.events_dropped,
                    bytes_reclaimed = report.bytes_reclaimed,
                    "retention pass dropped executions"
                );
            }
            Ok(None) => tracing::debug!("retention pass: nothing to drop"),
            // Closed under us: not a failure, the thread stops at its next look.
            Err(crate::Error::Closed) => {}
            Err(e) => {
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
