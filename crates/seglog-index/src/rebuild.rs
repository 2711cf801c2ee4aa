//! Rebuilding the index while the segment layer recovers the log: sealed segments with a
//! valid checkpoint are loaded from it, and so is the last segment's prefix when the log was
//! closed cleanly (a prefix checkpoint, format.md §5.1, consumed by the open that reads it);
//! everything else is read record by record.

use crate::checkpoint;
use crate::memory::{ExecutionIndex, IndexedRecord, Location};
use crate::{Error, Result};
use seglog_segment::format::RecordRef;
use seglog_segment::io::FileSystem;
use seglog_segment::{PrefixClaim, RecoveryVisitor, SegmentInfo};
use std::path::Path;

/// What the rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildStats {
    /// Sealed segments taken from their checkpoint.
    pub checkpoints_loaded: usize,
    /// Sealed segments read record by record (no usable checkpoint, or checkpoints off).
    pub segments_scanned: usize,
    /// Records of the last segment taken from its prefix checkpoint (0 when none was).
    pub prefix_records: u64,
    /// Records indexed in all.
    pub records: u64,
}

/// A [`RecoveryVisitor`] that fills an [`ExecutionIndex`].
pub struct IndexRebuilder<'a, F: FileSystem> {
    fs: &'a F,
    dir: &'a Path,
    index: &'a mut ExecutionIndex,
    use_checkpoints: bool,
    stats: RebuildStats,
    unchecked: Vec<u64>,
    /// LSN of the last record of the checkpoint applied last (for `skipped_last_lsn`).
    last_checkpoint_lsn: Option<u64>,
    /// The last segment's prefix checkpoint, between its claim and its use: segment number,
    /// checkpoint, and its encoded bytes.
    prefix: Option<(u64, checkpoint::DecodedCheckpoint, bytes::Bytes)>,
    /// The prefix checkpoint that was used: segment number and encoded bytes.
    consumed: Option<(u64, bytes::Bytes)>,
}

impl<'a, F: FileSystem> IndexRebuilder<'a, F> {
    /// A rebuilder filling `index`; `use_checkpoints` false reads every segment.
    pub fn new(
        fs: &'a F,
        dir: &'a Path,
        index: &'a mut ExecutionIndex,
        use_checkpoints: bool,
    ) -> Self {
        IndexRebuilder {
            fs,
            dir,
            index,
            use_checkpoints,
            stats: RebuildStats::default(),
            unchecked: Vec::new(),
            last_checkpoint_lsn: None,
            prefix: None,
            consumed: None,
        }
    }

    /// Numbers of the sealed segments that had no usable checkpoint (and were scanned).
    pub fn sealed_without_checkpoint(&self) -> &[u64] {
        &self.unchecked
    }

    /// The encoded prefix checkpoint of the last segment that this open used (and removed),
    /// with the segment's number: what the next clean close can extend instead of listing
    /// the whole segment again (`checkpoint::write_prefix`'s `base`).
    pub fn consumed_prefix(&mut self) -> Option<(u64, bytes::Bytes)> {
        self.consumed.take()
    }

    /// What happened so far.
    pub fn stats(&self) -> RebuildStats {
        self.stats
    }

    /// Takes the records of a segment that recovery does not see (its file left the disk:
    /// the `seglog` crate's offloaded segments) from its checkpoint, all or nothing. Call it
    /// in log order, between the visitor calls of the segments around it.
    ///
    /// # Errors
    /// [`Error::Inconsistent`] when the segment has no valid checkpoint or it does not fit
    /// the index: its records cannot be known, so the open must fail rather than lose them.
    pub fn apply_offloaded(&mut self, segment: &SegmentInfo) -> Result<usize> {
        let inconsistent = |reason: String| Error::Inconsistent {
            lsn: segment.first_lsn,
            reason,
        };
        let number = u32::try_from(segment.number)
            .map_err(|_| inconsistent(format!("segment number {} too large", segment.number)))?;
        let cp = checkpoint::load(self.fs, self.dir, segment).ok_or_else(|| {
            inconsistent(format!(
                "offloaded segment {} has no valid index checkpoint in the directory",
                segment.number
            ))
        })?;
        self.index
            .apply_checkpoint(number, &cp.strings, &cp.records)
            .map_err(|e| {
                inconsistent(format!(
                    "the checkpoint of offloaded segment {} does not fit the index: {e}",
                    segment.number
                ))
            })?;
        self.stats.checkpoints_loaded += 1;
        self.stats.records += cp.records.len() as u64;
        Ok(cp.records.len())
    }

