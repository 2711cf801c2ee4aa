//! One segment file as the log holds it open: its header, its file, how far its durable data
//! reaches, and (once sealed) a read-only memory map. Shared by the writer and readers.

use crate::format::{decode_record, RecordRef, RecordScan, SegmentHeader, REC_LEN_OFFSET};
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result};
use bytes::Bytes;
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where a record starts: segment number and byte offset in that segment's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordPosition {
    /// Segment number (from the segment header, not the file name).
    pub segment: u64,
    /// Byte offset of the record in the segment file.
    pub offset: u64,
}

/// A public snapshot of one segment's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Segment number.
    pub number: u64,
    /// LSN of its first record (also its file name).
    pub first_lsn: u64,
    /// LSN of its last durable record, or `first_lsn - 1` when it has none.
    pub last_lsn: u64,
    /// The segment file.
    pub path: PathBuf,
    /// End of its durable records: the first byte after the last one.
    pub data_end: u64,
    /// Sealed segments never change again.
    pub sealed: bool,
    /// Creation time from the header, nanoseconds since the Unix epoch.
    pub created_unix_nanos: i64,
    /// The salt of its record checksums (`SegmentHeader::record_salt`): random for format
    /// version 3, the segment number before. What binds an index checkpoint to this very
    /// segment, whatever its number.
    pub record_salt: u64,
    /// Its records are grouped by execution (header flag `CLUSTERED`, format version 4): LSNs
    /// increase per execution inside it, not in file order. Written only by compaction.
    pub clustered: bool,
}

/// A record read from the log; cheap to clone (the bytes are shared).
#[derive(Debug, Clone)]
pub struct Record {
    position: RecordPosition,
    bytes: Bytes,
}

impl Record {
    /// Where the record is.
    pub fn position(&self) -> RecordPosition {
        self.position
    }
    /// The record's fields.
    pub fn view(&self) -> RecordRef<'_> {
        RecordRef::trusted(&self.bytes)
    }
    /// The record's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
    /// Payload of event `index` of the batch, sharing the record's memory.
    pub fn event(&self, index: u32) -> Option<Bytes> {
        self.view().event_range(index).map(|r| self.bytes.slice(r))
    }
}

pub(crate) struct SegmentEntry<F: FileSystem> {
    pub header: SegmentHeader,
    pub path: PathBuf,
    pub file: F::File,
    /// A second handle of the active segment, opened before any record is written to it,
    /// for a commit round whose fsync overlaps the previous round's (`group_commit`): each
    /// handle then hears of every failed writeback (Linux reports one to each open file
    /// description), so neither fsync can report success for a failure the other consumed.
    /// Dropped when the segment is sealed: only the active segment needs it.
    overlap_file: parking_lot::Mutex<Option<std::sync::Arc<F::File>>>,
    /// First byte after the last durable record.
    data_end: AtomicU64,
    last_lsn: AtomicU64,
    sealed: AtomicBool,
    view: RwLock<Option<Bytes>>,
    /// Read with positional reads only, never mapped: the file belongs to a writer in another
    /// process, which may truncate it (a salvage, a torn tail cut), and a map of a truncated
    /// file faults the reader (SIGBUS) instead of failing a read.
    positional_only: AtomicBool,
}

impl<F: FileSystem> SegmentEntry<F> {
    pub fn new(
        header: SegmentHeader,
        path: PathBuf,
        file: F::File,
        data_end: u64,
        last_lsn: u64,
    ) -> Self {
        SegmentEntry {
            header,
            path,
            file,
            overlap_file: parking_lot::Mutex::new(None),
            data_end: AtomicU64::new(data_end),
            last_lsn: AtomicU64::new(last_lsn),
            sealed: AtomicBool::new(false),
            view: RwLock::new(None),
            positional_only: AtomicBool::new(false),
        }
    }

    /// Gives the segment its second handle (see `overlap_file`). Call before any record is
    /// written to it.
    pub fn set_overlap_file(&self, file: F::File) {
        *self.overlap_file.lock() = Some(std::sync::Arc::new(file));
    }

    /// The second handle, while the segment has one (not once sealed).
    pub fn overlap_file(&self) -> Option<std::sync::Arc<F::File>> {
        self.overlap_file.lock().clone()
    }

    /// Closes the second handle (at sealing: a sealed segment takes no more commit rounds).
    pub fn drop_overlap_file(&self) {
        self.overlap_file.lock().take();
    }

