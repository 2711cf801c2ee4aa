//! What `Log::stats()` reports, and the engine's own counters.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> Self {
        LatencySummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// What the last open found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryStats {
    /// Wall time of the open, recovery and index rebuild included.
    pub duration: Duration,
    /// Bytes of segments read record by record.
    pub bytes_scanned: u64,
    /// Records read record by record.
    pub records_scanned: u64,
    /// Sealed segments indexed from their checkpoint.
    pub checkpoints_loaded: usize,
    /// Bytes at the start of the last segment indexed from the checkpoint written when the
    /// log was last closed (format.md §5.1), not read (0 when there was none).
    pub last_segment_prefix_bytes: u64,
    /// Segments read record by record.
    pub segments_scanned: usize,
    /// Bytes cut from a torn tail.
    pub torn_tail_bytes: u64,
    /// Where a torn tail was cut (segment, offset), if one was.
    pub torn_tail: Option<seglog_segment::TailCut>,
    /// Cuts made by a [`seglog_segment::RecoveryMode::Salvage`] open: each damaged
    /// segment's cut point and the bytes it dropped (empty otherwise).
    pub salvaged: Vec<seglog_segment::TailCut>,
    /// Segments a salvage removed because they followed a cut.
    pub salvage_removed: Vec<std::path::PathBuf>,
    /// A last segment whose creation a crash interrupted, removed by the open.
    pub removed_incomplete_segment: Option<std::path::PathBuf>,
    /// Files under segment names with no header and nothing but zeros, where no record of
    /// the log is missing, removed by the open (see
    /// [`seglog_segment::RecoveryReport::removed_empty_files`]).
    pub removed_empty_files: Vec<std::path::PathBuf>,
    /// Such files that a read-only open read past (it removes nothing; the next writer's
    /// open removes them).
    pub empty_files_read_past: Vec<std::path::PathBuf>,
    /// A compaction that a crash interrupted after its commit point, finished by the open.
    pub finished_replacement: bool,
    /// Files of a compaction that a crash interrupted before its commit point, removed.
    pub discarded_replacement_files: usize,
}

/// A snapshot of the log's counters and latency figures since open.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Appends acknowledged (a batch counts once).
    pub appends: u64,
    /// Events acknowledged.
    pub events: u64,
    /// Payload bytes acknowledged.
    pub payload_bytes: u64,
    /// Latency of acknowledged appends, submit to durable.
    pub append_latency: LatencySummary,
    /// Buffered appends submitted ([`crate::Log::append_batch_buffered`]; counted in
    /// neither `appends` nor `append_latency`: nobody waited for them to be durable).
    pub buffered_appends: u64,
    /// Commit rounds (each one write + one fdatasync).
    pub commits: u64,
    /// fdatasync calls for commits.
    pub fsyncs: u64,
    /// Mean fdatasync time, microseconds.
    pub fsync_mean_us: u64,
    /// fdatasync time distribution, microseconds.
    pub fsync_us: seglog_segment::Percentiles,
    /// Records per commit round, distribution.
    pub group_size: seglog_segment::Percentiles,
    /// Longest fdatasync, microseconds.
    pub fsync_max_us: u64,
    /// Records per commit round, on average.
    pub mean_group_size: f64,
    /// Most records in one commit round.
    pub largest_group: u64,
    /// Bytes of records written.
    pub bytes_written: u64,
    /// The last open.
    pub recovery: RecoveryStats,
    /// Bytes the in-memory index holds.
    pub index_memory_bytes: usize,
    /// Executions in the index.
    pub executions: usize,
    /// Tenants in the index.
    pub tenants: usize,
    /// Events in the index.
    pub indexed_events: u64,
    /// Segment files.
    pub segments: usize,
    /// Index checkpoints written since open.
    pub checkpoints_written: u64,
    /// True once a failed write or fsync poisoned the log.
    pub poisoned: bool,
    /// Reads since open that found their records out of the page cache and had the file
    /// system start reading all of them at once (read-ahead hints).
    pub cold_reads: u64,
    /// What automatic retention (`Options::retention`) has done since open.
    pub retention: crate::retention::RetentionStats,
}

