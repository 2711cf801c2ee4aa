//! A [`SeglogEventStore`] whose log lives in a bucket too (feature `tier`): opened by
//! restoring the log from the bucket (or by continuing the local copy of its owner), then
//! shipped in the background, with the durability the caller chose (docs/scale-out.md).
//!
//! What must hold: the store is returned only once this node owns the log (its claim is the
//! newest manifest) and, when it continues a local directory, once a first ship round has
//! checked that the local log continues the bucket's (else `Diverged`, and nothing of the
//! bucket's is dropped); shutting the store down stops the background work before closing
//! the log, and reports a fence.

use crate::store::SeglogEventStore;
use seglog_tier::object_store::path::Path as ObjectPath;
use seglog_tier::object_store::ObjectStore;
use seglog_tier::{
    Durability, FetchSegments, OrphanCollection, ReadThrough, ReadThroughOptions, RemoteDurable,
    RestoreOptions, Shipper, Tier,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a store opened from a bucket ([`SeglogEventStore::open_from_bucket`]) ships.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BucketOptions {
    /// The local log's options. Default: `seglog::Options::default()`.
    pub log: seglog::Options,
    /// Time between background ship rounds (chunk shipping is on: with
    /// [`Durability::Local`] this is the loss window). Default: 1 s.
    pub ship_interval: Duration,
    /// When an append is acknowledged: once durable on the local disk
    /// ([`Durability::Local`], default) or once in the bucket ([`Durability::Remote`]).
    pub durability: Durability,
    /// How a restore into an empty directory gets the sealed segments. Default:
    /// [`FetchSegments::Lazily`] (their checkpoints only: the store opens in time
    /// proportional to the index, not the data, and old events are read from the bucket).
    pub fetch_segments: FetchSegments,
    /// Local retention: `Some(n)` keeps the newest `n` shipped sealed segments on the
    /// local disk and offloads the older ones after each ship round (their events are then
    /// read from the bucket); `None` (default) keeps every segment the node has locally.
    pub keep_local_segments: Option<usize>,
    /// The block cache and fetch timeout of reads through the bucket (its
    /// `keep_local_segments` is replaced by the field above).
    pub read_through: ReadThroughOptions,
    /// The shipper's orphan collection (unnamed uploads, and this owner's old manifests).
    /// Default: every hour, with an hour's grace; `None`: never (the bucket then keeps
    /// every object a compaction or an erasure replaced, and every manifest).
    pub collect_orphans: Option<OrphanCollection>,
}

impl Default for BucketOptions {
    fn default() -> Self {
        BucketOptions {
            log: seglog::Options::default(),
            ship_interval: Duration::from_secs(1),
            durability: Durability::Local,
            fetch_segments: FetchSegments::Lazily,
            keep_local_segments: None,
            read_through: ReadThroughOptions::default(),
            collect_orphans: Some(OrphanCollection::default()),
        }
    }
}

impl BucketOptions {
    /// Sets the local log's options.
    #[must_use]
    pub fn log_options(mut self, options: seglog::Options) -> Self {
        self.log = options;
        self
    }

    /// Sets the time between background ship rounds.
    #[must_use]
    pub fn ship_interval(mut self, interval: Duration) -> Self {
        self.ship_interval = interval;
        self
    }

    /// Sets when an append is acknowledged.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets how a restore gets the sealed segments.
    #[must_use]
    pub fn fetch_segments(mut self, fetch: FetchSegments) -> Self {
        self.fetch_segments = fetch;
        self
    }

    /// Sets the local retention (`None`: keep every segment locally).
    #[must_use]
    pub fn keep_local_segments(mut self, segments: Option<usize>) -> Self {
        self.keep_local_segments = segments;
        self
    }

    /// Sets the read-through's cache and fetch timeout.
    #[must_use]
    pub fn read_through(mut self, options: ReadThroughOptions) -> Self {
        self.read_through = options;
        self
    }

    /// Sets the shipper's orphan collection (`None`: never).
    #[must_use]
    pub fn collect_orphans(mut self, collection: Option<OrphanCollection>) -> Self {
        self.collect_orphans = collection;
        self
    }

    fn read_through_options(&self) -> ReadThroughOptions {
        self.read_through
            .clone()
            .keep_local_segments(self.keep_local_segments.unwrap_or(0))
    }
}

/// How the log came to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BucketOpening {
    /// The directory was empty: the log was restored from the bucket.
    Restored(seglog_tier::RestoreReport),
    /// The directory held the log: this node continues it (claimed again, checked by a
    /// first ship round).
    Continued,
}

/// The background work of a store opened from a bucket.
#[derive(Debug)]
pub(crate) struct Attached {
    tier: Arc<Tier>,
    shipper: Mutex<Option<Shipper>>,
    pub(crate) remote: Option<RemoteDurable>,
    opening: BucketOpening,
}

impl Attached {
    /// Stops the remote rounds and the shipper (after its last round).
    pub(crate) async fn stop(&self) -> seglog_tier::Result<()> {
        if let Some(remote) = &self.remote {
            remote.stop().await?;
        }
        let shipper = self
            .shipper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match shipper {
            Some(shipper) => shipper.stop().await,
            None => Ok(()),
        }
    }
}

