//! Appends: sequence numbers are assigned and the record submitted under the index lock (so
//! sequence order is log order) — inside the segment layer's commit lock when the index lock
//! is free, so that appenders queue on one lock — the wait for durability happens outside
//! every lock, and the events become visible to readers only once durable.

use crate::log::{Log, PendingVisibility};
use crate::{Error, Result};
use seglog_index::{IndexedRecord, Location};
use seglog_segment::format::{EventBatch, MAX_ID_LEN};
use seglog_segment::io::FileSystem;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What an append asks for, before it is numbered.
#[derive(Clone, Copy)]
struct PlannedAppend<'a> {
    execution: &'a str,
    tenant: &'a str,
    /// For an append that joins its execution's tenant: the tenant of a new execution.
    /// `tenant` must then be the one the index holds (this one, if none), checked under the
    /// index lock.
    tenant_if_new: Option<&'a str>,
    expected_last_seq: Option<u64>,
    events: u64,
}

/// A submitted append, not yet durable.
pub(crate) struct Submitted {
    lsn: u64,
    visibility: seglog_index::Visibility,
    first_seq: u64,
    last_seq: u64,
    events: u64,
    payload_bytes: u64,
    started: Instant,
}

impl Submitted {
    /// The batch's first sequence number.
    pub(crate) fn first_seq(&self) -> u64 {
        self.first_seq
    }
}

/// The wall clock, nanoseconds since the Unix epoch (0 before it, saturating far after).
pub(crate) fn now_unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn check_id(id: &str, what: &'static str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::InvalidId { what });
    }
    Ok(())
}

/// Registers an append whose caller stopped waiting for it.
struct AbandonGuard<'a, F: FileSystem> {
    log: &'a Log<F>,
    execution: &'a str,
    submitted: Option<&'a Submitted>,
}

impl<F: FileSystem> Drop for AbandonGuard<'_, F> {
    fn drop(&mut self) {
        if let Some(s) = self.submitted.take() {
            self.log.publish_when_durable(s, self.execution);
        }
    }
}

impl<F: FileSystem> Log<F> {
    /// Checks, numbers and queues an append; writes nothing if it fails.
    pub(crate) fn submit_append<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<Submitted> {
        self.submit_planned(
            execution,
            tenant,
            None,
            expected_last_seq,
            encoding,
            payloads,
        )
    }

    /// [`Self::submit_append`], and for a joining append (`tenant_if_new`) the check that
    /// `tenant` is the one the execution has (or `tenant_if_new`, when there is none).
    fn submit_planned<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        tenant_if_new: Option<&str>,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<Submitted> {
        self.check_open()?;
        let started = Instant::now();
        check_id(execution, "execution")?;
        check_id(tenant, "tenant")?;
        if payloads.is_empty() {
            return Err(Error::EmptyBatch);
        }
        // Lay out and checksum the payload before taking any lock.
        let record = self.shared.segments.encode(&EventBatch {
            encoding,
            execution_id: execution.as_bytes(),
            tenant_id: tenant.as_bytes(),
            first_seq: 0,
            timestamp_unix_nanos: 0,
            payloads,
        })?;
        let events = payloads.len() as u64;
        let payload_bytes = payloads.iter().map(|p| p.as_ref().len() as u64).sum();
        let append = PlannedAppend {
            execution,
            tenant,
            tenant_if_new,
            expected_last_seq,
            events,
        };
        // Fast path: number and queue inside the commit lock's own section, so appenders
        // queue on one lock, not on the index lock and then the commit lock. The index lock
        // is only *tried* there (never waited for under the commit lock: compaction holds
        // it while calling into the segment layer); when it is busy, the ordinary order.
        let mut record = Some(record);
        let fast = self.shared.segments.submit_in_order(|queue| {
            let mut index = self.shared.index.try_write()?;
            let record = record.take()?;
            Some(self.number_and_queue(&mut index, &append, record, |r| queue.submit(r)))
        })?;
        let (lsn, first_seq, visibility) = match (fast, record) {
            (Some(numbered), _) => numbered?,
            (None, Some(record)) => {
                let mut index = self.shared.index.write();
                self.number_and_queue(&mut index, &append, record, |r| {
                    self.shared.segments.submit(r)
                })?
            }
            (None, None) => {
                return Err(Error::Index(seglog_index::Error::Inconsistent {
                    lsn: 0,
                    reason: "an append lost its record on the way to the log".to_owned(),
                }))
            }
        };
        Ok(Submitted {
            lsn,
            visibility,
            first_seq,
            last_seq: first_seq + events - 1,
            events,
            payload_bytes,
            started,
        })
    }

