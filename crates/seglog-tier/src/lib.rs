//! seglog-tier: a seglog log on object storage (S3 and compatible, through the
//! `object_store` crate). The owner of a log ships its sealed segments to the bucket (and,
//! with [`Tier::with_active_chunks`], its active segment's durable bytes as chunks); any
//! other node can claim the log, which fences the previous owner, and restore it.
//!
//! The bucket's conditional writes (`PutMode::Create`, If-None-Match) are the only
//! authority on who owns a log: see `docs/scale-out.md` for the design, the manifest format
//! and the loss window (everything not yet in a shipped sealed segment is lost with the
//! node; with chunk shipping, everything appended since the last chunk; with
//! `Durability::Remote`, [`RemoteDurable`], whose appends return once their bytes are in
//! the bucket, nothing acknowledged).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
//! let prefix = object_store::path::Path::from("logs/partition-7");
//! let dir = tempfile::tempdir()?;
//! let mut options = seglog::Options::default();
//! options.segment_size_bytes = 64 * 1024;
//! let log = seglog::Log::open(dir.path().join("a"), options.clone()).await?;
//! let tier = seglog_tier::Tier::claim(store.clone(), prefix.clone()).await?;
//! log.append("exec-1", "tenant-a", b"hello").await?;
//! log.roll().await?; // normally segments seal as they fill
//! tier.ship(&log).await?;
//! // Node A is lost; node B takes over.
//! let restored = seglog_tier::restore(store, prefix, dir.path().join("b"), options).await?;
//! assert_eq!(restored.log.read("exec-1")?.len(), 1);
//! // A's next ship fails with `Error::Fenced`, and poisons A's log.
//! assert!(tier.ship(&log).await.is_err_and(|e| e.is_fenced()));
//! assert!(log.append("exec-1", "tenant-a", b"late").await.is_err());
//! # Ok(())
//! # }
//! ```

mod active;
mod chunk;
mod claim;
mod claim_record;
mod divergence;
mod error;
mod fetch_ahead;
mod keys;
mod manifest;
mod objects;
mod orphans;
mod read_through;
mod remote;
mod restore;
mod ship;
mod shipper;
mod staging;

pub use active::fetch_active_segment;
pub use claim::Tier;
pub use claim_record::CLAIM_RECORD_FILE_NAME;
pub use error::{Error, Result};
pub use fetch_ahead::FetchAheadLimits;
pub use keys::{checkpoint_key, chunk_folder, chunk_key, manifest_key, segment_key};
pub use manifest::{
    ActiveSegment, Manifest, ObjectRef, SegmentEntry, FORMAT_VERSION, FORMAT_VERSION_SEALED_ONLY,
    MAX_MANIFEST_BYTES, MAX_OBJECT_BYTES,
};
/// The `object_store` crate this one is built on (its store types, paths, and builders).
pub use object_store;
pub use objects::latest_manifest;
pub use orphans::OrphanReport;
pub use read_through::{
    BucketSource, OffloadReport, ReadThrough, ReadThroughOptions, ReadThroughStats,
};
pub use remote::{Durability, RemoteDurable, RemoteStats};
pub use restore::{
    fetch_object, fetch_segment, read_newest, restore, restore_with, FetchSegments, RestoreOptions,
    RestoreReport, Restored,
};
/// The file a restore keeps in its directory until its last step (every open refuses such
/// a directory; a restore into it clears it): docs/format.md §1.
pub use seglog_segment::format::RESTORE_MARKER_FILE_NAME;
pub use ship::{check_continues, ShipReport};
pub use shipper::{OrphanCollection, Shipper};
pub use staging::holds_a_log;
