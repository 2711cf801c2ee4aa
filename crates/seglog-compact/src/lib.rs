//! seglog's compaction: how users reclaim space and erase data in an append-only log.
//!
//! Compaction comes in two halves, kept apart so that the decisions can be tested without
//! any I/O:
//! - a **policy** is a pure function from an [`IndexView`] (what the index knows of every
//!   execution and segment) to a [`Plan`]: which executions to drop and which sealed
//!   segments to rewrite ([`policy`]);
//! - the **rewrite** ([`rewrite_runs`]) copies the surviving records of sealed segments into
//!   new segment files, which the segment layer then swaps in crash-atomically
//!   (`SegmentLog::replace_segments`, docs/format.md §6).
//!
//! `seglog::Log::compact` joins the two on a live log; the `seglog compact` command runs it
//! on a closed one.
//!
//! ```
//! use seglog_compact::{policy, ExecutionSummary, IndexView, Plan};
//!
//! let view = IndexView {
//!     now_unix_nanos: 10_000,
//!     executions: vec![ExecutionSummary {
//!         id: "run-1".into(),
//!         tenant: "acme".into(),
//!         events: 3,
//!         durable_events: 3,
//!         created_lsn: 1,
//!         last_timestamp_unix_nanos: 5_000,
//!         segments: vec![1],
//!         bytes: 300,
//!         last_event: None,
//!     }],
//!     segments: vec![],
//! };
//! let plan: Plan = policy::drop_tenant(&view, "acme");
//! assert!(plan.drop_executions.contains("run-1"));
//! ```

mod error;
mod plan;
pub mod policy;
mod rewrite;
mod view;

pub use error::{Error, Result};
pub use plan::{Incarnation, Plan};
pub use rewrite::{group_into_runs, rewrite_runs, Moves, RewriteStats, Rewritten};
pub use view::{ExecutionSummary, IndexView, LastEvent, SegmentSummary};
