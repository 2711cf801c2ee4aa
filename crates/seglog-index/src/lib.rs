//! seglog's per-execution offset index.
//!
//! [`ExecutionIndex`] maps each execution to its tenant, its place in creation order and the
//! location of every event; it is rebuilt when a log opens by [`IndexRebuilder`], which the
//! segment layer's recovery drives. Sealed segments get a [`checkpoint`] file so that the
//! rebuild reads a few bytes per record instead of every payload.
//!
//! ```
//! use seglog_index::{ExecutionIndex, IndexedRecord, Location};
//!
//! let mut index = ExecutionIndex::new();
//! let slot = index.insert(&IndexedRecord {
//!     execution: "exec-1",
//!     tenant: "tenant-a",
//!     lsn: 1,
//!     location: Location { segment: 1, offset: 64 },
//!     first_seq: 1,
//!     event_count: 2,
//!     timestamp_unix_nanos: 0,
//! })?;
//! index.publish(slot, 2);
//! assert_eq!(index.events("exec-1", 1, 10).len(), 2);
//! # Ok::<(), seglog_index::Error>(())
//! ```

pub mod checkpoint;
mod error;
mod memory;
mod rebuild;

pub use error::{Error, Result};
pub use memory::{
    AppendPlan, EventLocation, Execution, ExecutionIndex, ExecutionSlot, IndexedRecord, Location,
    Visibility,
};
pub use rebuild::{IndexRebuilder, RebuildStats};
