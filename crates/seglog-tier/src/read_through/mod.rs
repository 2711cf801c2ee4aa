//! Read-through: sealed segments the bucket holds leave the local disk, and reads of their
//! records come from the bucket by ranged GETs, cached (docs/scale-out.md, "Read-through").
//!
//! [`ReadThrough`] is both halves: the local retention pass ([`ReadThrough::offload`]) that
//! drops shipped sealed segments beyond the newest `keep_local_segments`, and the
//! `seglog::SegmentSource` ([`BucketSource`]) the log reads them through
//! ([`ReadThrough::attach`]).
//!
//! What must hold: a segment leaves the disk only when this writer's newest **committed**
//! manifest names it with the local file's number, first LSN, salt and length, the object is
//! in the bucket with that length (a HEAD), and the local file's CRC-32 equals the
//! manifest's (checked by `seglog::Log::offload_segment` against its bytes); never the
//! active segment, never one not yet shipped, never by a fenced writer.

mod cache;
mod source;

pub use source::{BucketSource, ReadThroughStats};

use crate::claim::Tier;
use crate::error::{Error, Result};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use seglog::OffloadTarget;
use std::sync::Arc;
use std::time::Duration;

/// Settings of [`ReadThrough`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadThroughOptions {
    /// Shipped sealed segments kept on the local disk (the newest ones); the older ones are
    /// offloaded by [`ReadThrough::offload`]. `0`: every shipped sealed segment leaves the
    /// disk. Default: 0.
    pub keep_local_segments: usize,
    /// Bytes of offloaded segments the block cache holds, at most. Default: 64 MiB.
    pub cache_bytes: u64,
    /// Size of a cached block, in bytes (the unit of a ranged GET). Default: 64 KiB.
    pub block_bytes: u64,
    /// How long a read waits for its GETs before it fails. Default: 30 s.
    pub fetch_timeout: Duration,
}

impl Default for ReadThroughOptions {
    fn default() -> Self {
        ReadThroughOptions {
            keep_local_segments: 0,
            cache_bytes: 64 << 20,
            block_bytes: 64 << 10,
            fetch_timeout: Duration::from_secs(30),
        }
    }
}

impl ReadThroughOptions {
    /// Sets [`Self::keep_local_segments`].
    #[must_use]
    pub fn keep_local_segments(mut self, segments: usize) -> Self {
        self.keep_local_segments = segments;
        self
    }

    /// Sets [`Self::cache_bytes`].
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Sets [`Self::block_bytes`].
    #[must_use]
    pub fn block_bytes(mut self, bytes: u64) -> Self {
        self.block_bytes = bytes;
        self
    }
}

/// What one [`ReadThrough::offload`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffloadReport {
    /// Segments offloaded (their files removed).
    pub segments_offloaded: usize,
    /// Bytes of local disk given back.
    pub bytes_offloaded: u64,
    /// Sealed segments left local because the manifest does not name them yet (not
    /// shipped, or shipped under another length or salt).
    pub not_shipped: usize,
}

/// Local retention and reads through the bucket for one log (see the module docs).
#[derive(Debug, Clone)]
pub struct ReadThrough {
    store: Arc<dyn ObjectStore>,
    source: Arc<BucketSource>,
    options: ReadThroughOptions,
    /// One offload pass at a time (concurrent passes would offload the same segments).
    pass: Arc<tokio::sync::Mutex<()>>,
}

