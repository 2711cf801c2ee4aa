//! Letting go of a sealed segment's file whose bytes now live elsewhere (the layer above
//! offloaded it to object storage and recorded that durably first: docs/scale-out.md,
//! "Read-through").
//!
//! What must hold: only a sealed segment that is not the last one leaves the table (the
//! writer never appends to it again, and it can never become active again); its file is
//! removed only after it left the table, under the replacement lock (no compaction switches
//! segments meanwhile); the removal is made durable by a directory fsync. Readers that took
//! the segment's entry before keep their map: a removed file lives on until its last map
//! goes.

use super::SegmentLog;
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result};

impl<F: FileSystem> SegmentLog<F> {
    /// Removes sealed segment `number` from the table and deletes its file. The caller must
    /// have made the segment's records reachable another way first (the `seglog` crate's
    /// offload stub and index checkpoint): after this, [`Self::read`] of its positions fails
    /// with [`Error::NoSuchRecord`].
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Closed`]; [`Error::InvalidOptions`] when the segment is
    /// unknown, not sealed, or the last one; I/O errors of the removal or of the directory
    /// fsync (the segment has left the table then; the next open finds the file, if it is
    /// still there, and the layer above finishes the removal).
    pub fn forget_sealed_segment(&self, number: u64) -> Result<()> {
        self.check_open()?;
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let _one_switch_at_a_time = self.inner.replace_lock.lock();
        self.inner.check_dir()?;
        let path = {
            let mut table = self.inner.segments.write();
            // The last segment in log order (not by number: compaction outputs get numbers
            // above the active segment's).
            let last = table
                .values()
                .map(|e| e.info())
                .max_by_key(|i| i.first_lsn)
                .map(|i| i.number);
            let entry = table.get(&number).ok_or_else(|| {
                Error::InvalidOptions(format!("segment {number} is not in the log"))
            })?;
            if !entry.info().sealed || last == Some(number) {
                return Err(Error::InvalidOptions(format!(
                    "segment {number} is the last or not sealed: only a sealed segment before \
                     the active one can leave the disk"
                )));
            }
            let path = entry.info().path;
            table.remove(&number);
            path
        };
        // A segment adopted back under this number later is not this writer's roll.
        self.inner.commit.lock().rolled.retain(|&n| n != number);
        match self.inner.fs.remove(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
        // IMPORTANT: the removal is durable before the caller reports the space reclaimed;
        // a lost removal is harmless (the next open finishes it) but must not stay lost.
        self.inner
            .fs
            .sync_dir(&self.inner.dir)
            .map_err(|e| Error::io("sync_dir", &self.inner.dir, e))
    }
}

impl<F: FileSystem> SegmentLog<F> {
    /// Takes back into the table sealed segment file `path`, which the layer above put back
    /// in the directory (a rehydration: the bytes of an offloaded segment, checked against
    /// what was recorded when it left), whose last LSN is `last_lsn`. The file must be
    /// durable under its final name. It must lie before the last segment (by LSN and by
    /// number) and its number must not be in the table.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Closed`]; [`Error::InvalidOptions`] when the segment
    /// would not fit those rules; [`Error::Corruption`] for a header that does not decode;
    /// I/O errors (the table is then unchanged).
    pub fn adopt_sealed_segment(
        &self,
        path: &std::path::Path,
        last_lsn: u64,
    ) -> Result<crate::SegmentInfo> {
        self.check_open()?;
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let _one_switch_at_a_time = self.inner.replace_lock.lock();
        self.inner.check_dir()?;
        let file = self
            .inner
            .fs
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", path, e))?;
        let view = file.map().map_err(|e| Error::io("map", path, e))?;
        let header =
            crate::format::SegmentHeader::decode(&view).map_err(|d| Error::Corruption {
                segment: 0,
                offset: 0,
                reason: format!("{}: {d}", path.display()),
            })?;
        let number = header.segment_number;
        let mut table = self.inner.segments.write();
        let last = table.values().map(|e| e.info()).max_by_key(|i| i.first_lsn);
        let fits = last.is_some_and(|l| l.first_lsn > header.first_lsn && l.number > number);
        if table.contains_key(&number) || !fits {
            return Err(Error::InvalidOptions(format!(
                "segment {number} cannot come back: its number is taken or it is not before \
                 the last segment"
            )));
        }
        let view = view.slice(..(len as usize).min(view.len()));
        let entry =
            crate::segment::SegmentEntry::new(header, path.to_path_buf(), file, len, last_lsn);
        entry.seal(Some(view));
        let info = entry.info();
        table.insert(number, std::sync::Arc::new(entry));
        Ok(info)
    }
}
