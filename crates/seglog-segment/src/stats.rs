//! Counters of the writer, kept with relaxed atomics so recording them costs next to nothing,
//! and two histograms (fsync time, records per commit) recorded once per commit round.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Percentiles of a distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
}

fn percentiles(h: &Mutex<Option<Histogram<u64>>>) -> Percentiles {
    h.lock()
        .as_ref()
        .map_or_else(Percentiles::default, |h| Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        })
}

fn record(h: &Mutex<Option<Histogram<u64>>>, v: u64) {
    if let Some(h) = h.lock().as_mut() {
        h.saturating_record(v.max(1));
    }
}

#[derive(Debug)]
pub(crate) struct WriterCounters {
    commits: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
    max_sync_nanos: AtomicU64,
    largest_group: AtomicU64,
    poisonings: AtomicU64,
    zeroed_bytes: AtomicU64,
    zero_syncs: AtomicU64,
    prepared_bytes: AtomicU64,
    prepared_rolls: AtomicU64,
    buffered_rounds: AtomicU64,
    buffered_bytes: AtomicU64,
    overlapped_rounds: AtomicU64,
    cache_dropped_bytes: AtomicU64,
    /// fdatasync time in microseconds (`None` only if hdrhistogram refused constant bounds).
    sync_us: Mutex<Option<Histogram<u64>>>,
    /// Records per commit round.
    group_size: Mutex<Option<Histogram<u64>>>,
}

impl Default for WriterCounters {
    fn default() -> Self {
        WriterCounters {
            commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
            max_sync_nanos: AtomicU64::new(0),
            largest_group: AtomicU64::new(0),
            poisonings: AtomicU64::new(0),
            zeroed_bytes: AtomicU64::new(0),
            zero_syncs: AtomicU64::new(0),
            prepared_bytes: AtomicU64::new(0),
            prepared_rolls: AtomicU64::new(0),
            buffered_rounds: AtomicU64::new(0),
            buffered_bytes: AtomicU64::new(0),
            overlapped_rounds: AtomicU64::new(0),
            cache_dropped_bytes: AtomicU64::new(0),
            sync_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 2).ok()),
            group_size: Mutex::new(Histogram::new_with_bounds(1, 1 << 24, 2).ok()),
        }
    }
}

/// A snapshot of the writer's counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// fdatasync time of commits, microseconds.
    pub sync_us: Percentiles,
    /// Records per commit round.
    pub group_size: Percentiles,
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
    /// Bytes written (and synced) as zeros ahead of the tail
    /// ([`crate::SegmentOptions::zero_ahead_bytes`]).
    pub zeroed_bytes: u64,
    /// Steps that wrote and synced those zeros (one `fdatasync` each).
    pub zero_syncs: u64,
    /// Bytes of zeros written (and synced) into the next segment before its roll
    /// ([`crate::SegmentOptions::prepare_next_segment`]).
    pub prepared_bytes: u64,
    /// Segments that were created from a prepared file.
    pub prepared_rolls: u64,
    /// Buffered rounds: queues of buffered appends written without the commit fsync.
    pub buffered_rounds: u64,
    /// Bytes of records those rounds wrote (not in `bytes`, which counts commit rounds).
    pub buffered_bytes: u64,
    /// Commit rounds whose fsync began while the previous round's was still in flight
    /// ([`crate::SegmentOptions::overlap_min_records`]).
    pub overlapped_rounds: u64,
    /// Bytes of sealed segments asked to leave the page cache behind the tail
    /// ([`crate::SegmentOptions::cached_sealed_segments`]; pages a map still holds stay).
    pub cache_dropped_bytes: u64,
}

impl WriterCounters {
    pub fn record_sync(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.syncs.fetch_add(1, Relaxed);
        self.sync_nanos.fetch_add(nanos, Relaxed);
        self.max_sync_nanos.fetch_max(nanos, Relaxed);
        record(&self.sync_us, nanos / 1000);
    }

    pub fn record_commit(&self, records: usize, bytes: u64) {
        self.commits.fetch_add(1, Relaxed);
        self.records.fetch_add(records as u64, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.largest_group.fetch_max(records as u64, Relaxed);
        record(&self.group_size, records as u64);
    }

    pub fn record_buffered_round(&self, bytes: u64) {
        self.buffered_rounds.fetch_add(1, Relaxed);
        self.buffered_bytes.fetch_add(bytes, Relaxed);
    }

    pub fn record_overlapped_round(&self) {
        self.overlapped_rounds.fetch_add(1, Relaxed);
    }

    pub fn record_zeroed(&self, bytes: u64) {
        if bytes > 0 {
            self.zeroed_bytes.fetch_add(bytes, Relaxed);
            self.zero_syncs.fetch_add(1, Relaxed);
        }
    }

    pub fn record_prepared(&self, bytes: u64) {
        self.prepared_bytes.fetch_add(bytes, Relaxed);
    }

    pub fn record_prepared_roll(&self) {
        self.prepared_rolls.fetch_add(1, Relaxed);
    }

    pub fn record_cache_dropped(&self, bytes: u64) {
        self.cache_dropped_bytes.fetch_add(bytes, Relaxed);
    }

    pub fn record_poisoned(&self) {
        self.poisonings.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            sync_us: percentiles(&self.sync_us),
            group_size: percentiles(&self.group_size),
            commits: self.commits.load(Relaxed),
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            sync_nanos_total: self.sync_nanos.load(Relaxed),
            sync_nanos_max: self.max_sync_nanos.load(Relaxed),
            largest_group: self.largest_group.load(Relaxed),
            poisonings: self.poisonings.load(Relaxed),
            zeroed_bytes: self.zeroed_bytes.load(Relaxed),
            zero_syncs: self.zero_syncs.load(Relaxed),
            prepared_bytes: self.prepared_bytes.load(Relaxed),
            prepared_rolls: self.prepared_rolls.load(Relaxed),
            buffered_rounds: self.buffered_rounds.load(Relaxed),
            buffered_bytes: self.buffered_bytes.load(Relaxed),
            overlapped_rounds: self.overlapped_rounds.load(Relaxed),
            cache_dropped_bytes: self.cache_dropped_bytes.load(Relaxed),
        }
    }
}
