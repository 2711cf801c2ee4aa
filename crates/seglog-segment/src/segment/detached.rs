//! [`Record::from_detached_bytes`]: a record whose bytes came from a copy of its segment
//! (object storage), checked as [`super::SegmentEntry::read_record`] checks one read from
//! the file: its length within the bytes, its checksum salted with its segment's salt (a
//! record of another segment, or of another version of this one, fails it).

use super::{Record, RecordPosition};
use crate::format::{decode_record, RecordDefect, RecordScan};
use crate::{Error, Result};
use bytes::Bytes;

impl Record {
    /// Checks and returns the record at `position` whose bytes start `bytes` (which may run
    /// past the record's end). `record_salt` is its segment header's salt; `max_len` bounds
    /// the record's length (the segment's data after `position.offset`).
    ///
    /// # Errors
    /// [`Error::NoSuchRecord`] when `bytes` start with no record (the end of data, a commit
    /// marker), [`Error::ChecksumMismatch`], [`Error::Corruption`] for any other defect,
    /// a truncated record included.
    pub fn from_detached_bytes(
        position: RecordPosition,
        bytes: Bytes,
        record_salt: u64,
        max_len: u64,
    ) -> Result<Record> {
        match decode_record(&bytes, record_salt, 0, max_len) {
            RecordScan::Record(r) => {
                let len = r.len();
                Ok(Record {
                    position,
                    bytes: bytes.slice(..len),
                })
            }
            RecordScan::EndOfData | RecordScan::Commit(_) => Err(Error::NoSuchRecord {
                segment: position.segment,
                offset: position.offset,
            }),
            RecordScan::Defect(RecordDefect::Checksum) => Err(Error::ChecksumMismatch {
                segment: position.segment,
                offset: position.offset,
            }),
            RecordScan::Defect(d) => Err(Error::Corruption {
                segment: position.segment,
                offset: position.offset,
                reason: d.to_string(),
            }),
        }
    }
}
