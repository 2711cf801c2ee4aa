//! Records: one append (a single event or a batch) of one execution (docs/format.md §3).
//!
//! Encoding happens in two steps so the writer's lock covers as little work as possible:
//! [`EncodedRecord::new`] lays out everything known to the caller and checksums the bulk of
//! it; [`EncodedRecord::seal`] patches in the LSN, the durability hint and the segment salt
//! under the writer's lock and combines the checksums (O(1) in the payload size).

use super::*;
use crc32fast::Hasher;

/// The caller's view of a record to append.
#[derive(Debug, Clone, Copy)]
pub struct EventBatch<'a, P> {
    /// Payload encoding tag, opaque to the segment layer (`0` = raw bytes).
    pub encoding: u8,
    /// Execution (stream) id, 1..=255 bytes.
    pub execution_id: &'a [u8],
    /// Tenant id, 1..=255 bytes.
    pub tenant_id: &'a [u8],
    /// Per-execution sequence number of the first event.
    pub first_seq: u64,
    /// Append time, nanoseconds since the Unix epoch.
    pub timestamp_unix_nanos: i64,
    /// The events, at least one.
    pub payloads: &'a [P],
}

/// A record laid out in memory, waiting for its LSN.
#[derive(Debug, Clone)]
pub struct EncodedRecord {
    bytes: Vec<u8>,
    /// CRC state over `bytes[REC_KIND_OFFSET..]`, the part fixed at encode time, for a
    /// record whose body is longer than [`COMBINED_CRC_MIN_BODY`]; `None` for a shorter one.
    body_crc: Option<Hasher>,
}

/// The body length from which a record's checksum is sealed by combining a CRC of the body,
/// taken at encode time, with one of the fields set at seal time. Sealing runs under the
/// commit lock: a CRC combine costs ~40–120 ns whatever the length, hashing the body again
/// ~20 ns per KiB (measured with crc32fast, pclmulqdq), so short records are hashed whole.
const COMBINED_CRC_MIN_BODY: usize = 2048;

impl EncodedRecord {
    /// Lays out `batch`, refusing it when it breaks a limit.
    ///
    /// # Errors
    /// [`crate::Error::InvalidRecord`] for a bad id or an empty batch,
    /// [`crate::Error::TooLarge`] when the record would exceed `max_record_size`.
    pub fn new<P: AsRef<[u8]>>(
        batch: &EventBatch<'_, P>,
        max_record_size: u32,
    ) -> crate::Result<Self> {
        let exec_len = batch.execution_id.len();
        let tenant_len = batch.tenant_id.len();
        if exec_len == 0 || exec_len > MAX_ID_LEN {
            return Err(crate::Error::InvalidRecord(
                "execution id must be 1..=255 bytes",
            ));
        }
        if tenant_len == 0 || tenant_len > MAX_ID_LEN {
            return Err(crate::Error::InvalidRecord(
                "tenant id must be 1..=255 bytes",
            ));
        }
        if batch.payloads.is_empty() {
            return Err(crate::Error::InvalidRecord(
                "a batch needs at least one event",
            ));
        }
        let count = batch.payloads.len() as u64;
        let payload_bytes: u64 = batch.payloads.iter().map(|p| p.as_ref().len() as u64).sum();
        let size = (RECORD_HEADER_LEN + exec_len + tenant_len) as u64
            + count * EVENT_LEN_SIZE as u64
            + payload_bytes;
        if size > u64::from(max_record_size) {
            return Err(crate::Error::TooLarge {
                size,
                max: u64::from(max_record_size),
            });
        }
        // `size` fits in u32 from here on: max_record_size is a u32.
        let mut bytes = Vec::with_capacity(size as usize);
        bytes.extend_from_slice(&(size as u32).to_le_bytes());
        bytes.extend_from_slice(&[0u8; 4 + 8 + 8]); // crc, lsn, durable_through: sealed later
        bytes.extend_from_slice(&batch.first_seq.to_le_bytes());
        bytes.extend_from_slice(&batch.timestamp_unix_nanos.to_le_bytes());
        bytes.push(KIND_EVENTS);
        bytes.push(batch.encoding);
        bytes.push(exec_len as u8);
        bytes.push(tenant_len as u8);
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
        bytes.extend_from_slice(batch.execution_id);
        bytes.extend_from_slice(batch.tenant_id);
        for p in batch.payloads {
            bytes.extend_from_slice(&(p.as_ref().len() as u32).to_le_bytes());
        }
        for p in batch.payloads {
            bytes.extend_from_slice(p.as_ref());
        }
        let body = &bytes[REC_KIND_OFFSET..];
        let body_crc = (body.len() >= COMBINED_CRC_MIN_BODY).then(|| {
            let mut crc = Hasher::new();
            crc.update(body);
            crc
        });
        Ok(EncodedRecord { bytes, body_crc })
    }