    fn apply_checkpoint(&mut self, segment: &SegmentInfo, next_first_lsn: Option<u64>) -> bool {
        let Ok(number) = u32::try_from(segment.number) else {
            return false;
        };
        let Some(cp) = checkpoint::load(self.fs, self.dir, segment) else {
            return false;
        };
        // A record outside the segment's LSN range (format.md §1) is not one of its records:
        // trusted, it would make the next segment look out of order, and the log not open.
        if let Some(r) = cp
            .records
            .iter()
            .find(|r| r.lsn < segment.first_lsn || next_first_lsn.is_some_and(|next| r.lsn >= next))
        {
            tracing::warn!(
                segment = segment.number,
                lsn = r.lsn,
                ?next_first_lsn,
                "index checkpoint names an LSN outside its segment; scanning the segment"
            );
            return false;
        }
        // All or nothing: a checkpoint that does not fit the index is ignored whole.
        if let Err(e) = self
            .index
            .apply_checkpoint(number, &cp.strings, &cp.records)
        {
            tracing::warn!(segment = segment.number, error = %e, "index checkpoint does not fit; scanning the segment");
            return false;
        }
        self.stats.checkpoints_loaded += 1;
        self.stats.records += cp.records.len() as u64;
        // The greatest, not the last: a clustered segment's records are not in LSN order.
        self.last_checkpoint_lsn = cp.records.iter().map(|r| r.lsn).max();
        true
    }
}

fn utf8<'r>(bytes: &'r [u8], lsn: u64, what: &str) -> Result<&'r str> {
    std::str::from_utf8(bytes).map_err(|_| Error::Inconsistent {
        lsn,
        reason: format!("{what} id is not UTF-8"),
    })
}

impl<F: FileSystem> RecoveryVisitor for IndexRebuilder<'_, F> {
    fn prefix_claim(&mut self, segment: &SegmentInfo) -> Option<PrefixClaim> {
        if !self.use_checkpoints {
            return None;
        }
        let loaded = checkpoint::load_prefix(self.fs, self.dir, segment)?;
        // IMPORTANT: consumed here, whatever recovery decides: the open that reads it may
        // append, and a later cut (salvage, repair) followed by appends could put other
        // records where it says these are. Recovery's directory fsync before the first
        // append makes the removal durable. Not removable: not used (nothing may append
        // while it stays).
        if let Err(e) = checkpoint::remove(self.fs, self.dir, segment.first_lsn) {
            tracing::warn!(segment = segment.number, error = %e, "cannot remove the last segment's checkpoint; reading the segment");
            return None;
        }
        let claim = PrefixClaim {
            end: loaded.end,
            last_record_lsn: loaded
                .checkpoint
                .records
                .iter()
                .map(|r| r.lsn)
                .max()
                .unwrap_or(0),
        };
        self.prefix = Some((segment.number, loaded.checkpoint, loaded.encoded));
        Some(claim)
    }

    fn take_prefix(&mut self, segment: &SegmentInfo) -> bool {
        let Some((number, cp, encoded)) = self.prefix.take() else {
            return false;
        };
        let Ok(short_number) = u32::try_from(segment.number) else {
            return false;
        };
        if number != segment.number {
            return false;
        }
        // All or nothing, as for a sealed segment's checkpoint.
        if let Err(e) = self
            .index
            .apply_checkpoint(short_number, &cp.strings, &cp.records)
        {
            tracing::warn!(segment = segment.number, error = %e, "the last segment's checkpoint does not fit; reading the segment");
            return false;
        }
        self.stats.prefix_records = cp.records.len() as u64;
        self.consumed = Some((number, encoded));
        self.stats.records += cp.records.len() as u64;
        true
    }

    fn skipped_last_lsn(&self) -> Option<u64> {
        self.last_checkpoint_lsn
    }

    fn wants_scan(&mut self, segment: &SegmentInfo, next_first_lsn: Option<u64>) -> bool {
        self.last_checkpoint_lsn = None;
        let loaded = self.use_checkpoints && self.apply_checkpoint(segment, next_first_lsn);
        if !loaded {
            self.stats.segments_scanned += 1;
            self.unchecked.push(segment.number);
        }
        !loaded
    }

    fn record(
        &mut self,
        segment: &SegmentInfo,
        offset: u64,
        r: &RecordRef<'_>,
    ) -> seglog_segment::Result<()> {
        let to_segment_error = |e: Error| seglog_segment::Error::Corruption {
            segment: segment.number,
            offset,
            reason: e.to_string(),
        };
        let rec = IndexedRecord {
            execution: utf8(r.execution_id(), r.lsn(), "execution").map_err(to_segment_error)?,
            tenant: utf8(r.tenant_id(), r.lsn(), "tenant").map_err(to_segment_error)?,
            lsn: r.lsn(),
            location: Location::from_position(seglog_segment::RecordPosition {
                segment: segment.number,
                offset,
            })
            .map_err(to_segment_error)?,
            first_seq: r.first_seq(),
            event_count: r.event_count(),
            timestamp_unix_nanos: r.timestamp_unix_nanos(),
        };
        self.index.insert(&rec).map_err(to_segment_error)?;
        self.stats.records += 1;
        Ok(())
    }
}