/// Latency histograms are sharded by thread: with many appenders one shared histogram's
/// mutex is taken once per append by every thread.
const LATENCY_SHARDS: usize = 8;

/// The shard of the calling thread (threads take shards round-robin as they first append).
fn latency_shard() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SHARD: usize = (NEXT.fetch_add(1, Relaxed) % LATENCY_SHARDS as u64) as usize;
    }
    SHARD.with(|s| *s)
}

/// Counters of the engine (the segment layer keeps its own).
#[derive(Debug)]
pub(crate) struct EngineCounters {
    appends: AtomicU64,
    buffered_appends: AtomicU64,
    events: AtomicU64,
    payload_bytes: AtomicU64,
    cold_reads: AtomicU64,
    /// `None` only if hdrhistogram refused its constant bounds (it does not).
    latency_us: [Mutex<Option<Histogram<u64>>>; LATENCY_SHARDS],
    /// The `metrics` facade's handles, labelled with this log's directory (`log`), made once
    /// at open so that an append does not look them up (or allocate its label).
    #[cfg(feature = "metrics")]
    metrics: MetricHandles,
}

/// The per-append metrics, labelled `log = <directory>`.
#[cfg(feature = "metrics")]
#[derive(Debug)]
struct MetricHandles {
    appends: metrics::Counter,
    events: metrics::Counter,
    payload_bytes: metrics::Counter,
    latency: metrics::Histogram,
}

impl EngineCounters {
    /// Counters of the log whose directory is `log` (its metrics' label).
    pub fn new(log: &std::path::Path) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = log;
        EngineCounters {
            appends: AtomicU64::new(0),
            buffered_appends: AtomicU64::new(0),
            events: AtomicU64::new(0),
            payload_bytes: AtomicU64::new(0),
            cold_reads: AtomicU64::new(0),
            // 3 significant figures from 1 µs to 1 hour.
            latency_us: std::array::from_fn(|_| {
                Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).ok())
            }),
            #[cfg(feature = "metrics")]
            metrics: {
                let label = log.display().to_string();
                MetricHandles {
                    appends: metrics::counter!("seglog_appends_total", "log" => label.clone()),
                    events: metrics::counter!("seglog_events_total", "log" => label.clone()),
                    payload_bytes: metrics::counter!(
                        "seglog_payload_bytes_total",
                        "log" => label.clone()
                    ),
                    latency: metrics::histogram!("seglog_append_latency_seconds", "log" => label),
                }
            },
        }
    }
}

impl EngineCounters {
    pub fn record_append(&self, events: u64, payload_bytes: u64, took: Duration) {
        self.appends.fetch_add(1, Relaxed);
        self.events.fetch_add(events, Relaxed);
        self.payload_bytes.fetch_add(payload_bytes, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        if let Some(h) = self.latency_us[latency_shard()].lock().as_mut() {
            h.saturating_record(us);
        }
        #[cfg(feature = "metrics")]
        {
            self.metrics.appends.increment(1);
            self.metrics.events.increment(events);
            self.metrics.payload_bytes.increment(payload_bytes);
            self.metrics.latency.record(took.as_secs_f64());
        }
    }

    pub fn record_buffered_append(&self) {
        self.buffered_appends.fetch_add(1, Relaxed);
    }

    /// A read hinted its records to the file system, which started reading them.
    pub fn record_cold_read(&self) {
        self.cold_reads.fetch_add(1, Relaxed);
    }

    pub fn fill(&self, s: &mut Stats) {
        s.cold_reads = self.cold_reads.load(Relaxed);
        s.appends = self.appends.load(Relaxed);
        s.buffered_appends = self.buffered_appends.load(Relaxed);
        s.events = self.events.load(Relaxed);
        s.payload_bytes = self.payload_bytes.load(Relaxed);
        let mut merged: Option<Histogram<u64>> = None;
        for shard in &self.latency_us {
            if let Some(h) = shard.lock().as_ref() {
                match merged.as_mut() {
                    // Same bounds in every shard: adding cannot fail.
                    Some(m) => {
                        let _ = m.add(h);
                    }
                    None => merged = Some(h.clone()),
                }
            }
        }
        s.append_latency = merged.as_ref().map(LatencySummary::of).unwrap_or_default();
    }
}