    /// Total size of the record in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a record has at least its header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Sets the sequence number of the first event (for callers that assign it late, under
    /// their own lock).
    pub fn set_first_seq(&mut self, first_seq: u64) {
        self.bytes[REC_FIRST_SEQ_OFFSET..REC_FIRST_SEQ_OFFSET + 8]
            .copy_from_slice(&first_seq.to_le_bytes());
    }

    /// Sets the append timestamp, nanoseconds since the Unix epoch.
    pub fn set_timestamp_unix_nanos(&mut self, timestamp: i64) {
        self.bytes[REC_TIMESTAMP_OFFSET..REC_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&timestamp.to_le_bytes());
    }

    /// Number of events in the record.
    pub fn event_count(&self) -> u32 {
        le_u32(&self.bytes, REC_EVENT_COUNT_OFFSET)
    }

    /// Fills in the fields only the writer knows and the checksum (salted with the target
    /// segment's [`super::SegmentHeader::record_salt`]); returns the final bytes.
    pub fn seal(mut self, salt: u64, lsn: u64, durable_through_lsn: u64) -> Vec<u8> {
        self.bytes[REC_LSN_OFFSET..REC_LSN_OFFSET + 8].copy_from_slice(&lsn.to_le_bytes());
        self.bytes[REC_DURABLE_THROUGH_OFFSET..REC_DURABLE_THROUGH_OFFSET + 8]
            .copy_from_slice(&durable_through_lsn.to_le_bytes());
        let mut crc = Hasher::new();
        crc.update(&salt.to_le_bytes());
        crc.update(&self.bytes[REC_LEN_OFFSET..REC_LEN_OFFSET + 4]);
        match &self.body_crc {
            Some(body) => {
                crc.update(&self.bytes[REC_LSN_OFFSET..REC_KIND_OFFSET]);
                crc.combine(body);
            }
            None => crc.update(&self.bytes[REC_LSN_OFFSET..]),
        }
        let crc = crc.finalize();
        self.bytes[REC_CRC_OFFSET..REC_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        self.bytes
    }
}

/// Why the bytes at a position are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordDefect {
    /// The record runs past the end of the available bytes.
    Truncated,
    /// `record_len` is impossible (too small, or over the reader's limit).
    BadLength(u32),
    /// The CRC does not match (or the record belongs to another segment).
    Checksum,
    /// A `kind` this version does not know.
    UnknownKind(u8),
    /// Header fields contradict each other.
    Layout(&'static str),
    /// The LSN does not increase.
    LsnOrder,
}

impl std::fmt::Display for RecordDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordDefect::Truncated => write!(f, "record runs past the end of the segment"),
            RecordDefect::BadLength(n) => write!(f, "impossible record length {n}"),
            RecordDefect::Checksum => write!(f, "record checksum mismatch"),
            RecordDefect::UnknownKind(k) => write!(f, "unknown record kind {k}"),
            RecordDefect::Layout(what) => write!(f, "inconsistent record header: {what}"),
            RecordDefect::LsnOrder => write!(f, "record LSN does not increase"),
        }
    }
}

