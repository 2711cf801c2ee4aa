//! `Durability::Remote`: appends acknowledged only once their bytes are in the bucket
//! (docs/scale-out.md, "Remote durability").
//!
//! [`RemoteDurable`] wraps the owner's log and its claim. An append first goes to the local
//! log as any other (durable on the local disk under the log's `SyncMode`, through the
//! engine's unchanged commit path), then waits for a **ship round** ([`Tier::ship`]'s
//! round, with chunk shipping on) that started after it: that round commits a manifest
//! naming every sealed segment and the active segment, uploads the active segment's durable
//! bytes as a chunk, create-only, and then checks that no node has claimed the log (the
//! next manifest id is free). The append returns `Ok` only when that round returned `Ok`.
//!
//! What must hold:
//! - **coverage**: a waiter is handed to a round only after its local append returned, and
//!   the round lists the log's segments only after it took its waiters from the queue. The
//!   engine publishes a segment's durable end before it wakes the append, so the listing's
//!   durable end of the active segment (what the chunk reaches) is past the waiter's record,
//!   and a segment sealed since is named by the round's manifest;
//! - **remote group commit**: one round at a time; every waiter queued while a round is in
//!   flight shares the next one, which starts as soon as the previous one returns;
//! - **no false acknowledgement**: a round that fails (a PUT, a fence, a failed fdatasync,
//!   a round deferred too often) fails every waiter it took, and no waiter is confirmed by
//!   anything but the round it was handed to. A fence has also poisoned the log
//!   ([`Tier::ship`]), so later appends fail before they are written.

use crate::claim::Tier;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How many times in a row a round may be deferred (a compaction replaced a segment under
/// it) before its waiters are failed with [`Error::RoundDeferred`].
const MAX_DEFERRED_ROUNDS: usize = 8;

/// When an append is acknowledged, as far as the bucket is concerned (the loss window of
/// each mode: docs/scale-out.md, "Loss window").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Acknowledged once durable on the local disk (the log's `SyncMode`); a background
    /// [`Shipper`](crate::Shipper) brings the bucket up to date every ship interval (with
    /// chunk shipping: loss window one interval). Default.
    #[default]
    Local,
    /// Acknowledged only once its bytes are in the bucket ([`RemoteDurable`]): nothing
    /// acknowledged is lost with the node, at the cost of a ship round (the next-manifest
    /// GET and a chunk PUT, or a manifest commit after a seal) per commit.
    Remote,
}

/// What a round tells its waiters.
type RoundOutcome = std::result::Result<(), Arc<Error>>;
type Waiter = oneshot::Sender<RoundOutcome>;

/// Counters of a [`RemoteDurable`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteStats {
    /// Ship rounds run for waiters (a deferred round run again counts once).
    pub rounds: u64,
    /// Rounds that failed (every waiter of them got an error).
    pub failed_rounds: u64,
    /// Waits confirmed (appends acknowledged, and [`RemoteDurable::wait_in_bucket`] calls).
    pub confirmed: u64,
    /// The most waiters one round confirmed or failed.
    pub largest_round: u64,
    /// Waits queued that no round has taken yet.
    pub queued: u64,
}

#[derive(Debug, Default)]
struct Counters {
    rounds: AtomicU64,
    failed_rounds: AtomicU64,
    confirmed: AtomicU64,
    largest_round: AtomicU64,
    queued: AtomicU64,
}