    /// Under the index's write lock (`index`): checks the append, gives it its sequence
    /// numbers and timestamp, queues it through `submit` and indexes it. Returns its LSN,
    /// first sequence and the execution's visibility handle.
    fn number_and_queue(
        &self,
        index: &mut seglog_index::ExecutionIndex,
        append: &PlannedAppend<'_>,
        mut record: seglog_segment::format::EncodedRecord,
        submit: impl FnOnce(
            seglog_segment::format::EncodedRecord,
        ) -> seglog_segment::Result<seglog_segment::Appended>,
    ) -> Result<(u64, u64, seglog_index::Visibility)> {
        let PlannedAppend {
            execution,
            tenant,
            tenant_if_new,
            expected_last_seq,
            events,
        } = *append;
        if self.shared.erasing_active.load(Ordering::Acquire)
            && self.shared.erasing.lock().contains(execution)
        {
            return Err(Error::Erasing {
                execution: execution.to_owned(),
            });
        }
        if let Some(if_new) = tenant_if_new {
            // The tenant was read before the record was laid out; an erasure (with or
            // without a new incarnation) may have changed it since. The caller reads again.
            if index.tenant_of(execution).unwrap_or(if_new) != tenant {
                return Err(Error::TenantMismatch {
                    execution: execution.to_owned(),
                });
            }
        }
        let plan = index
            .plan_append(execution, tenant, expected_last_seq, now_unix_nanos())
            .map_err(|e| match e {
                seglog_index::Error::TenantMismatch => Error::TenantMismatch {
                    execution: execution.to_owned(),
                },
                other => other.into(),
            })?;
        if plan.first_seq + events - 1 > u64::from(u32::MAX) {
            return Err(Error::Index(seglog_index::Error::LimitExceeded(
                "events in one execution",
            )));
        }
        record.set_first_seq(plan.first_seq);
        record.set_timestamp_unix_nanos(plan.timestamp_unix_nanos);
        let appended = submit(record)?;
        // Positions fit: segments are at most 4 GiB (Options) and numbered from 1.
        let location = Location::from_position(appended.position)?;
        let slot = index.insert(&IndexedRecord {
            execution,
            tenant,
            lsn: appended.lsn,
            location,
            first_seq: plan.first_seq,
            event_count: events as u32,
            timestamp_unix_nanos: plan.timestamp_unix_nanos,
        })?;
        let visibility =
            index
                .visibility(slot)
                .ok_or(Error::Index(seglog_index::Error::Inconsistent {
                    lsn: appended.lsn,
                    reason: "the index lost the slot it just handed out".to_owned(),
                }))?;
        Ok((appended.lsn, plan.first_seq, visibility))
    }

    /// Makes a durable append visible and wakes subscribers. Sequence order is LSN order
    /// within an execution, so "my LSN is durable" means every event up to mine is: publishing
    /// up to my last sequence takes no lock on the index (the execution's shared counter).
    fn publish(&self, visibility: &seglog_index::Visibility, last_seq: u64, execution: &str) {
        visibility.publish(last_seq);
        self.notify_published(execution);
    }

    /// Wakes the subscribers of what was just published.
    fn notify_published(&self, execution: &str) {
        // Global subscribers follow every publish; one execution's, only its own.
        if self.shared.visible_tx.receiver_count() > 0 {
            self.shared.visible_tx.send_modify(|v| *v += 1);
        }
        self.shared.watchers.notify(execution);
    }