/// A valid commit marker: it holds no events, and vouches that every record up to
/// `durable_through_lsn` was on stable storage when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitMarker {
    /// The marker's own LSN.
    pub lsn: u64,
    /// Every record up to this LSN was durable when the marker was written.
    pub durable_through_lsn: u64,
}

/// The bytes of a commit marker for a segment salted with `salt`.
pub fn encode_commit_marker(
    salt: u64,
    lsn: u64,
    durable_through_lsn: u64,
) -> [u8; COMMIT_MARKER_LEN] {
    let mut b = [0u8; COMMIT_MARKER_LEN];
    b[REC_LEN_OFFSET..REC_LEN_OFFSET + 4]
        .copy_from_slice(&(COMMIT_MARKER_LEN as u32).to_le_bytes());
    b[REC_LSN_OFFSET..REC_LSN_OFFSET + 8].copy_from_slice(&lsn.to_le_bytes());
    b[REC_DURABLE_THROUGH_OFFSET..REC_DURABLE_THROUGH_OFFSET + 8]
        .copy_from_slice(&durable_through_lsn.to_le_bytes());
    b[REC_KIND_OFFSET] = KIND_COMMIT;
    let crc = record_crc(&b, salt);
    b[REC_CRC_OFFSET..REC_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

/// What [`decode_record`] found at a position.
#[derive(Debug, Clone, Copy)]
pub enum RecordScan<'a> {
    /// A valid record of events.
    Record(RecordRef<'a>),
    /// A valid commit marker, [`COMMIT_MARKER_LEN`] bytes long. Not an event record: readers
    /// of events step over it.
    Commit(CommitMarker),
    /// No record starts here: `record_len` is zero or fewer than 4 bytes remain.
    EndOfData,
    /// Something that is not a valid record.
    Defect(RecordDefect),
}

/// Decodes the record at the start of `buf` (which runs to the end of the known data).
///
/// `salt` is the segment's [`super::SegmentHeader::record_salt`], `min_lsn` the smallest acceptable LSN (previous + 1) and
/// `max_len` the largest record the reader accepts. Never allocates, never panics: `buf`
/// can be any bytes.
pub fn decode_record(buf: &[u8], salt: u64, min_lsn: u64, max_len: u64) -> RecordScan<'_> {
    if buf.len() < 4 {
        return RecordScan::EndOfData;
    }
    let len = le_u32(buf, REC_LEN_OFFSET);
    if len == 0 {
        return RecordScan::EndOfData;
    }
    if (len as usize) < RECORD_HEADER_LEN || u64::from(len) > max_len {
        return RecordScan::Defect(RecordDefect::BadLength(len));
    }
    let Some(rec) = buf.get(..len as usize) else {
        return RecordScan::Defect(RecordDefect::Truncated);
    };
    match rec[REC_KIND_OFFSET] {
        KIND_EVENTS => decode_events(rec, salt, min_lsn),
        KIND_COMMIT => decode_commit(rec, salt, min_lsn),
        // An unknown kind with a good CRC is reported apart: this build cannot read it.
        kind => RecordScan::Defect(if checksum_ok(rec, salt) {
            RecordDefect::UnknownKind(kind)
        } else {
            RecordDefect::Checksum
        }),
    }
}

/// The checks every valid record passes once its own layout is known: checksum, LSN order.
fn check_common(rec: &[u8], salt: u64, min_lsn: u64) -> Option<RecordDefect> {
    if !checksum_ok(rec, salt) {
        return Some(RecordDefect::Checksum);
    }
    let lsn = le_u64(rec, REC_LSN_OFFSET);
    if lsn >= LSN_LIMIT {
        return Some(RecordDefect::Layout("lsn out of range"));
    }
    if le_u64(rec, REC_DURABLE_THROUGH_OFFSET) >= lsn {
        return Some(RecordDefect::Layout("durable_through_lsn ≥ lsn"));
    }
    if lsn < min_lsn {
        return Some(RecordDefect::LsnOrder);
    }
    None
}

fn decode_commit(rec: &[u8], salt: u64, min_lsn: u64) -> RecordScan<'_> {
    if rec.len() != COMMIT_MARKER_LEN || rec[REC_KIND_OFFSET + 1..].iter().any(|&b| b != 0) {
        return RecordScan::Defect(RecordDefect::Layout("commit marker with a body"));
    }
    if let Some(defect) = check_common(rec, salt, min_lsn) {
        return RecordScan::Defect(defect);
    }
    RecordScan::Commit(CommitMarker {
        lsn: le_u64(rec, REC_LSN_OFFSET),
        durable_through_lsn: le_u64(rec, REC_DURABLE_THROUGH_OFFSET),
    })
}

