//! [`Log::rehydrate_segment`]: an offloaded segment's file comes back to the directory, so
//! that compaction can rewrite it (an erasure of records in it).
//!
//! Steps, each durable before the next (a crash at any point loses and duplicates nothing):
//! 1. the bytes, read through the source in pieces into `<first_lsn>.seg.rehydrating`, must
//!    have the stub's length, CRC-32 and header, byte for byte (else nothing changes);
//! 2. the file is fdatasynced, renamed to `<first_lsn>.seg`, and the directory fsynced. A
//!    crash now leaves the stub *and* the file: the next open takes it for an interrupted
//!    offload and finishes it (removes the file): the segment stays offloaded;
//! 3. the stub is removed and the directory fsynced: **the commit point**. After it, the
//!    next open finds a local sealed segment, indexed from its checkpoint (which stayed);
//! 4. the segment enters the segment table, the layout epoch moves, then it leaves the
//!    offloaded table (a read or listing that misses it in both sees the epoch moved and
//!    reads again).

use super::stub;
use crate::log::Log;
use crate::{Error, Result};
use seglog_segment::io::FileSystem;

/// The suffix of a segment file being rehydrated (removed by the next open).
pub(crate) const REHYDRATING_SUFFIX: &str = ".seg.rehydrating";

impl<F: FileSystem + Clone> Log<F> {
    /// Brings offloaded segment `number` back to the local disk: reads its bytes through
    /// the [`super::SegmentSource`], checks them against its stub (length, CRC-32, header),
    /// writes them as its segment file and removes the stub; from then on it is a local
    /// sealed segment (which compaction can rewrite, and a retention pass can offload
    /// again). Blocks (it reads the whole segment and fsyncs); holds off compaction
    /// meanwhile. An erasure (compaction) with a source set runs it for the offloaded
    /// segments holding records it drops.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when the segment is not offloaded; [`Error::Offloaded`]
    /// when no source is set or the source fails; [`Error::Corruption`] when the bytes
    /// differ from the stub's (nothing is changed); [`Error::ReadOnly`], [`Error::Closed`];
    /// I/O errors (before the stub's removal: the segment stays offloaded; after: the next
    /// open finds it local).
    pub fn rehydrate_segment(&self, number: u64) -> Result<()> {
        self.check_open()?;
        if self.shared.segments.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let _no_compaction = self.hold_off_compaction()?;
        self.rehydrate_locked(number)
    }

    /// [`Self::rehydrate_segment`] off the async runtime's worker threads.
    ///
    /// # Errors
    /// As [`Self::rehydrate_segment`].
    pub async fn rehydrate_segment_async(&self, number: u64) -> Result<()>
    where
        F: 'static,
    {
        let log = self.clone();
        crate::offload::run_blocking("rehydrate", move || log.rehydrate_segment(number)).await
    }

    /// For an erasure of `executions` (the compaction lock held): rehydrates every
    /// offloaded segment holding a record of one of them, when a source is set (without
    /// one, the compaction refuses the erasure).
    pub(crate) fn rehydrate_for(&self, executions: &[String]) -> Result<()> {
        if self.shared.offloaded.is_empty() || !self.shared.offloaded.has_source() {
            return Ok(());
        }
        let numbers: std::collections::BTreeSet<u64> = {
            let index = self.shared.index.read();
            executions
                .iter()
                .filter_map(|id| index.get(id))
                .flat_map(|e| e.records().iter().map(|l| u64::from(l.segment)))
                .filter(|n| self.shared.offloaded.get(*n).is_some())
                .collect()
        };
        for number in numbers {
            self.rehydrate_locked(number)?;
        }
        Ok(())
    }

    /// The rehydration, with the compaction lock held by the caller.
    pub(crate) fn rehydrate_locked(&self, number: u64) -> Result<()> {
        // Again under the compaction lock: a close meanwhile released the directory.
        self.check_open()?;
        let Some(segment) = self.shared.offloaded.get(number) else {
            return Err(Error::InvalidOptions(format!(
                "segment {number} is not offloaded"
            )));
        };
        let source = self.shared.offloaded.source(number)?;
        self.shared.segments.check_dir()?;
        let fs = self.shared.segments.file_system();
        let dir = &self.shared.dir;
        let name = seglog_segment::format::segment_file_name(segment.first_lsn);
        let path = dir.join(&name);
        // `<first_lsn>.seg.rehydrating` (REHYDRATING_SUFFIX).
        let temp = dir.join(format!("{name}.rehydrating"));
        match fs.remove(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &temp, e)),
        }
        // Steps 1 and 2: the bytes, checked against the stub, into the temp file, synced.
        super::download::download_checked(
            fs,
            source.as_ref(),
            &segment,
            &temp,
            "a rehydration (the source failed: see the log)",
        )?;
        // Again after the download, which may have taken long.
        self.shared.segments.check_dir()?;
        fs.rename(&temp, &path)
            .map_err(|e| Error::io("rename", &path, e))?;
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
        // Step 3: the commit point.
        stub::remove(fs, dir, segment.first_lsn)?;
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
        // Step 4. (Should it fail, the directory holds the segment; reads still go through
        // the source, and the next open finds it local.)
        self.shared
            .segments
            .adopt_sealed_segment(&path, segment.last_lsn)?;
        // IMPORTANT: between the two tables' changes, so that a reader that missed the
        // segment in the local table (before) and in the offloaded one (after) sees the
        // layout moved and reads again (review 22: a ship round's listing, a global read).
        self.shared
            .layout_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.shared.offloaded.remove(number);
        // Its blocks are of no use now (and an erasure is about to rewrite it).
        source.forget(&segment);
        tracing::info!(segment = number, "segment rehydrated");
        Ok(())
    }
}
