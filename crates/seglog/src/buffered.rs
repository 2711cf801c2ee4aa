//! Buffered appends and `sync`, for bulk imports that need durability once at the end rather
//! than per append (raft-engine's `write(batch, sync = false)`, RocksDB's
//! `WriteOptions::sync = false` followed by `SyncWAL`).
//!
//! A buffered append is checked, numbered, indexed and queued like any other, and returns
//! without waiting for the disk. Until a commit round syncs it — [`Log::sync`], any durable
//! append, or `close` — it is **neither durable nor readable** (readers only ever see durable
//! events), and a crash may lose it together with every later buffered append of the log;
//! never an append that a returned `sync` or durable append covered. Records never vouch for
//! unsynced bytes, so such a loss reads as a torn tail at the next open, not as corruption.
//! When more than [`crate::Options::buffered_write_bytes`] are queued, the appender writes
//! the queue to the file itself (no fsync), so an import holds about that much memory.

use crate::log::Log;
use crate::Result;
use seglog_segment::io::FileSystem;

impl<F: FileSystem> Log<F> {
    /// Appends events atomically without waiting for durability: returns the first sequence
    /// number as soon as the batch is queued. **Not durable, and not visible to readers,
    /// until a later [`Self::sync`]** (or durable append, or `close`) returns; a crash before
    /// that may lose it. For bulk imports. May write queued records to the file (never
    /// fsync) on the calling thread: call it from a blocking context.
    ///
    /// # Errors
    /// As [`Self::append_batch`]; [`seglog_segment::Error::Poisoned`] when writing the queue
    /// failed (the batch is then not durable, and the log refuses appends until reopened).
    pub fn append_batch_buffered<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        payloads: &[P],
    ) -> Result<u64> {
        self.append_encoded_buffered(execution, tenant, None, 0, payloads)
    }

    /// The general buffered append: [`Self::append_encoded`] without the wait for
    /// durability (see [`Self::append_batch_buffered`] for what that means).
    ///
    /// # Errors
    /// As [`Self::append_batch_buffered`], and [`crate::Error::Conflict`].
    pub fn append_encoded_buffered<P: AsRef<[u8]>>(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        encoding: u8,
        payloads: &[P],
    ) -> Result<u64> {
        let s = self.submit_append(execution, tenant, expected_last_seq, encoding, payloads)?;
        self.publish_when_durable(&s, execution);
        self.shared.counters.record_buffered_append();
        // Outside the index lock: this may write. A close that began after the submit drains
        // the queue, this batch included: it is not refused now (review 143).
        match self.shared.segments.write_queued_if_large() {
            Ok(()) | Err(seglog_segment::Error::Closed) => Ok(s.first_seq()),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes every append submitted before the call durable — buffered ones included — and
    /// visible to readers: one commit round (one write of what is queued and one fdatasync),
    /// shared with concurrent appends. Cheap when nothing is pending. Under
    /// [`crate::SyncMode::Never`] as well: appends are acknowledged unsynced in that mode,
    /// and `sync` fdatasyncs the active segment itself once they are written.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future loses nothing. What it would have made durable
    /// becomes durable with the next commit round; call `sync` again to wait for it.
    ///
    /// # Errors
    /// [`crate::Error::Closed`]; [`seglog_segment::Error::Poisoned`] if a write or fsync
    /// failed: then what was not yet durable may be lost.
    pub async fn sync(&self) -> Result<()> {
        self.check_open()?;
        self.shared.segments.sync_async().await?;
        self.publish_if_due();
        Ok(())
    }

    /// Blocking [`Self::sync`].
    ///
    /// # Errors
    /// As [`Self::sync`].
    pub fn sync_blocking(&self) -> Result<()> {
        self.check_open()?;
        self.shared.segments.sync()?;
        self.publish_if_due();
        Ok(())
    }
}