fn decode_events(rec: &[u8], salt: u64, min_lsn: u64) -> RecordScan<'_> {
    let len = rec.len() as u32;
    if rec.len() < RECORD_HEADER_LEN + 2 + EVENT_LEN_SIZE {
        return RecordScan::Defect(RecordDefect::BadLength(len));
    }
    let e = usize::from(rec[REC_EXECUTION_LEN_OFFSET]);
    let t = usize::from(rec[REC_TENANT_LEN_OFFSET]);
    let n = le_u32(rec, REC_EVENT_COUNT_OFFSET) as usize;
    if e == 0 || t == 0 || n == 0 {
        return RecordScan::Defect(RecordDefect::Layout("empty id or zero events"));
    }
    // n ≤ len/4 keeps the arithmetic below far from overflow.
    let Some(table_end) = n
        .checked_mul(EVENT_LEN_SIZE)
        .and_then(|t4| t4.checked_add(RECORD_HEADER_LEN + e + t))
        .filter(|&end| end <= rec.len())
    else {
        return RecordScan::Defect(RecordDefect::Layout("event table past record end"));
    };
    let lengths = &rec[RECORD_HEADER_LEN + e + t..table_end];
    let payload_sum: u64 = lengths
        .chunks_exact(EVENT_LEN_SIZE)
        .map(|c| u64::from(le_u32(c, 0)))
        .sum();
    if payload_sum != (rec.len() - table_end) as u64 {
        return RecordScan::Defect(RecordDefect::Layout("event lengths do not add up"));
    }
    if let Some(defect) = check_common(rec, salt, min_lsn) {
        return RecordScan::Defect(defect);
    }
    RecordScan::Record(RecordRef { bytes: rec })
}

/// The checksum a whole record must carry in a segment salted with `salt`.
fn record_crc(rec: &[u8], salt: u64) -> u32 {
    let mut crc = Hasher::new();
    crc.update(&salt.to_le_bytes());
    crc.update(&rec[REC_LEN_OFFSET..REC_LEN_OFFSET + 4]);
    crc.update(&rec[REC_LSN_OFFSET..]);
    crc.finalize()
}

fn checksum_ok(rec: &[u8], salt: u64) -> bool {
    record_crc(rec, salt) == le_u32(rec, REC_CRC_OFFSET)
}

