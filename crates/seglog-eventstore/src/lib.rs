//! enact-core's two event stores over seglog.
//!
//! [`SeglogEventStore`] implements `enact_core::kernel::persistence::EventStore` and its
//! supertrait `StorageBackend` (the traits of the published `enact-core` crate) over
//! [`seglog::Log`]. Events are stored as MessagePack with field names ([`codec`]), one
//! seglog event per enact event, each record tagged with its payload encoding.
//!
//! [`SeglogStreamStore`] implements the runtime's streaming store,
//! `enact_core::streaming::EventStore` (behind `EventLog` and `StorageContext`): a global
//! sequence across all executions, taken from the log's global order ([`streaming`]).
//!
//! With the `tier` feature, `SeglogEventStore::open_from_bucket` opens the store from a
//! log in object storage (restoring it, or continuing this node's local copy) and ships it
//! there in the background (`seglog-tier`, docs/scale-out.md).
//!
//! ```no_run
//! use enact_core::kernel::persistence::{EventStore, ExecutionEventData};
//! use enact_core::kernel::{ExecutionId, TenantId};
//! use seglog_eventstore::SeglogEventStore;
//! use std::sync::Arc;
//!
//! # async fn run() -> anyhow::Result<()> {
//! let store: Arc<dyn EventStore> = Arc::new(SeglogEventStore::open("/var/lib/enact/events").await?);
//! let (exec, tenant) = (ExecutionId::new(), TenantId::from("tenant-a"));
//! let seq = store
//!     .append(&exec, &tenant, ExecutionEventData::ExecutionStarted { parent: None, metadata: None })
//!     .await?; // durable: 1
//! let events = store.load_events(&exec).await?;
//! assert_eq!(events[0].sequence, seq);
//! store.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! ## Calling the stores from plain threads
//!
//! An append's future waits for durability with no help from a runtime: polled by a thread
//! of its own (the root future of a `block_on`, or any future polled outside tokio), it runs
//! the commit round on that thread when nobody else does, as [`seglog::Log`]'s blocking
//! appends do; spawned on a runtime, it hands the round to tokio's blocking pool. Each
//! wake-up then costs what the caller's `block_on` costs to wake: tokio's `Handle::block_on`
//! parks on a mutex and a condition variable where the blocking API parks on one futex. In
//! the 64-thread benchmark (docs/benchmarks.md, "W2 and W3 through the EventStore, measured
//! again") the trait path ran at 0.94× the blocking `Log` appends, with building the
//! `ExecutionEventData` included; a caller that does not need the trait can use `Log`'s
//! blocking appends ([`SeglogEventStore::log`]).

#[cfg(feature = "tier")]
mod bucket;
pub mod codec;
mod deep_json;
mod nesting;
pub mod retention;
pub mod sample;
mod store;
pub mod streaming;

#[cfg(feature = "tier")]
pub use bucket::{BucketOpening, BucketOptions};
pub use store::SeglogEventStore;
pub use streaming::SeglogStreamStore;
