//! seglog's bottom layer: the on-disk record format, segment files, the append-only writer
//! with group commit and fsync-on-commit, readers, and torn-tail recovery.
//!
//! The format is specified byte by byte in `docs/format.md` and mirrored by [`mod@format`].
//! All file I/O goes through [`io::FileSystem`]; tests use the crash-simulating
//! `io::sim::SimFs` (feature `sim`).
//!
//! ```
//! use seglog_segment::{format::EventBatch, io::StdFs, SegmentLog, SegmentOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let (log, _report) = SegmentLog::open(StdFs, dir.path(), SegmentOptions::default(), &mut ())?;
//! let appended = log.append(&EventBatch {
//!     encoding: 0,
//!     execution_id: b"exec-1",
//!     tenant_id: b"tenant-a",
//!     first_seq: 1,
//!     timestamp_unix_nanos: 0,
//!     payloads: &[b"hello"],
//! })?;
//! // `append` returned: the record is on stable storage.
//! let record = log.read(appended.position)?;
//! assert_eq!(record.event(0).as_deref(), Some(&b"hello"[..]));
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! - `sim`: the crash-simulating in-memory file system and fault injection (`io::sim`),
//!   for tests of this crate and the crates above it. Never used by the engine itself.
//! - `serde`: Serialize/Deserialize for [`SyncMode`] and [`RecoveryMode`] (configuration
//!   files).
//!
//! Two test-only switches are `--cfg` flags, not features, so that feature unification can
//! never turn them on in a production build: `seglog_loom` (the commit path's primitives
//! from loom, for `tests/loom_group_commit.rs`) and `seglog_teeth` (switches that remove one
//! sync point at a time, for `tests/teeth.rs`).

mod builder;
mod caller_waker;
mod close_gate;
mod departing;
mod dir_guard;
mod durable_queue;
mod error;
pub mod format;
pub mod inspect;
pub mod io;
pub mod log_id;
mod options;
mod read_view;
mod recovery;
mod replacement;
mod scan;
mod segment;
mod snapshot;
mod stats;
mod sync;
mod tail_bound;
#[cfg_attr(not(seglog_teeth), allow(dead_code))]
pub mod teeth;
mod writer;
mod zeros;

pub use builder::{BuiltSegment, SegmentBuilder};
pub use caller_waker::{
    inside_callback, shielded, CallerWaker, DurableWatch, Shield, ShieldedWaker,
};
pub use close_gate::{CloseGate, CloseTurn, FirstClose};
pub use departing::lock_log_dir;
pub use dir_guard::DirGuard;
pub use durable_queue::DurableQueue;
pub use error::{Error, PoisonCause, Result};
pub use options::{
    RecoveryMode, SegmentOptions, SyncMode, DEFAULT_BUFFERED_WRITE_BYTES,
    DEFAULT_CACHED_SEALED_SEGMENTS, DEFAULT_OVERLAP_MIN_RECORDS,
};
pub use recovery::{RecoveryReport, TailCut};
pub use scan::{PrefixClaim, RecoveryVisitor};
pub use segment::{Record, RecordPosition, SegmentInfo, SegmentRecords};
pub use stats::{Percentiles, WriterStats};
pub use writer::{
    absolute_dir, copy_prefix, create_dir_durably, link_or_copy, prepare_destination, Appended,
    CheckedView, OrderedQueue, ReloadedView, Replacement, SealListener, SegmentBackup, SegmentLog,
};
