//! Counters of the writer, kept with relaxed atomics so recording them costs next to nothing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    commits: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
    max_sync_nanos: AtomicU64,
    largest_group: AtomicU64,
    poisonings: AtomicU64,
}

/// A snapshot of the writer's counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Commit rounds that wrote something.
    pub commits: u64,
    /// Records written.
    pub records: u64,
    /// Bytes of records written.
    pub bytes: u64,
    /// `fdatasync` calls for commits.
    pub syncs: u64,
    /// Total time spent in those calls, nanoseconds.
    pub sync_nanos_total: u64,
    /// Longest of those calls, nanoseconds.
    pub sync_nanos_max: u64,
    /// Most records written in one commit round.
    pub largest_group: u64,
    /// Times the writer was poisoned (0 or 1).
    pub poisonings: u64,
}

impl WriterCounters {
    pub fn record_sync(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.syncs.fetch_add(1, Relaxed);
        self.sync_nanos.fetch_add(nanos, Relaxed);
        self.max_sync_nanos.fetch_max(nanos, Relaxed);
    }

    pub fn record_commit(&self, records: usize, bytes: u64, _took: Duration) {
        self.commits.fetch_add(1, Relaxed);
        self.records.fetch_add(records as u64, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.largest_group.fetch_max(records as u64, Relaxed);
    }

    pub fn record_poisoned(&self) {
        self.poisonings.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            commits: self.commits.load(Relaxed),
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            sync_nanos_total: self.sync_nanos.load(Relaxed),
            sync_nanos_max: self.max_sync_nanos.load(Relaxed),
            largest_group: self.largest_group.load(Relaxed),
            poisonings: self.poisonings.load(Relaxed),
        }
    }
}