impl SeglogEventStore {
    /// Opens the store from the log in `store` under `prefix`, into the local directory
    /// `dir`, and ships it there in the background (chunk shipping, every
    /// `options.ship_interval`; with [`Durability::Remote`], every append also waits for its
    /// bytes to be in the bucket). Call inside a tokio runtime.
    ///
    /// - `dir` absent, empty, or left by an interrupted restore: **restore** ([`seglog_tier::restore_with`]): claims the log
    ///   (fencing its previous owner) and downloads it: by default only the sealed
    ///   segments' checkpoints ([`BucketOptions::fetch_segments`]), their events then read
    ///   from the bucket. An empty prefix gives an empty log.
    /// - `dir` holds a log: **continue** it, as the owner restarting with its directory.
    ///   The log is claimed again (fencing any other owner) and a first ship round checks
    ///   that it continues the bucket's ([`seglog_tier::Error::Diverged`] otherwise, and the
    ///   store is not opened). Before claiming, the same check runs read-only
    ///   ([`seglog_tier::check_continues`]): a log behind the bucket, or one with segments
    ///   where the bucket names others (a node whose log another took over and continued),
    ///   is refused as `Diverged` without fencing the owner; so is a directory whose log
    ///   another node has claimed since this directory's own last claim, even before that
    ///   owner ships anything ([`seglog_tier::Error::TakenOver`]: the directory records its
    ///   claim in `TIER_CLAIM`). A node whose log another node took over must not reopen its
    ///   old directory: delete it, and restore.
    ///
    /// With [`BucketOptions::keep_local_segments`], each background ship round is followed by
    /// a local retention pass that offloads the older shipped sealed segments.
    ///
    /// # Errors
    /// [`seglog_tier::Error`]: the claim's (`ClaimLost`), the restore's, `Diverged`, `TakenOver`, the
    /// log's open errors, store errors.
    pub async fn open_from_bucket(
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        dir: impl Into<PathBuf>,
        options: BucketOptions,
    ) -> seglog_tier::Result<Self> {
        let dir = dir.into();
        let bucket = store.clone();
        let (tier, log, opening, restored_read_through) = if seglog_tier::holds_a_log(&dir)? {
            let log = seglog::Log::open(&dir, options.log.clone()).await?;
            match continue_log(store, prefix, &log).await {
                Ok(tier) => (tier, log, BucketOpening::Continued, None),
                Err(e) => {
                    let _ = log.close();
                    return Err(e);
                }
            }
        } else {
            let restore_options = RestoreOptions::default()
                .fetch_segments(options.fetch_segments)
                .read_through(options.read_through_options());
            let restored = seglog_tier::restore_with(
                store,
                prefix,
                &dir,
                options.log.clone(),
                restore_options,
            )
            .await?;
            let opening = BucketOpening::Restored(restored.report);
            (restored.tier, restored.log, opening, restored.read_through)
        };
        // A directory holding offloaded segments (a lazy restore's, a read-through pass's)
        // reads them through the bucket; so does one whose retention offloads them.
        let read_through = match restored_read_through {
            Some(read_through) => Some(read_through),
            None if !log.offloaded_segments().is_empty()
                || options.keep_local_segments.is_some() =>
            {
                match ReadThrough::new(bucket, options.read_through_options()) {
                    Ok(read_through) => {
                        read_through.attach(&log);
                        Some(read_through)
                    }
                    Err(e) => {
                        let _ = log.close();
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let (tier, remote) = match options.durability {
            Durability::Remote => {
                let remote = RemoteDurable::spawn(tier, log.clone());
                (remote.tier().clone(), Some(remote))
            }
            _ => (Arc::new(tier.with_active_chunks()), None),
        };
        let retention = read_through.filter(|_| options.keep_local_segments.is_some());
        let shipper = Shipper::spawn_with(
            tier.clone(),
            log.clone(),
            options.ship_interval,
            retention,
            options.collect_orphans,
        );
        let attached = Attached {
            tier,
            shipper: Mutex::new(Some(shipper)),
            remote,
            opening,
        };
        Ok(SeglogEventStore::with_bucket(log, Arc::new(attached)))
    }

    /// The claim of a store opened from a bucket (its manifest, orphan collection, a ship
    /// round now: `tier.ship(store.log())`); `None` for a local store.
    pub fn tier(&self) -> Option<&Arc<Tier>> {
        self.bucket().map(|b| &b.tier)
    }

    /// How a store opened from a bucket came to this node; `None` for a local store.
    pub fn bucket_opening(&self) -> Option<&BucketOpening> {
        self.bucket().map(|b| &b.opening)
    }
}

/// Claims the log for the local copy `log` of its owner, after checking what can be checked
/// without claiming, and runs a first ship round (the divergence check).
async fn continue_log(
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    log: &seglog::Log,
) -> seglog_tier::Result<Tier> {
    // IMPORTANT: before the claim, which would fence whoever owns the log now: a directory
    // behind the bucket, or ahead of it with segments the bucket's owner does not have (a
    // node whose log another took over and continued), is refused unclaimed.
    seglog_tier::check_continues(store.as_ref(), &prefix, log).await?;
    let tier = Tier::claim_for_directory(store, prefix, log.dir())
        .await?
        .with_active_chunks();
    tier.ship(log).await?;
    Ok(tier)
}