    /// Whether a commit round may overlap another's fsync in this segment.
    pub fn can_overlap(&self) -> bool {
        self.overlap_file.lock().is_some()
    }

    /// From now on the file is read with positional reads only (see `positional_only`).
    pub fn read_positionally(&self) {
        self.positional_only.store(true, Ordering::Release);
    }

    pub fn number(&self) -> u64 {
        self.header.segment_number
    }

    pub fn data_end(&self) -> u64 {
        self.data_end.load(Ordering::Acquire)
    }

    /// Publishes that records up to `end` (last one `last_lsn`) are durable.
    pub fn publish_durable(&self, end: u64, last_lsn: u64) {
        self.last_lsn.store(last_lsn, Ordering::Release);
        self.data_end.store(end, Ordering::Release);
    }

    /// Keeps a live view of the active segment, so reads need no system call.
    pub fn set_live_view(&self, view: Option<Bytes>) {
        if !self.sealed.load(Ordering::Acquire) {
            *self.view.write() = view;
        }
    }

    /// Gives a sealed segment a new map of its file in place of the one it keeps, so that the
    /// pages the old map faulted in (a checkpoint's scan, reads) are no longer mapped once its
    /// last reader lets go of it: the kernel drops no mapped page from the page cache. The
    /// file never changes once sealed, so both maps show the same bytes. Nothing to do for a
    /// segment read positionally.
    pub fn remap_sealed(&self) -> std::io::Result<()> {
        if !self.sealed.load(Ordering::Acquire)
            || self.positional_only.load(Ordering::Acquire)
            || self.view.read().is_none()
        {
            return Ok(());
        }
        let view = self.file.map()?;
        *self.view.write() = Some(view);
        Ok(())
    }

    /// Marks the segment sealed and keeps `view` (its whole contents) for readers.
    pub fn seal(&self, view: Option<Bytes>) {
        *self.view.write() = view;
        self.sealed.store(true, Ordering::Release);
    }

    pub fn info(&self) -> SegmentInfo {
        SegmentInfo {
            number: self.header.segment_number,
            first_lsn: self.header.first_lsn,
            last_lsn: self.last_lsn.load(Ordering::Acquire),
            path: self.path.clone(),
            data_end: self.data_end(),
            sealed: self.sealed.load(Ordering::Acquire),
            created_unix_nanos: self.header.created_unix_nanos,
            record_salt: self.header.record_salt(),
            clustered: self.header.clustered,
        }
    }

    /// The segment's bytes up to its durable end: the sealed map, or a fresh view.
    /// The segment's durable bytes from `offset` on, and the offset they start at: a slice
    /// of the sealed map (starting at 0), or, for a segment read positionally, only the bytes
    /// from `offset` (so that following a long segment does not read all of it each time).
    pub fn durable_bytes_from(&self, offset: u64) -> Result<(Bytes, u64)> {
        if !self.positional_only.load(Ordering::Acquire) {
            return Ok((self.durable_bytes()?, 0));
        }
        let end = self.data_end();
        let from = offset.min(end);
        // Bounded by the durable end, which was checked against the file when it was set.
        let mut buf = vec![0u8; (end - from) as usize];
        self.file
            .read_exact_at(&mut buf, from)
            .map_err(|e| Error::io("read", &self.path, e))?;
        Ok((Bytes::from(buf), from))
    }

    pub fn durable_bytes(&self) -> Result<Bytes> {
        let end = self.data_end() as usize;
        if self.positional_only.load(Ordering::Acquire) {
            // Bounded by the durable end, which was checked against the file when it was set.
            let mut buf = vec![0u8; end];
            self.file
                .read_exact_at(&mut buf, 0)
                .map_err(|e| Error::io("read", &self.path, e))?;
            return Ok(Bytes::from(buf));
        }
        if let Some(view) = self.view.read().as_ref().filter(|v| v.len() >= end) {
            return Ok(view.slice(..end));
        }
        let view = self
            .file
            .map()
            .map_err(|e| Error::io("map", &self.path, e))?;
        Ok(view.slice(..end.min(view.len())))
    }

