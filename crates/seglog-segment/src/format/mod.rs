//! The on-disk format, in one place. Every constant here is a row of
//! [docs/format.md](../../../../docs/format.md); change both together and bump
//! [`FORMAT_VERSION`].
//!
//! Little-endian everywhere. Checksums are CRC32 (IEEE) from `crc32fast`.

pub(crate) mod header;
mod log_id;
mod manifest;
mod record;
mod tail_bound;

pub(crate) use header::random_salt;
pub use header::{HeaderDefect, SegmentHeader};
pub use log_id::{
    LogId, LOG_ID_FILE_LEN, LOG_ID_FILE_NAME, LOG_ID_MAGIC, LOG_ID_TEMP_FILE_NAME, LOG_ID_VERSION,
};
pub use manifest::{ManifestInput, ManifestOutput, ReplacementManifest};
pub(crate) use record::resalt;
pub use record::{
    decode_record, encode_commit_marker, CommitMarker, EncodedRecord, EventBatch, RecordDefect,
    RecordRef, RecordScan,
};
pub use tail_bound::{
    TailBound, TAIL_BOUND_FILE_NAME, TAIL_BOUND_MAGIC, TAIL_BOUND_SLOT_LEN, TAIL_BOUND_SLOT_STRIDE,
    TAIL_BOUND_VERSION,
};

/// First 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"SEGLOGSG";
/// The format version this build writes. Version 2 added compaction (docs/format.md §6): a
/// directory may hold a replacement manifest and its temporary segments, record LSNs may skip
/// inside a segment, and segment numbers need not follow LSN order. Version 3 salts record
/// checksums with a random per-segment salt kept in the header (so no payload can carry a
/// record that checks out) and adds the commit marker record (`KIND_COMMIT`). Version 4 adds
/// clustered segments ([`FLAG_CLUSTERED`]): a compaction output whose records are grouped by
/// execution, so LSNs increase per execution inside it rather than through the file.
/// Version 5 adds the tail bound (`TAIL_BOUND`, docs/format.md §3.6): recovery trusts it only
/// for a segment of version 5 or later, which no build that ignores the file can append to.
pub const FORMAT_VERSION: u16 = 5;
/// The first version whose last segment's zero checks may stop at the tail bound.
pub const TAIL_BOUND_SEGMENT_VERSION: u16 = 5;
/// The first version whose headers may carry [`FLAG_CLUSTERED`].
pub const CLUSTERED_VERSION: u16 = 4;
/// The first version whose headers carry a random record salt.
pub const SALTED_HEADER_VERSION: u16 = 3;
/// The oldest format version this build reads. A version-1 log is a version-2 log that was
/// never compacted.
pub const OLDEST_READABLE_VERSION: u16 = 1;

/// Size of the segment header; the first record starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Segment header: offset of `format_version` (u16).
pub const HDR_VERSION_OFFSET: usize = 8;
/// Segment header: offset of `header_len` (u16).
pub const HDR_LEN_OFFSET: usize = 10;
/// Segment header flag (version 3): the segment was written by compaction, so its record
/// LSNs may skip (erased records leave gaps). The writer never appends to such a segment.
pub const FLAG_COMPACTED: u32 = 1;
/// Segment header flag (version 4): the segment is *clustered*. Written by locality
/// compaction, always with [`FLAG_COMPACTED`]: its records are grouped by execution (groups
/// in the order of their first LSN, each group's records in LSN order), so LSNs increase per
/// execution, not through the file. Every LSN still lies in `[first_lsn, next segment's
/// first_lsn)`, so the segment table's order by first LSN holds.
pub const FLAG_CLUSTERED: u32 = 2;
/// Segment header: offset of `flags` (u32).
pub const HDR_FLAGS_OFFSET: usize = 12;
/// Segment header: offset of `segment_number` (u64).
pub const HDR_SEGMENT_NUMBER_OFFSET: usize = 16;
/// Segment header: offset of `first_lsn` (u64).
pub const HDR_FIRST_LSN_OFFSET: usize = 24;
/// Segment header: offset of `created_unix_nanos` (i64).
pub const HDR_CREATED_OFFSET: usize = 32;
/// Segment header: offset of `record_salt` (u64, version 3 on; reserved zeros before).
pub const HDR_SALT_OFFSET: usize = 40;
/// Segment header: offset of `header_crc` (u32), which covers bytes `0..HDR_CRC_OFFSET`.
pub const HDR_CRC_OFFSET: usize = 60;

/// Size of a record's fixed header; the execution id starts here.
pub const RECORD_HEADER_LEN: usize = 48;
/// Record: offset of `record_len` (u32, the whole record).
pub const REC_LEN_OFFSET: usize = 0;
/// Record: offset of `crc` (u32).
pub const REC_CRC_OFFSET: usize = 4;
/// Record: offset of `lsn` (u64).
pub const REC_LSN_OFFSET: usize = 8;
/// Record: offset of `durable_through_lsn` (u64).
pub const REC_DURABLE_THROUGH_OFFSET: usize = 16;
/// Record: offset of `first_seq` (u64).
pub const REC_FIRST_SEQ_OFFSET: usize = 24;
/// Record: offset of `timestamp_unix_nanos` (i64).
pub const REC_TIMESTAMP_OFFSET: usize = 32;
/// Record: offset of `kind` (u8). Everything from here on is fixed when the record is
/// encoded; the fields before it may be filled in later, under the writer's lock.
pub const REC_KIND_OFFSET: usize = 40;
/// Record: offset of `encoding` (u8).
pub const REC_ENCODING_OFFSET: usize = 41;
/// Record: offset of `execution_id_len` (u8).
pub const REC_EXECUTION_LEN_OFFSET: usize = 42;
/// Record: offset of `tenant_id_len` (u8).
pub const REC_TENANT_LEN_OFFSET: usize = 43;
/// Record: offset of `event_count` (u32).
pub const REC_EVENT_COUNT_OFFSET: usize = 44;
/// Bytes per entry of the event length table (u32).
pub const EVENT_LEN_SIZE: usize = 4;