/// Rewrites the checksum of a valid record's bytes for a segment salted with `salt`, so the
/// record can move to another segment (compaction). Nothing else in a record depends on
/// where it is.
pub(crate) fn resalt(rec: &mut [u8], salt: u64) {
    if rec.len() >= RECORD_HEADER_LEN {
        let crc = record_crc(rec, salt);
        rec[REC_CRC_OFFSET..REC_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// A valid record, borrowed from a segment's bytes. Only [`decode_record`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    bytes: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// Wraps bytes that [`decode_record`] has already accepted (and that were kept whole).
    pub(crate) fn trusted(bytes: &'a [u8]) -> Self {
        RecordRef { bytes }
    }

    /// The whole record.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    /// Always false: a valid record is never empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// The record's LSN.
    pub fn lsn(&self) -> u64 {
        le_u64(self.bytes, REC_LSN_OFFSET)
    }
    /// Highest LSN known durable when this record was written.
    pub fn durable_through_lsn(&self) -> u64 {
        le_u64(self.bytes, REC_DURABLE_THROUGH_OFFSET)
    }
    /// The stored CRC.
    pub fn crc(&self) -> u32 {
        le_u32(self.bytes, REC_CRC_OFFSET)
    }
    /// The payload encoding tag.
    pub fn encoding(&self) -> u8 {
        self.bytes[REC_ENCODING_OFFSET]
    }
    /// Number of events.
    pub fn event_count(&self) -> u32 {
        le_u32(self.bytes, REC_EVENT_COUNT_OFFSET)
    }
    /// Sequence number of the first event.
    pub fn first_seq(&self) -> u64 {
        le_u64(self.bytes, REC_FIRST_SEQ_OFFSET)
    }
    /// Sequence number of the last event.
    pub fn last_seq(&self) -> u64 {
        self.first_seq()
            .saturating_add(u64::from(self.event_count()).saturating_sub(1))
    }
    /// Append time, nanoseconds since the Unix epoch.
    pub fn timestamp_unix_nanos(&self) -> i64 {
        le_u64(self.bytes, REC_TIMESTAMP_OFFSET) as i64
    }
    /// Execution id bytes.
    pub fn execution_id(&self) -> &'a [u8] {
        let e = usize::from(self.bytes[REC_EXECUTION_LEN_OFFSET]);
        &self.bytes[RECORD_HEADER_LEN..RECORD_HEADER_LEN + e]
    }
    /// Tenant id bytes.
    pub fn tenant_id(&self) -> &'a [u8] {
        let e = usize::from(self.bytes[REC_EXECUTION_LEN_OFFSET]);
        let t = usize::from(self.bytes[REC_TENANT_LEN_OFFSET]);
        &self.bytes[RECORD_HEADER_LEN + e..RECORD_HEADER_LEN + e + t]
    }
    /// Total payload bytes of all events.
    pub fn payload_len(&self) -> usize {
        self.bytes.len() - self.table_end()
    }
    fn table_end(&self) -> usize {
        let e = usize::from(self.bytes[REC_EXECUTION_LEN_OFFSET]);
        let t = usize::from(self.bytes[REC_TENANT_LEN_OFFSET]);
        RECORD_HEADER_LEN + e + t + self.event_count() as usize * EVENT_LEN_SIZE
    }
    /// The event payloads, in order.
    pub fn events(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bytes = self.bytes;
        let table_start = self.table_end() - self.event_count() as usize * EVENT_LEN_SIZE;
        let table = &bytes[table_start..self.table_end()];
        let mut at = self.table_end();
        table.chunks_exact(EVENT_LEN_SIZE).map(move |c| {
            let n = le_u32(c, 0) as usize;
            // decode_record checked that the lengths add up to the payload area.
            let ev = bytes.get(at..at + n).unwrap_or(&[]);
            at += n;
            ev
        })
    }
    /// Byte range of event `index`'s payload within the record, if it exists.
    pub fn event_range(&self, index: u32) -> Option<std::ops::Range<usize>> {
        if index >= self.event_count() {
            return None;
        }
        let table_start = self.table_end() - self.event_count() as usize * EVENT_LEN_SIZE;
        let mut at = self.table_end();
        for i in 0..index as usize {
            at += le_u32(self.bytes, table_start + i * EVENT_LEN_SIZE) as usize;
        }
        let n = le_u32(self.bytes, table_start + index as usize * EVENT_LEN_SIZE) as usize;
        Some(at..at + n)
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