impl ReadThrough {
    /// A read-through over `store` (the log's bucket). It starts a small runtime of its own
    /// for the GETs of synchronous reads.
    ///
    /// # Errors
    /// [`Error::Io`] when the runtime's threads cannot start.
    pub fn new(store: Arc<dyn ObjectStore>, options: ReadThroughOptions) -> Result<Self> {
        let source = BucketSource::new(
            store.clone(),
            options.cache_bytes,
            options.block_bytes,
            options.fetch_timeout,
        )?;
        Ok(ReadThrough {
            store,
            source: Arc::new(source),
            options,
            pass: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Makes `log` read its offloaded segments through this read-through (call it right
    /// after opening a log that has any: until then, their reads fail).
    pub fn attach(&self, log: &seglog::Log) {
        log.set_segment_source(self.source.clone());
    }

    /// The source's counters.
    pub fn stats(&self) -> ReadThroughStats {
        self.source.stats()
    }

    /// The local retention pass: offloads every sealed segment of `log` that the newest
    /// manifest `tier` committed names (same number, first LSN, salt and length), except the
    /// newest [`ReadThroughOptions::keep_local_segments`] sealed ones and the active one.
    /// Run it after each [`Tier::ship`] round. The log must be attached ([`Self::attach`]).
    ///
    /// # Errors
    /// [`Error::Fenced`] (nothing is offloaded by a fenced writer); store errors (a HEAD);
    /// [`Error::Corruption`] when the bucket's object is not the manifest's length; the log's
    /// errors (`seglog::Error::Corruption` when the local file's CRC differs from the
    /// manifest's). Segments offloaded before an error stay offloaded.
    pub async fn offload(&self, tier: &Tier, log: &seglog::Log) -> Result<OffloadReport> {
        let _one_pass_at_a_time =
            seglog_segment::shielded(self.pass.lock(), "an offloading caller's").await;
        let manifest = {
            let state = tier.lock_state().await;
            tier.check_not_fenced(&state)?;
            state.latest.clone()
        };
        let local = log.segments();
        let Some(active) = local.last().cloned() else {
            return Ok(OffloadReport::default());
        };
        let sealed: Vec<_> = local
            .into_iter()
            .filter(|s| s.sealed && s.first_lsn < active.first_lsn && s.number < active.number)
            .collect();
        let keep_from = sealed
            .len()
            .saturating_sub(self.options.keep_local_segments);
        let mut report = OffloadReport::default();
        for info in &sealed[..keep_from] {
            let Some(entry) = manifest.segments.iter().find(|e| {
                e.number == info.number
                    && e.first_lsn == info.first_lsn
                    && e.record_salt == info.record_salt
                    && e.segment.len == info.data_end
            }) else {
                report.not_shipped += 1;
                continue;
            };
            // The object is there with the manifest's length (its bytes were checked at
            // upload; the CRC of the local file is checked against the manifest's below).
            let key = Path::from(entry.segment.key.as_str());
            let meta = self
                .store
                .head(&key)
                .await
                .map_err(|e| Error::store("head", &key, e))?;
            if meta.size != entry.segment.len {
                return Err(Error::corruption(
                    &key,
                    format!(
                        "{} bytes in the bucket, the manifest says {}",
                        meta.size, entry.segment.len
                    ),
                ));
            }
            let target = OffloadTarget {
                location: entry.segment.key.clone(),
                len: entry.segment.len,
                crc32: entry.segment.crc32,
            };
            log.offload_segment_async(info.number, target).await?;
            report.segments_offloaded += 1;
            report.bytes_offloaded += info.data_end;
        }
        Ok(report)
    }

    /// One [`Tier::ship`] round, then [`Self::offload`].
    ///
    /// # Errors
    /// As both.
    pub async fn ship_and_offload(
        &self,
        tier: &Tier,
        log: &seglog::Log,
    ) -> Result<(crate::ShipReport, OffloadReport)> {
        let shipped = tier.ship(log).await?;
        let offloaded = self.offload(tier, log).await?;
        Ok((shipped, offloaded))
    }
}

/// The log's segments as a ship round lists them: its local segments and its offloaded
/// ones (sealed, already named by the manifest: the round keeps naming them), in log order,
/// from one consistent listing (`Log::all_segments`: two separate listings miss a segment a
/// rehydration moves between them, and the round would drop it from the manifest).
pub(crate) fn shipped_listing(log: &seglog::Log) -> Vec<seglog::SegmentInfo> {
    log.all_segments()
}
