//! The tier's one error type.
//!
//! `Fenced` is the one every writer must act on: another node owns the log now, and this
//! one must stop appending (see `docs/scale-out.md`, "Ownership").

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while claiming, shipping, restoring or collecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another writer claimed the log after this one: its manifest `manifest_id` carries a
    /// higher epoch. This writer must stop appending; nothing it ships will ever be named.
    #[error("fenced: manifest {manifest_id} belongs to writer epoch {newer_epoch}, this writer has epoch {own_epoch}")]
    Fenced {
        /// This writer's epoch.
        own_epoch: u64,
        /// The epoch of the manifest that fenced it.
        newer_epoch: u64,
        /// The id of that manifest.
        manifest_id: u64,
    },

    /// A claim lost the race: another node wrote the manifest id this claim tried to write,
    /// or the claim's manifest landed at an id a newer manifest already follows (the newest
    /// the claimant listed was pruned before its write: see `Tier::collect_orphans`).
    #[error(
        "claim lost: manifest {manifest_id} was written by another writer (epoch {winner_epoch})"
    )]
    ClaimLost {
        /// The manifest id both claimants tried to write, or the newer one that follows the
        /// claim's.
        manifest_id: u64,
        /// The winner's epoch.
        winner_epoch: u64,
    },

    /// The object store failed an operation on `key`.
    #[error("object store error during {op} on {key}: {source}")]
    Store {
        /// What was being done (`"put"`, `"get"`, `"list"`, `"delete"`).
        op: &'static str,
        /// The object key (or prefix).
        key: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },

    /// An object's contents are not what the writer that named it wrote: a manifest that
    /// does not decode, or a segment whose length, checksum or header differs from its
    /// manifest entry.
    #[error("corrupt object {key}: {reason}")]
    Corruption {
        /// The object key.
        key: String,
        /// What is wrong.
        reason: String,
    },

    /// A manifest of a format version this build does not read.
    #[error("manifest {key} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The manifest's key.
        key: String,
        /// The version found.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// An object already exists under a key the writer meant to create, with other
    /// contents, or the bucket's manifests break the ownership rules.
    #[error("conflict at {key}: {reason}")]
    Conflict {
        /// The object key.
        key: String,
        /// What conflicts.
        reason: String,
    },

    /// The local log does not continue the log the manifest describes (it is another log,
    /// or lost sealed segments the manifest names): a segment the manifest names is neither
    /// a local sealed segment nor replaced by a local compaction, or the log does not reach
    /// the manifest's last LSN. Shipping it would drop shipped data; nothing was committed.
    #[error("the local log diverges from the shipped one: {0}")]
    Diverged(String),

    /// The local directory's log was taken over: the bucket's newest manifest is another
    /// node's claim, made after the claim this directory was last written under
    /// (`TIER_CLAIM`). Continuing it would fence the new owner; nothing was claimed.
    /// Delete the directory and restore, if this node should own the log again.
    #[error(
        "{} was written under claim epoch {own_epoch}, and another node has claimed the log since (epoch {newer_epoch}): delete the directory and restore instead (only if that node is known never to have served the log may removing its TIER_CLAIM let this directory continue)",
        dir.display()
    )]
    TakenOver {
        /// The local directory.
        dir: std::path::PathBuf,
        /// The epoch of the claim this directory was last written under.
        own_epoch: u64,
        /// The epoch of the newest manifest.
        newer_epoch: u64,
    },

    /// No manifest under the prefix: nothing to restore.
    #[error("no manifest under {prefix}: nothing was ever shipped there")]
    NoManifest {
        /// The log's prefix.
        prefix: String,
    },

    /// The restore destination is not an empty directory.
    #[error("restore destination {0} is not empty")]
    DestinationNotEmpty(std::path::PathBuf),

    /// Another restore is writing the destination (it holds its `RESTORE_IN_PROGRESS`
    /// marker). Nothing was done.
    #[error("another restore is writing {0}")]
    RestoreRunning(std::path::PathBuf),

    /// A local file operation failed.
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The fdatasync that makes the active segment's bytes durable before they ship as a
    /// chunk failed. [`Tier::ship`](crate::Tier::ship) poisons the log then: after a failed
    /// fsync, no later one can be trusted to have kept the bytes.
    #[error("fdatasync of {} before shipping a chunk failed: {source}", path.display())]
    SyncFailed {
        /// The active segment's file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The local log failed.
    #[error(transparent)]
    Log(#[from] seglog::Error),

    /// With `Durability::Remote` ([`RemoteDurable`](crate::RemoteDurable)): the append is
    /// durable on the local disk, but the ship round that was to put it in the bucket
    /// failed (`source`), so it is **not acknowledged**. It may or may not be in the bucket
    /// (an ambiguous PUT); it ships with the next round that succeeds.
    #[error("not acknowledged: the append is durable locally but the round that was to put it in the bucket failed: {source}")]
    RemoteUnconfirmed {
        /// The round's error (shared by every append of that round).
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// The [`RemoteDurable`](crate::RemoteDurable) handle was stopped: nothing was appended.
    #[error("remote durability is stopped: nothing was appended")]
    RemoteStopped,

    /// A ship round was deferred `attempts` times in a row (compactions kept replacing the
    /// log's segments under it); the appends waiting on it are not acknowledged.
    #[error(
        "the ship round was deferred {attempts} times in a row (segments kept changing under it)"
    )]
    RoundDeferred {
        /// Rounds tried.
        attempts: usize,
    },

    /// A blocking task could not finish (a panic, a runtime shutting down).
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    /// True for [`Error::Fenced`]: the writer must stop.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Fenced { .. })
    }

    pub(crate) fn store(
        op: &'static str,
        key: &object_store::path::Path,
        source: object_store::Error,
    ) -> Self {
        Error::Store {
            op,
            key: key.to_string(),
            source,
        }
    }

    pub(crate) fn corruption(key: &object_store::path::Path, reason: impl Into<String>) -> Self {
        Error::Corruption {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}