    /// Reads and checks the record at `offset`. A record may be as long as the segment's
    /// durable data after it: readers do not apply the writer's `max_record_size`, which may
    /// have been larger when the record was written (docs/format.md §3.1).
    pub fn read_record(&self, offset: u64) -> Result<Record> {
        let end = self.data_end();
        let position = RecordPosition {
            segment: self.number(),
            offset,
        };
        let no_record = || Error::NoSuchRecord {
            segment: position.segment,
            offset,
        };
        if offset < crate::format::SEGMENT_HEADER_LEN as u64 || offset >= end {
            return Err(no_record());
        }
        let view = self
            .view
            .read()
            .as_ref()
            .filter(|v| v.len() as u64 >= end)
            .cloned();
        let bytes = if let Some(view) = view {
            view.slice(offset as usize..end as usize)
        } else {
            let mut len_buf = [0u8; 4];
            self.file
                .read_exact_at(&mut len_buf, offset + REC_LEN_OFFSET as u64)
                .map_err(|e| Error::io("read", &self.path, e))?;
            let len = u64::from(u32::from_le_bytes(len_buf));
            // The length field is untrusted: bound it (by the durable data) before allocating.
            if len == 0 || offset + len > end {
                return Err(self.corrupt(offset, format!("impossible record length {len}")));
            }
            let mut buf = vec![0u8; len as usize];
            self.file
                .read_exact_at(&mut buf, offset)
                .map_err(|e| Error::io("read", &self.path, e))?;
            Bytes::from(buf)
        };
        match decode_record(&bytes, self.header.record_salt(), 0, end - offset) {
            RecordScan::Record(r) => {
                let len = r.len();
                Ok(Record {
                    position,
                    bytes: bytes.slice(..len),
                })
            }
            RecordScan::EndOfData | RecordScan::Commit(_) => Err(no_record()),
            RecordScan::Defect(crate::format::RecordDefect::Checksum) => {
                Err(Error::ChecksumMismatch {
                    segment: position.segment,
                    offset,
                })
            }
            RecordScan::Defect(d) => Err(self.corrupt(offset, d.to_string())),
        }
    }

    fn corrupt(&self, offset: u64, reason: String) -> Error {
        Error::Corruption {
            segment: self.number(),
            offset,
            reason,
        }
    }
}

/// Iterates the records of a segment's bytes from an offset, checking each.
pub struct SegmentRecords {
    segment: u64,
    salt: u64,
    /// The segment's bytes from `base` on.
    bytes: Bytes,
    base: u64,
    /// Position in `bytes` (the segment offset is `base + offset`).
    offset: usize,
    max_len: u64,
    done: bool,
}

impl SegmentRecords {
    /// Records of `bytes`, the segment's bytes from offset `base` on, from segment offset
    /// `offset` (at or after `base`).
    pub(crate) fn new(header: &SegmentHeader, bytes: Bytes, base: u64, offset: u64) -> Self {
        SegmentRecords {
            segment: header.segment_number,
            salt: header.record_salt(),
            bytes,
            base,
            offset: offset.saturating_sub(base) as usize,
            max_len: u64::from(u32::MAX),
            done: false,
        }
    }
}

impl Iterator for SegmentRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done || self.offset >= self.bytes.len() {
                return None;
            }
            let rest = self.bytes.slice(self.offset..);
            let position = RecordPosition {
                segment: self.segment,
                offset: self.base + self.offset as u64,
            };
            let error = match decode_record(&rest, self.salt, 0, self.max_len) {
                RecordScan::Record(r) => {
                    let len = r.len();
                    self.offset += len;
                    return Some(Ok(Record {
                        position,
                        bytes: rest.slice(..len),
                    }));
                }
                // Commit markers hold no events: step over them.
                RecordScan::Commit(_) => {
                    self.offset += crate::format::COMMIT_MARKER_LEN;
                    continue;
                }
                // The bytes run on to the segment's data end: a record must start here.
                RecordScan::EndOfData => Error::Corruption {
                    segment: self.segment,
                    offset: position.offset,
                    reason: format!(
                        "no record where the segment's data runs on to byte {}",
                        self.base + self.bytes.len() as u64
                    ),
                },
                RecordScan::Defect(crate::format::RecordDefect::Checksum) => {
                    Error::ChecksumMismatch {
                        segment: self.segment,
                        offset: position.offset,
                    }
                }
                RecordScan::Defect(d) => Error::Corruption {
                    segment: self.segment,
                    offset: position.offset,
                    reason: d.to_string(),
                },
            };
            self.done = true;
            return Some(Err(error));
        }
    }
}

/// Records read from somewhere other than the segment's file (the layer above's copy of an
/// offloaded segment), checked exactly as a read from the file is.
mod detached;
