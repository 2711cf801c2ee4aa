//! [`SegmentBuilder`]: writes a new sealed segment from existing records, for compaction.
//!
//! The file is written under a temporary name (`<segment name>.compacting`) that recovery
//! never mistakes for part of the log; only a committed replacement manifest
//! (`crate::replacement`) gives it its real name.

use crate::format::{resalt, RecordRef, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result};
use std::path::PathBuf;

/// Bytes gathered before one write: large enough that the rewrite is bound by the disk, not
/// by system calls.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// A segment being written by compaction. Records must be pushed in LSN order, or, in a
/// clustered segment (header flag `CLUSTERED`), in LSN order per execution.
pub struct SegmentBuilder<F: FileSystem> {
    pub(crate) fs: F,
    /// The log's directory as opened: the temp file is removed by path only while the path
    /// still names it.
    pub(crate) dir: crate::DirGuard,
    pub(crate) file: F::File,
    pub(crate) temp_path: PathBuf,
    pub(crate) final_path: PathBuf,
    pub(crate) header: SegmentHeader,
    /// Bytes written or buffered so far, header included.
    len: u64,
    written: u64,
    buf: Vec<u8>,
    last_lsn: u64,
    records: u64,
    /// Clustered segments: the last LSN pushed per execution, and every LSN pushed.
    clustered: Option<ClusteredPushes>,
}

#[derive(Default)]
struct ClusteredPushes {
    last_by_execution: std::collections::HashMap<Box<[u8]>, u64>,
    lsns: std::collections::HashSet<u64>,
}

/// A finished, durable segment under its temporary name, waiting for
/// `SegmentLog::replace_segments`.
pub struct BuiltSegment<F: FileSystem> {
    pub(crate) fs: F,
    pub(crate) dir: crate::DirGuard,
    pub(crate) file: F::File,
    pub(crate) temp_path: PathBuf,
    pub(crate) final_path: PathBuf,
    pub(crate) header: SegmentHeader,
    pub(crate) len: u64,
    pub(crate) last_lsn: u64,
    /// Records in it.
    pub records: u64,
}

impl<F: FileSystem> BuiltSegment<F> {
    /// Its segment number.
    pub fn number(&self) -> u64 {
        self.header.segment_number
    }
    /// Its length in bytes, header included.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Its first LSN (which names its file).
    pub fn first_lsn(&self) -> u64 {
        self.header.first_lsn
    }
    /// True when it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
    /// Gives up on it: removes the temporary file (best effort; recovery removes what is left).
    pub fn abandon(self) {
        remove_temp(&self.fs, &self.dir, &self.temp_path);
    }
}

impl<F: FileSystem> SegmentBuilder<F> {
    pub(crate) fn new(
        fs: F,
        dir: crate::DirGuard,
        file: F::File,
        temp_path: PathBuf,
        final_path: PathBuf,
        header: SegmentHeader,
    ) -> Self {
        let mut buf = Vec::with_capacity(WRITE_CHUNK_BYTES + SEGMENT_HEADER_LEN);
        buf.extend_from_slice(&header.encode());
        SegmentBuilder {
            fs,
            dir,
            file,
            temp_path,
            final_path,
            header,
            len: SEGMENT_HEADER_LEN as u64,
            written: 0,
            buf,
            last_lsn: header.first_lsn - 1,
            records: 0,
            clustered: header.clustered.then(ClusteredPushes::default),
        }
    }

    /// Its segment number (the salt of every record it holds).
    pub fn number(&self) -> u64 {
        self.header.segment_number
    }

    /// Bytes so far, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True while no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Copies `record` (a valid record of another segment) to the end of this one and
    /// returns its offset here. Its checksum is recomputed for this segment's salt; no other
    /// byte changes.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] when LSNs would not increase, I/O errors.
    pub fn push(&mut self, record: &RecordRef<'_>) -> Result<u64> {
        if let Some(c) = self.clustered.as_mut() {
            // The segment's range starts at its name; within it, each execution's records
            // keep their order and no LSN comes twice.
            let last = c
                .last_by_execution
                .get(record.execution_id())
                .copied()
                .unwrap_or(self.header.first_lsn - 1);
            if record.lsn() <= last || record.lsn() < self.header.first_lsn {
                return Err(Error::InvalidRecord(
                    "a clustered segment takes each execution's records in increasing LSN order",
                ));
            }
            if !c.lsns.insert(record.lsn()) {
                return Err(Error::InvalidRecord("an LSN copied twice"));
            }
            c.last_by_execution
                .insert(Box::from(record.execution_id()), record.lsn());
        } else if record.lsn() <= self.last_lsn {
            return Err(Error::InvalidRecord(
                "compaction must copy records in increasing LSN order",
            ));
        }
        let offset = self.len;
        let start = self.buf.len();
        self.buf.extend_from_slice(record.as_bytes());
        resalt(&mut self.buf[start..], self.header.record_salt());
        self.len += record.len() as u64;
        self.last_lsn = self.last_lsn.max(record.lsn());
        self.records += 1;
        if self.buf.len() >= WRITE_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(offset)
    }

    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file
                .write_all_at(&self.buf, self.written)
                .map_err(|e| Error::io("write", &self.temp_path, e))?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and makes the file durable.
    ///
    /// # Errors
    /// I/O errors; the temporary file is left for [`Self::abandon`] or recovery to remove.
    pub fn finish(mut self) -> Result<BuiltSegment<F>> {
        self.flush()?;
        // IMPORTANT: the new segment's bytes must be durable before a manifest names it:
        // from the manifest's commit on, it is the only copy of the records it holds.
        if !crate::teeth::skipped(crate::teeth::SyncPoint::ReplacementSegmentFsync) {
            self.file
                .sync_data()
                .map_err(|e| Error::io("sync_data", &self.temp_path, e))?;
        }
        Ok(BuiltSegment {
            fs: self.fs,
            dir: self.dir,
            file: self.file,
            temp_path: self.temp_path,
            final_path: self.final_path,
            header: self.header,
            len: self.len,
            last_lsn: self.last_lsn,
            records: self.records,
        })
    }

    /// Gives up: removes the temporary file (best effort; recovery removes what is left).
    pub fn abandon(self) {
        remove_temp(&self.fs, &self.dir, &self.temp_path);
    }
}

/// Removes a temporary segment file, logging (not failing) when it cannot. Not when the
/// log's directory has moved: the path may name another log's temp file (every log's first
/// output is `…0001.seg.compacting`); the next open of the moved log removes this one.
pub(crate) fn remove_temp<F: FileSystem>(fs: &F, dir: &crate::DirGuard, path: &std::path::Path) {
    if let Err(e) = dir.check(fs) {
        tracing::warn!(path = %path.display(), error = %e, "temporary segment left for the next open");
        return;
    }
    if let Err(e) = crate::replacement::remove_if_present(fs, path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a temporary segment; recovery will");
    }
}