    /// Leaves a submitted append that nobody waits on (cancelled, or buffered) to be
    /// published once durable, by [`Self::publish_if_due`].
    pub(crate) fn publish_when_durable(&self, s: &Submitted, execution: &str) {
        let first = self.shared.unpublished.push(
            s.lsn,
            PendingVisibility {
                execution: execution.into(),
                visibility: s.visibility.clone(),
                last_seq: s.last_seq,
            },
        );
        if first {
            // Subscribers waiting for new events look again: from now on they also follow
            // the durable watermark, so that this append wakes them when it is durable.
            self.shared.visible_tx.send_modify(|v| *v += 1);
            self.shared.watchers.notify_all();
        }
        // The watermark may have passed this append before it was queued here.
        self.publish_if_due();
    }

    /// Publishes the appends left to [`Self::publish_when_durable`] that have become
    /// durable (called by readers and `sync`).
    pub(crate) fn publish_if_due(&self) {
        if !self.shared.unpublished.is_waiting() {
            return;
        }
        let durable = self.shared.segments.durable_lsn();
        // Visible before the queue lets go of them (a `sync` that finds them taken returns
        // knowing they are); the wake-ups after.
        let published = self
            .shared
            .unpublished
            .take_through(durable, |p| p.visibility.publish(p.last_seq));
        for p in published {
            self.notify_published(&p.execution);
        }
    }

    pub(crate) fn finish(&self, s: &Submitted, execution: &str) -> u64 {
        self.publish(&s.visibility, s.last_seq, execution);
        self.shared
            .counters
            .record_append(s.events, s.payload_bytes, s.started.elapsed());
        s.first_seq
    }

    async fn append_async<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_async_at(execution, tenant, expected, encoding, payloads)
            .await
            .map(|receipt| receipt.first_seq)
    }

    /// The async append, reporting the record's global position with its first sequence.
    async fn append_async_at<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<crate::AppendReceipt> {
        let s = self.submit_append(execution, tenant, expected, encoding, payloads)?;
        self.wait_submitted(&s, execution).await
    }

    /// Waits until a submitted append is durable, and makes it visible.
    async fn wait_submitted(&self, s: &Submitted, execution: &str) -> Result<crate::AppendReceipt> {
        // If this future is dropped while waiting, the append may still become durable: hand
        // it to the readers to publish.
        let mut guard = AbandonGuard {
            log: self,
            execution,
            submitted: Some(s),
        };
        self.shared.segments.wait_durable_async(s.lsn).await?;
        guard.submitted = None;
        let first_seq = self.finish(s, execution);
        Ok(crate::AppendReceipt {
            lsn: s.lsn,
            first_seq,
        })
    }

    fn append_sync<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<u64> {
        let s = self.submit_append(execution, tenant, expected, encoding, payloads)?;
        self.shared.segments.wait_durable(s.lsn)?;
        Ok(self.finish(&s, execution))
    }

    /// Appends one event to `execution` (created, for `tenant`, by its first append) and
    /// returns its sequence number once it is durable.
    ///
    /// # Cancel safety
    /// Not cancel safe in the sense a retry needs: the record is queued before the first
    /// await, so a future dropped while it waits may still become durable (and visible) —
    /// or not, if the log fails first. To retry without a duplicate, use
    /// [`Self::append_expecting`] with the last sequence you know. The same holds for every
    /// async append.
    ///
    /// # Errors
    /// [`Error::TenantMismatch`], [`Error::InvalidId`], [`seglog_segment::Error::TooLarge`],
    /// [`Error::Closed`], and a poisoned log's [`seglog_segment::Error::Poisoned`].
    pub async fn append(&self, execution: &str, tenant: &str, payload: &[u8]) -> Result<u64> {
        self.append_async(execution, tenant, None, 0, &[payload])
            .await
    }

    /// Appends events atomically (all or none after a crash), numbered consecutively;
    /// returns the first sequence number once durable.
    ///
    /// # Errors
    /// As [`Self::append`], and [`Error::EmptyBatch`].
    pub async fn append_batch<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_async(execution, tenant, None, 0, payloads)
            .await
    }

    /// Appends a batch only if the execution's last sequence is `expected_last_seq`
    /// (0: the execution must not exist yet). Returns the first new sequence number.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the last sequence differs, and those of [`Self::append_batch`].
    pub async fn append_expecting<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: u64,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_async(execution, tenant, Some(expected_last_seq), 0, payloads)
            .await
    }

    /// The general append: optional expected last sequence and a payload encoding tag
    /// stored with the record (`0` = opaque bytes). Returns the first sequence number.
    ///
    /// # Errors
    /// As [`Self::append_expecting`].
    pub async fn append_encoded<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_async(execution, tenant, expected_last_seq, encoding, payloads)
            .await
    }

    /// Blocking [`Self::append`]: do not call it on an async runtime's worker thread.
    ///
    /// # Errors
    /// As [`Self::append`].
    pub fn append_blocking(&self, execution: &str, tenant: &str, payload: &[u8]) -> Result<u64> {
        self.append_sync(execution, tenant, None, 0, &[payload])
    }

    /// Blocking [`Self::append_batch`].
    ///
    /// # Errors
    /// As [`Self::append_batch`].
    pub fn append_batch_blocking<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_sync(execution, tenant, None, 0, payloads)
    }

    /// Blocking [`Self::append_expecting`].
    ///
    /// # Errors
    /// As [`Self::append_expecting`].
    pub fn append_expecting_blocking<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: u64,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_sync(execution, tenant, Some(expected_last_seq), 0, payloads)
    }

    /// Blocking [`Self::append_encoded`].
    ///
    /// # Errors
    /// As [`Self::append_encoded`].
    pub fn append_encoded_blocking<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_sync(execution, tenant, expected_last_seq, encoding, payloads)
    }
}