/// The owner's log with `Durability::Remote`: every append returns only once its bytes are
/// in the bucket, where any later restore finds them. Cheap to clone (clones share the log,
/// the claim and the one round in flight).
///
/// The acknowledgement point: the local append returned (durable on the local disk), and
/// then a ship round that listed the log's segments after it returned `Ok`: the newest
/// manifest, committed by this writer, names every segment sealed at the listing and the
/// active segment; a chunk reaching the active segment's durable end at the listing was
/// created in the bucket (`PutMode::Create`, or found there as this writer's own after an
/// ambiguous PUT); and after that, the next manifest id was still free, so no node had
/// claimed the log while the chunk was already there. Every later claim's restore lists
/// that folder and takes the chunk: every acknowledged append is in every later restore.
#[derive(Debug, Clone)]
pub struct RemoteDurable {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: seglog::Log,
    tier: Arc<Tier>,
    /// `None` once stopped.
    queue: Mutex<Option<mpsc::UnboundedSender<Waiter>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl RemoteDurable {
    /// Starts remote durability for `log`, owned through `tier` (turned to chunk shipping,
    /// [`Tier::with_active_chunks`], which remote durability is built on), on the current
    /// tokio runtime (it spawns the task that runs the rounds).
    ///
    /// A [`Shipper`](crate::Shipper) on the same claim ([`RemoteDurable::tier`]) may run too
    /// (rounds are serialized by the claim): it ships checkpoints and learns of a fence
    /// while no append is made.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub fn spawn(tier: Tier, log: seglog::Log) -> RemoteDurable {
        let tier = Arc::new(tier.with_active_chunks());
        let (queue, waiters) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run_rounds(
            tier.clone(),
            log.clone(),
            waiters,
            counters.clone(),
        ));
        RemoteDurable {
            inner: Arc::new(Inner {
                log,
                tier,
                queue: Mutex::new(Some(queue)),
                task: Mutex::new(Some(task)),
                counters,
            }),
        }
    }

    /// The log (reads, subscriptions, statistics). An append made on it directly is durable
    /// locally only, until the next round of this handle or of a shipper.
    pub fn log(&self) -> &seglog::Log {
        &self.inner.log
    }

    /// The claim (for a [`Shipper`](crate::Shipper), orphan collection, the manifest).
    pub fn tier(&self) -> &Arc<Tier> {
        &self.inner.tier
    }

    /// Counters since the start.
    pub fn stats(&self) -> RemoteStats {
        let c = &self.inner.counters;
        RemoteStats {
            rounds: c.rounds.load(Ordering::Relaxed),
            failed_rounds: c.failed_rounds.load(Ordering::Relaxed),
            confirmed: c.confirmed.load(Ordering::Relaxed),
            largest_round: c.largest_round.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
        }
    }

    /// Appends one event (see [`seglog::Log::append`]) and returns its sequence number once
    /// its bytes are in the bucket.
    ///
    /// # Errors
    /// The local append's errors ([`Error::Log`]); then, with the event durable locally but
    /// not acknowledged: [`Error::Fenced`] (another node owns the log; this one is
    /// poisoned), [`Error::RemoteUnconfirmed`] (the round failed: the event may or may not
    /// be in the bucket; it ships with the next round), [`Error::RemoteStopped`],
    /// [`Error::Task`]. As with any failed append, an error does not mean the event is not
    /// stored: only that it was not acknowledged.
    pub async fn append(&self, execution: &str, tenant: &str, payload: &[u8]) -> Result<u64> {
        self.append_encoded(execution, tenant, None, 0, &[payload])
            .await
    }

    /// Appends events atomically (see [`seglog::Log::append_batch`]); returns the first
    /// sequence number once their bytes are in the bucket.
    ///
    /// # Errors
    /// As [`RemoteDurable::append`].
    pub async fn append_batch<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_encoded(execution, tenant, None, 0, payloads)
            .await
    }

    /// The general append (see [`seglog::Log::append_encoded`]); returns the first
    /// sequence number once the bytes are in the bucket.
    ///
    /// # Errors
    /// As [`RemoteDurable::append`].
    pub async fn append_encoded<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<u64> {
        Ok(self
            .append_encoded_at(execution, tenant, expected_last_seq, encoding, payloads)
            .await?
            .first_seq)
    }

    /// As [`RemoteDurable::append_encoded`], returning the record's LSN too.
    ///
    /// # Errors
    /// As [`RemoteDurable::append`].
    pub async fn append_encoded_at<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<seglog::AppendReceipt> {
        // Refuse before writing anything once stopped: an append that could never be
        // acknowledged should not be stored either.
        let queue = self.queue()?;
        let receipt = self
            .inner
            .log
            .append_encoded_at(execution, tenant, expected_last_seq, encoding, payloads)
            .await?;
        self.wait_on(&queue).await?;
        Ok(receipt)
    }

    /// Returns once every append to the log that returned before this call (through this
    /// handle or on the log directly) is in the bucket: the remote counterpart of a sync.
    ///
    /// # Errors
    /// As [`RemoteDurable::append`], but for the local append's.
    pub async fn wait_in_bucket(&self) -> Result<()> {
        let queue = self.queue()?;
        self.wait_on(&queue).await
    }

    /// Stops the handle: waits for the round in flight and the ones queued, then ends the
    /// task. Later appends through any clone fail with [`Error::RemoteStopped`] before
    /// writing anything. The log stays open (close it after).
    ///
    /// # Errors
    /// [`Error::Task`] if the task panicked.
    pub async fn stop(&self) -> Result<()> {
        let queue = self.lock_queue().take();
        drop(queue);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match task {
            Some(task) => task.await.map_err(|e| Error::Task(e.to_string())),
            None => Ok(()),
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Option<mpsc::UnboundedSender<Waiter>>> {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn queue(&self) -> Result<mpsc::UnboundedSender<Waiter>> {
        self.lock_queue().clone().ok_or(Error::RemoteStopped)
    }

    async fn wait_on(&self, queue: &mpsc::UnboundedSender<Waiter>) -> Result<()> {
        let (waiter, outcome) = oneshot::channel();
        // IMPORTANT: queued only after the append returned (the caller's order): the round
        // that takes this waiter lists the segments after it, so its chunk covers the append.
        // Counted before it can be taken, so the count never lags the queue.
        let queued = &self.inner.counters.queued;
        queued.fetch_add(1, Ordering::Relaxed);
        if queue.send(waiter).is_err() {
            queued.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::RemoteStopped);
        }
        // IMPORTANT: shielded. The send runs this waiter's waker on the rounds task: a panic
        // in the caller's waker there would end the task (every later append would fail
        // `RemoteStopped`) and skip the waiters after it.
        match seglog_segment::shielded(outcome, "a remote durability waiter's").await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(match *e {
                Error::Fenced {
                    own_epoch,
                    newer_epoch,
                    manifest_id,
                } => Error::Fenced {
                    own_epoch,
                    newer_epoch,
                    manifest_id,
                },
                _ => Error::RemoteUnconfirmed { source: e },
            }),
            Err(_) => Err(Error::Task(
                "the remote durability task ended with the append unconfirmed".into(),
            )),
        }
    }
}

