//! seglog: an embedded, segmented write-ahead log for per-execution event streams.
//!
//! [`Log`] joins the group-commit segment writer (`seglog-segment`) and the in-memory
//! per-execution index (`seglog-index`): appends get dense per-execution sequence numbers
//! and return once durable; reads go straight to the records through the index; opening a
//! log loads index checkpoints and scans only what follows them. Payloads are bytes: seglog
//! never looks inside them.
//!
//! Every record also has a global position (its LSN): [`Log::read_global`] and
//! [`Log::subscribe_global`] read all executions in log order from a position.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> seglog::Result<()> {
//! # let dir = tempfile::tempdir().map_err(|e| seglog::Error::InvalidOptions(e.to_string()))?;
//! let log = seglog::Log::open(dir.path(), seglog::Options::default()).await?;
//! log.append("exec-1", "tenant-a", b"hello").await?;
//! assert_eq!(log.latest_seq("exec-1")?, Some(1));
//! assert_eq!(log.list_executions("tenant-a", 10, 0)?, vec!["exec-1".to_string()]);
//! # Ok(())
//! # }
//! ```
//!
//! # Cargo features
//!
//! - `metrics`: publish the figures of [`Log::stats`] through the `metrics` facade as well:
//!   counters `seglog_appends_total`, `seglog_events_total`, `seglog_payload_bytes_total`,
//!   the histogram `seglog_append_latency_seconds` (per append), and gauges
//!   `seglog_index_memory_bytes`, `seglog_segments`, `seglog_fsync_mean_seconds`,
//!   `seglog_commit_group_mean`, `seglog_recovery_seconds` (each time `stats` is called).
//!   Every one is labelled `log` = the log's directory, so several logs in one process
//!   keep their figures apart.
//! - `serde`: [`Options`] (with [`Retention`] and the mode enums) as serde types, for
//!   configuration files; sizes as bytes or readable strings (`"128 MiB"`), durations as
//!   humantime strings (`"30days"`).
//! - `sim`: the crash-simulating file system of `seglog-segment` ([`io`]), for tests of
//!   crates built on seglog.
//!
//! # Tracing
//!
//! Spans `open` (recovery and the index rebuild), `compaction` and `retention` (each
//! automatic pass), with the log's directory; an `error` event when a failed write or fsync
//! poisons the log.

mod append;
mod backup;
mod buffered;
mod checkpointer;
mod compact;
mod error;
mod event_reader;
mod global;
mod log;
mod offload;
mod offloaded;
mod options;
mod policy_view;
mod read;
mod read_ahead;
mod read_only;
#[cfg(feature = "serde")]
mod readable_size;
mod repair;
mod retention;
mod roll;
mod scrub;
mod stats;
mod subscribe;
mod verify;
mod watchers;

pub use backup::BackupReport;
pub use compact::{CompactOptions, CompactionReport};
pub use error::{Error, Result};
pub use event_reader::EventReader;
pub use global::{AppendReceipt, LogRecord};
pub use log::Log;
pub use offloaded::{
    offloaded_segments_in, write_offload_stub, OffloadTarget, OffloadedSegment, SegmentSource,
    SourceError,
};
pub use options::{CheckpointMode, Options, Retention};
pub use read::Event;
pub use repair::{
    mend_log_id, mend_log_id_with_fs, plan_salvage, repair_dir, repair_dir_with_fs,
    DamagedCheckpoint, KeptSegment, RemovedSegment, RepairReport, SalvagePlan, SegmentCut,
};
pub use retention::RetentionStats;
pub use scrub::{ScrubReport, ScrubbedSegment};
// Types of the layers below that appear in this crate's signatures: nameable from here.
pub use seglog_compact::Error as CompactError;
pub use seglog_index::Error as IndexError;
pub use seglog_segment::{
    Error as SegmentError, Percentiles, PoisonCause, RecoveryMode, SegmentInfo, SyncMode, TailCut,
};
pub use stats::{LatencySummary, RecoveryStats, Stats};
pub use subscribe::Subscription;
pub use verify::{
    judge_leftover, tail_may_be_torn, verify_dir, verify_dir_with_fs, CheckpointCheck, Damage,
    Health, Leftover, VerifiedSegment, VerifyReport,
};

/// Compaction plans and the policies that make them (from `seglog-compact`); carry a plan
/// out with [`Log::compact`].
pub mod compaction {
    pub use seglog_compact::{
        policy, ExecutionSummary, Incarnation, IndexView, LastEvent, Plan, RewriteStats,
        SegmentSummary,
    };
}

/// The file-system abstraction, for opening a log on something other than real files.
pub mod io {
    pub use seglog_segment::io::*;
}

/// The README's Rust examples, compiled (and run, where not `no_run`) as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
