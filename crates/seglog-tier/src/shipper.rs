//! A background shipper: one [`Tier::ship`] round every `interval`, until stopped or fenced,
//! each optionally followed by a local retention pass (read-through), and now and then by an
//! orphan collection ([`Tier::collect_orphans`]: unnamed uploads, and the owner's own old
//! manifests), so that the bucket holds what the log needs and not what it once wrote.
//!
//! Polling the log's segment list (rather than hooking the writer's seal listener) is
//! crash-friendly: whatever was sealed while no shipper ran (before a crash, before a
//! restart) is found by the next round, and a round that failed is simply run again.

use crate::claim::Tier;
use crate::error::{Error, Result};
use crate::read_through::ReadThrough;
use crate::ship::ShipReport;
use std::sync::Arc;
use std::time::Duration;

/// How often a [`Shipper`] collects orphans, and how old an object must be to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrphanCollection {
    /// Time between collections (the first comes one `every` after the start).
    pub every: Duration,
    /// The grace period ([`Tier::collect_orphans`]): well above the longest time between
    /// an upload and its manifest commit.
    pub grace: Duration,
}

impl Default for OrphanCollection {
    /// Every hour, with an hour's grace.
    fn default() -> Self {
        OrphanCollection {
            every: Duration::from_secs(3600),
            grace: Duration::from_secs(3600),
        }
    }
}

/// The running shipper; [`Shipper::stop`] ends it after a last round.
#[derive(Debug)]
pub struct Shipper {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Shipper {
    /// Starts shipping `log` through `tier` every `interval` on the current tokio runtime.
    /// With a tier that ships chunks ([`Tier::with_active_chunks`]), `interval` is the
    /// `ship_interval`: the loss window of the active segment.
    /// A failed round is logged and retried at the next tick; [`Error::Fenced`] ends the
    /// shipper (and has poisoned `log`, see [`Tier::ship`]).
    pub fn spawn(tier: Arc<Tier>, log: seglog::Log, interval: Duration) -> Shipper {
        Self::spawn_with(tier, log, interval, None, None)
    }

    /// [`Shipper::spawn`], and after every round that shipped, the local retention pass of
    /// `read_through` ([`ReadThrough::offload`]): shipped sealed segments beyond its
    /// `keep_local_segments` leave the local disk and are read through the bucket. `log`
    /// must be attached to `read_through` ([`ReadThrough::attach`]). A failed pass is
    /// logged and run again after the next round.
    pub fn spawn_with_retention(
        tier: Arc<Tier>,
        log: seglog::Log,
        interval: Duration,
        read_through: ReadThrough,
    ) -> Shipper {
        Self::spawn_with(tier, log, interval, Some(read_through), None)
    }

    /// [`Shipper::spawn`] with an optional local retention pass after every round that
    /// shipped (as [`Shipper::spawn_with_retention`]) and an optional orphan collection
    /// every `collection.every`, after a round that succeeded. A failed collection is
    /// logged and tried again one period later; [`Error::Fenced`] ends the shipper.
    pub fn spawn_with(
        tier: Arc<Tier>,
        log: seglog::Log,
        interval: Duration,
        retention: Option<ReadThrough>,
        collection: Option<OrphanCollection>,
    ) -> Shipper {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let ended = run(&tier, &log, interval, stopped, retention, collection).await;
            // IMPORTANT: whichever step found the fence (a round, the retention pass, or a
            // collection between two rounds), the log must refuse appends from now on: with
            // the shipper gone, no later round would poison it, and the zombie would go on
            // acknowledging what the new owner never sees (review 32).
            if let Err(e @ Error::Fenced { .. }) = &ended {
                log.poison(&e.to_string());
            }
            ended
        });
        Shipper { stop, task }
    }

    /// Runs a last round and stops.
    ///
    /// # Errors
    /// [`Error::Fenced`] if the shipper was fenced, the last round's error, or
    /// [`Error::Task`] if the task panicked.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.task.await.map_err(|e| Error::Task(e.to_string()))?
    }
}

/// The shipper's loop: a round every `interval` until stopped (a last round) or fenced,
/// each followed by the retention pass and, every `collection.every`, a collection.
async fn run(
    tier: &Tier,
    log: &seglog::Log,
    interval: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    retention: Option<ReadThrough>,
    collection: Option<OrphanCollection>,
) -> Result<()> {
    let mut last_collection = tokio::time::Instant::now();
    loop {
        let done = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = stopped.changed() => true,
        };
        match tier.ship(log).await {
            Ok(report) => log_round(&report),
            Err(e @ Error::Fenced { .. }) => return Err(e),
            Err(e) if done => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "ship round failed; retrying at the next tick");
                continue;
            }
        }
        if done {
            return Ok(());
        }
        if let Some(read_through) = &retention {
            match read_through.offload(tier, log).await {
                Ok(r) if r.segments_offloaded > 0 => tracing::debug!(
                    segments = r.segments_offloaded,
                    bytes = r.bytes_offloaded,
                    "offloaded shipped segments"
                ),
                Ok(_) => {}
                Err(e @ Error::Fenced { .. }) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "local retention pass failed"),
            }
        }
        if let Some(c) = collection.filter(|c| last_collection.elapsed() >= c.every) {
            // Whatever its outcome: a collection that keeps failing (a bucket that
            // refuses DELETE) must not run after every round (review 31).
            last_collection = tokio::time::Instant::now();
            match tier.collect_orphans(c.grace).await {
                Ok(_) => {}
                Err(e @ Error::Fenced { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "orphan collection failed; trying again after the next period")
                }
            }
        }
    }
}

fn log_round(report: &ShipReport) {
    if report.chunks_uploaded > 0 && report.committed_manifest.is_none() {
        tracing::trace!(bytes = report.bytes_uploaded, "shipped a chunk");
    }
    if let Some(id) = report.committed_manifest {
        tracing::debug!(
            manifest = id,
            segments = report.segments_uploaded,
            bytes = report.bytes_uploaded,
            "shipped"
        );
    }
}