/// The rounds: take every waiter queued, run one ship round, tell each the outcome; again
/// as soon as a waiter is queued. Ends when every sender is gone (stopped or dropped).
async fn run_rounds(
    tier: Arc<Tier>,
    log: seglog::Log,
    mut queue: mpsc::UnboundedReceiver<Waiter>,
    counters: Arc<Counters>,
) {
    while let Some(first) = queue.recv().await {
        let mut waiters = vec![first];
        while let Ok(more) = queue.try_recv() {
            waiters.push(more);
        }
        // Each was counted before it was sent (`wait_on`): the count never goes below zero.
        counters
            .queued
            .fetch_sub(waiters.len() as u64, Ordering::Relaxed);
        // Waiters whose append was dropped (cancelled) need no round.
        waiters.retain(|w| !w.is_closed());
        if waiters.is_empty() {
            continue;
        }
        // IMPORTANT: the round starts (and lists the log's segments) after every waiter
        // above was queued, each after its append returned: see the module's "coverage".
        let outcome = ship_through(&tier, &log).await.map_err(Arc::new);
        counters.rounds.fetch_add(1, Ordering::Relaxed);
        counters
            .largest_round
            .fetch_max(waiters.len() as u64, Ordering::Relaxed);
        match &outcome {
            Ok(()) => {
                counters
                    .confirmed
                    .fetch_add(waiters.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                counters.failed_rounds.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, waiters = waiters.len(), "remote durability round failed; its appends are not acknowledged");
            }
        }
        for waiter in waiters {
            let _ = waiter.send(outcome.clone());
        }
    }
}

/// One ship round that is not deferred (run again while a compaction changes the segments
/// under it, up to [`MAX_DEFERRED_ROUNDS`] times).
async fn ship_through(tier: &Tier, log: &seglog::Log) -> Result<()> {
    for _ in 0..MAX_DEFERRED_ROUNDS {
        let report = tier.ship_acknowledging(log).await?;
        if !report.deferred {
            return Ok(());
        }
    }
    Err(Error::RoundDeferred {
        attempts: MAX_DEFERRED_ROUNDS,
    })
}