/// Appends that also report the global position of their record (see `global`).
impl<F: FileSystem> Log<F> {
    /// As [`Self::append_encoded`], returning the record's global position (its LSN) with
    /// its first sequence number, once durable.
    ///
    /// # Errors
    /// As [`Self::append_encoded`].
    pub async fn append_encoded_at<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<crate::AppendReceipt> {
        self.append_async_at(execution, tenant, expected_last_seq, encoding, payloads)
            .await
    }

    /// As [`Self::append_encoded_at`] without an expected sequence, for a caller that does
    /// not know the execution's tenant: the record joins the tenant `execution` has — also
    /// one whose first append is not durable yet — and only a new execution is created for
    /// `tenant_if_new`. (Looking the tenant up with [`Self::tenant_of`] first races the
    /// execution's first append: `tenant_of` knows only durable events, so the append that
    /// follows it could fail with [`Error::TenantMismatch`].)
    ///
    /// # Errors
    /// As [`Self::append_encoded`]; [`Error::TenantMismatch`] only when erasures kept
    /// changing the execution's tenant (removing it, creating it again) through every one of
    /// a few attempts to join it.
    pub async fn append_encoded_joining_at<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant_if_new: &str,
        encoding: u8,
        payloads: &[P],
    ) -> Result<crate::AppendReceipt> {
        let s = self.submit_joining(execution, tenant_if_new, encoding, payloads)?;
        self.wait_submitted(&s, execution).await
    }

    /// Submits an append under the tenant `execution` has, or `tenant_if_new`. The record
    /// carries its tenant, so the tenant is read before the record is laid out and checked
    /// again under the index lock by the submit; only an erasure in between changes it
    /// (the execution is gone, or created again), hence a few attempts.
    fn submit_joining<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant_if_new: &str,
        encoding: u8,
        payloads: &[P],
    ) -> Result<Submitted> {
        const ATTEMPTS: usize = 4;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tenant = self
                .shared
                .index
                .read()
                .tenant_of(execution)
                .map_or_else(|| tenant_if_new.to_owned(), str::to_owned);
            match self.submit_planned(
                execution,
                &tenant,
                Some(tenant_if_new),
                None,
                encoding,
                payloads,
            ) {
                Err(Error::TenantMismatch { .. }) if attempt < ATTEMPTS => continue,
                submitted => return submitted,
            }
        }
    }
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
