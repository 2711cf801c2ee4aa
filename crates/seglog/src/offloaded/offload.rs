//! [`Log::offload_segment`]: a sealed segment's file leaves the directory, its bytes being
//! confirmed elsewhere.
//!
//! Steps, each durable before the next (a crash at any point loses and duplicates nothing):
//! 1. check: sealed, before the active segment by LSN and by number, its whole bytes of the
//!    length and CRC-32 the caller vouches the object has, a source to read it through;
//! 2. its index checkpoint is valid in the directory (written now if it is not): the next
//!    open indexes its records from it;
//! 3. the stub is written (temp, fdatasync, rename, directory fsync): **the commit point**.
//!    A crash before it leaves the segment local; after it, the next open finishes step 5;
//! 4. the segment enters the offloaded table (reads that miss the segment table find it);
//! 5. the segment leaves the segment table and its file is removed (directory fsync).

use super::{stub, OffloadTarget, OffloadedSegment};
use crate::log::Log;
use crate::{CheckpointMode, Error, Result};
use seglog_index::checkpoint::DecodedCheckpoint;
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::io::FileSystem;
use seglog_segment::SegmentInfo;
use std::sync::atomic::Ordering;

impl<F: FileSystem + Clone> Log<F> {
    /// Offloads sealed segment `number`: records durably that its bytes are at `target`
    /// (which the caller has confirmed: for `seglog-tier`, an object a committed manifest
    /// names with this length and CRC-32), removes its file, and serves its records from
    /// then on through the [`super::SegmentSource`] set with [`Log::set_segment_source`].
    /// Its records stay in the index (its checkpoint stays in the directory). Blocks (it
    /// reads the segment and fsyncs); holds off compaction meanwhile.
    ///
    /// Offloading a segment again to the same location does nothing.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when the segment is unknown, the active one, not before the
    /// active one by number, when no source is set, when checkpoints are off, or when the
    /// location is empty or too long; [`Error::Corruption`] when the segment's bytes differ
    /// from `target`'s length or CRC-32 (nothing is changed); [`Error::ReadOnly`],
    /// [`Error::Closed`]; I/O errors (before the stub: nothing changed; after: the next open
    /// finishes the offload).
    pub fn offload_segment(&self, number: u64, target: &OffloadTarget) -> Result<()> {
        self.check_open()?;
        if self.shared.segments.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let invalid = |why: String| Err(Error::InvalidOptions(why));
        if self.shared.offloaded.source.read().is_none() {
            return invalid("offload_segment needs a segment source (set_segment_source)".into());
        }
        if self.shared.checkpointer.mode() == CheckpointMode::Off {
            return invalid("offload_segment needs index checkpoints (CheckpointMode::Off)".into());
        }
        if target.location.is_empty() || target.location.len() > stub::MAX_LOCATION_BYTES {
            return invalid(format!(
                "an offload location is 1..={} bytes",
                stub::MAX_LOCATION_BYTES
            ));
        }
        let _no_compaction = self.hold_off_compaction()?;
        // Offloads hold the compaction lock: one at a time. Offloading a segment twice (two
        // retention passes racing) is a no-op the second time.
        if let Some(done) = self.shared.offloaded.get(number) {
            if done.location == target.location {
                return Ok(());
            }
            return invalid(format!(
                "segment {number} is already offloaded to {}",
                done.location
            ));
        }
        let infos = self.segments();
        let Some(info) = infos.iter().find(|s| s.number == number).cloned() else {
            return invalid(format!(
                "segment {number} is not a local segment of the log"
            ));
        };
        let Some(last) = infos.last() else {
            return invalid("the log has no segment".into());
        };
        if !info.sealed || info.first_lsn >= last.first_lsn || info.number >= last.number {
            return invalid(format!(
                "segment {number} is not sealed before the active segment {} (by LSN and by \
                 number): it cannot leave the disk yet",
                last.number
            ));
        }
        // Step 1: the bytes the caller vouches for are exactly this segment's.
        let bytes = self.shared.segments.segment_bytes(number)?;
        if bytes.len() as u64 != target.len
            || bytes.len() as u64 != info.data_end
            || crc32fast::hash(&bytes) != target.crc32
        {
            return Err(Error::Corruption(format!(
                "segment {number} ({} bytes) does not match {} ({} bytes, CRC-32 {:08x}): not \
                 offloaded",
                bytes.len(),
                target.location,
                target.len,
                target.crc32
            )));
        }
        let header_bytes: [u8; SEGMENT_HEADER_LEN] = bytes
            .get(..SEGMENT_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| Error::Corruption(format!("segment {number} has no header")))?;
        // Step 2: its checkpoint, valid and durable.
        let checkpoint = self.ensure_checkpoint(&info, &bytes)?;
        let last_event_lsn = checkpoint
            .records
            .iter()
            .map(|r| r.lsn)
            .max()
            .unwrap_or(info.first_lsn - 1);
        let segment = OffloadedSegment {
            number,
            first_lsn: info.first_lsn,
            last_lsn: info.last_lsn.max(last_event_lsn),
            last_event_lsn,
            data_end: info.data_end,
            record_salt: info.record_salt,
            created_unix_nanos: info.created_unix_nanos,
            clustered: info.clustered,
            header_bytes,
            object_crc32: target.crc32,
            location: target.location.clone(),
        };
        drop(bytes);
        // Step 3: the commit point.
        self.shared.segments.check_dir()?;
        stub::write(
            self.shared.segments.file_system(),
            &self.shared.dir,
            &segment,
        )?;
        self.finish_offload(segment)
    }