/// `kind` of a record holding events of one execution.
pub const KIND_EVENTS: u8 = 1;
/// `kind` of a commit marker: a bare 48-byte record header with no ids and no events, whose
/// `durable_through_lsn` vouches for every record before it (written when a log is closed).
pub const KIND_COMMIT: u8 = 2;
/// Length of a commit marker.
pub const COMMIT_MARKER_LEN: usize = RECORD_HEADER_LEN;

/// LSNs are below this (2^62): a record or header claiming more is invalid, so that no
/// arithmetic on an LSN read from a file can overflow, and the writer stops (with an error)
/// long before it could wrap.
pub const LSN_LIMIT: u64 = 1 << 62;

/// Longest execution or tenant id, in bytes (the length is a u8 in the record header).
pub const MAX_ID_LEN: usize = 255;
/// Default `max_record_size`: 64 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: u32 = 64 << 20;
/// Upper bound on any configured `max_record_size`: 1 GiB.
pub const MAX_RECORD_SIZE_LIMIT: u32 = 1 << 30;
/// Default segment size at which the writer rolls to a new segment: 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// File name suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".seg";
/// Digits in a segment file name (enough for any u64).
pub const SEGMENT_NAME_DIGITS: usize = 20;
/// Name of the lock file in a log directory.
pub const LOCK_FILE_NAME: &str = "LOCK";
/// A file that marks a directory as one a restore is still writing (docs/format.md §1): no
/// open, verification or tool reads such a directory (it may hold part of a log).
pub const RESTORE_MARKER_FILE_NAME: &str = "RESTORE_IN_PROGRESS";
/// The next segment, prepared ahead by the writer (zeros, no header) and renamed to a
/// segment's name at the roll (docs/format.md §1); not part of the log.
pub const PREPARED_SEGMENT_FILE_NAME: &str = "NEXT_SEGMENT";
/// The prefix of a segment a salvage cuts, written beside it and renamed over it (the cut is
/// never made in place: other names of the segment, a backup's hard links, keep their
/// bytes); a leftover is removed by the next writer's open (docs/format.md §1).
pub const SALVAGE_TEMP_FILE_NAME: &str = "SALVAGE.tmp";
/// Suffix added to a segment's file name while compaction writes it; such a file is not part
/// of the log until a committed replacement manifest renames it.
pub const REPLACEMENT_TEMP_SUFFIX: &str = ".compacting";
/// Name of the committed replacement manifest (docs/format.md §6).
pub const MANIFEST_FILE_NAME: &str = "REPLACE";
/// Name the manifest is written under before the rename that commits it.
pub const MANIFEST_TEMP_FILE_NAME: &str = "REPLACE.tmp";
/// First 8 bytes of a replacement manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"SEGLOGRM";
/// Fixed part of a manifest: magic, version, reserved, input count, output count.
pub const MANIFEST_HEADER_LEN: usize = 24;
/// Bytes per manifest input entry: segment number, first LSN.
pub const MANIFEST_INPUT_LEN: usize = 16;
/// Bytes per manifest output entry: segment number, first LSN, length.
pub const MANIFEST_OUTPUT_LEN: usize = 24;
/// Largest manifest this build reads (bounds the read of an untrusted file).
pub const MANIFEST_MAX_LEN: u64 = 16 << 20;

/// The file name of the segment whose first record has `first_lsn`.
pub fn segment_file_name(first_lsn: u64) -> String {
    format!(
        "{first_lsn:0width$}{SEGMENT_SUFFIX}",
        width = SEGMENT_NAME_DIGITS
    )
}

/// Parses a segment file name back to its first LSN. `None` for names that are not
/// segment files at all; `Some(Err(()))` for a `.seg` name with a malformed number.
pub fn parse_segment_file_name(name: &str) -> Option<Result<u64, ()>> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Err(()));
    }
    Some(digits.parse::<u64>().map_err(|_| ()))
}

/// Reads a little-endian u32 at `at`. The caller has checked the bounds.
pub(crate) fn le_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads a little-endian u64 at `at`. The caller has checked the bounds.
pub(crate) fn le_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads a little-endian u16 at `at`. The caller has checked the bounds.
pub(crate) fn le_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_in_lsn_order_and_round_trip() {
        let names: Vec<String> = [1u64, 9, 10, 52_213, u64::MAX]
            .iter()
            .map(|&l| segment_file_name(l))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (name, lsn) in names.iter().zip([1u64, 9, 10, 52_213, u64::MAX]) {
            assert_eq!(parse_segment_file_name(name), Some(Ok(lsn)));
        }
        assert_eq!(parse_segment_file_name("LOCK"), None);
        assert_eq!(parse_segment_file_name("12.seg"), Some(Err(())));
        assert_eq!(
            parse_segment_file_name("0000000000000000000x.seg"),
            Some(Err(()))
        );
    }
}