    /// Step 2: the checkpoint of local sealed segment `info` (whose bytes are `bytes`),
    /// valid and durable in the directory: loaded, or written now (the checkpointer may not
    /// have got to it yet, or it was damaged).
    pub(crate) fn ensure_checkpoint(
        &self,
        info: &SegmentInfo,
        bytes: &[u8],
    ) -> Result<DecodedCheckpoint> {
        let fs = self.shared.segments.file_system();
        let dir = &self.shared.dir;
        self.shared.segments.check_dir()?;
        let load = || seglog_index::checkpoint::load(fs, dir, info);
        if let Some(cp) = load() {
            return Ok(cp);
        }
        // The checkpointer may be writing it (same temp file name): let it finish.
        self.shared.checkpointer.barrier();
        if let Some(cp) = load() {
            return Ok(cp);
        }
        // A write racing an inline seal listener's may lose the rename: the other one's
        // file is as good. Checked again: the wait above may have been long.
        self.shared.segments.check_dir()?;
        let written = seglog_index::checkpoint::write(fs, dir, info, bytes);
        match (load(), written) {
            (Some(cp), _) => Ok(cp),
            (None, Err(e)) => Err(e.into()),
            (None, Ok(_)) => Err(Error::Corruption(format!(
                "segment {}'s checkpoint does not read back",
                info.number
            ))),
        }
    }

    /// Steps 4 and 5, once the stub is durable (also run by the open for offloads a crash
    /// interrupted).
    pub(crate) fn finish_offload(&self, segment: OffloadedSegment) -> Result<()> {
        let number = segment.number;
        // IMPORTANT: into the offloaded table before out of the segment table, so a read
        // that misses the one finds the other (`read_record_anywhere`).
        self.shared.offloaded.insert(segment);
        self.shared.segments.forget_sealed_segment(number)?;
        // The read-ahead handles may hold the removed file open (and its space).
        self.shared
            .read_ahead
            .forget(self.shared.layout_epoch.load(Ordering::Acquire));
        tracing::info!(segment = number, "segment offloaded");
        Ok(())
    }

    /// [`Self::offload_segment`] off the async runtime's worker threads.
    ///
    /// # Errors
    /// As [`Self::offload_segment`].
    pub async fn offload_segment_async(&self, number: u64, target: OffloadTarget) -> Result<()>
    where
        F: 'static,
    {
        let log = self.clone();
        crate::offload::run_blocking("offload", move || log.offload_segment(number, &target)).await
    }
}
