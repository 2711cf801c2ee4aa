//! Checkpoint bytes ⇄ records. Pure functions; the decoder trusts nothing it reads.

use super::entries::{self, Previous, MIN_ENTRY_LEN_V2};
use super::{
    CheckpointDefect, FLAG_PREFIX, HEADER_LEN, MAGIC, RECORD_ENTRY_LEN, TRAILER_LEN, VERSION,
};
use seglog_segment::SegmentInfo;

/// One record of the segment, as the checkpoint lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Index of the execution id in the string table.
    pub execution: u32,
    /// Index of the tenant id in the string table.
    pub tenant: u32,
    /// Byte offset of the record in the segment.
    pub offset: u32,
    /// Events in the record.
    pub event_count: u32,
    /// Sequence of its first event.
    pub first_seq: u64,
    /// The record's LSN.
    pub lsn: u64,
    /// The record's timestamp.
    pub timestamp_unix_nanos: i64,
}

/// A decoded, checked checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCheckpoint {
    /// Execution and tenant ids.
    pub strings: Vec<String>,
    /// Records in log order.
    pub records: Vec<CheckpointRecord>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Encodes a checkpoint of `segment` (a sealed segment: all of its `data_end` bytes).
pub fn encode(segment: &SegmentInfo, cp: &DecodedCheckpoint) -> Vec<u8> {
    encode_with(segment, VERSION, 0, segment.data_end, cp)
}

/// Encodes a version-1 checkpoint (40-byte entries), as builds before version 2 wrote them:
/// for tests that this build still reads them.
#[cfg(test)]
pub(super) fn encode_v1(segment: &SegmentInfo, cp: &DecodedCheckpoint) -> Vec<u8> {
    encode_with(segment, 1, 0, segment.data_end, cp)
}

/// Encodes a *prefix* checkpoint of `segment` (format.md §5.1): it lists the records of the
/// segment's first `end` bytes, which end with a commit marker.
pub fn encode_prefix(segment: &SegmentInfo, end: u64, cp: &DecodedCheckpoint) -> Vec<u8> {
    encode_with(segment, VERSION, FLAG_PREFIX, end, cp)
}

fn encode_with(
    segment: &SegmentInfo,
    version: u16,
    flags: u32,
    data_end: u64,
    cp: &DecodedCheckpoint,
) -> Vec<u8> {
    let mut body = Vec::new();
    for s in &cp.strings {
        // Ids are at most 255 bytes (the segment format's limit).
        let bytes = &s.as_bytes()[..s.len().min(255)];
        body.push(bytes.len() as u8);
        body.extend_from_slice(bytes);
    }
    if version == 1 {
        #[cfg(test)]
        for r in &cp.records {
            entries::put_v1(&mut body, r);
        }
    } else {
        let mut prev = Previous::new(segment.first_lsn);
        for r in &cp.records {
            entries::put_v2(&mut body, r, &mut prev);
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + TRAILER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&segment.number.to_le_bytes());
    out.extend_from_slice(&segment.first_lsn.to_le_bytes());
    out.extend_from_slice(&data_end.to_le_bytes());
    out.extend_from_slice(&(cp.records.len() as u32).to_le_bytes());
    out.extend_from_slice(&(cp.strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&body);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&segment.record_salt.to_le_bytes());
    crc.update(&body);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out
}

/// Decodes `bytes` and checks that they describe `segment`, a sealed segment, whole. `Err`
/// says why not.
///
/// # Errors
/// Why the checkpoint cannot be used; [`CheckpointDefect::Stale`] when it is a valid
/// checkpoint of another version of the segment (or a prefix checkpoint, §5.1). The caller
/// scans the segment instead.
pub fn decode(bytes: &[u8], segment: &SegmentInfo) -> Result<DecodedCheckpoint, CheckpointDefect> {
    decode_as(bytes, segment, Coverage::Whole)
}

/// Decodes a prefix checkpoint (format.md §5.1) of `segment`, the last segment of the log,
/// whose file is `segment.data_end` bytes long: the records it lists, and where the prefix
/// they come from ends. The caller (recovery) still checks that a commit marker ends the
/// prefix there.
///
/// # Errors
/// As [`decode`]; [`CheckpointDefect::Stale`] also for a checkpoint of a whole segment and
/// for a prefix longer than the file (the segment was cut).
pub fn decode_prefix(
    bytes: &[u8],
    segment: &SegmentInfo,
) -> Result<(DecodedCheckpoint, u64), CheckpointDefect> {
    let end = bytes
        .get(32..40)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let cp = decode_as(bytes, segment, Coverage::Prefix)?;
    Ok((cp, end))
}

/// What a checkpoint must cover of its segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coverage {
    /// All of a sealed segment: `segment_data_end` is the file's length.
    Whole,
    /// The first `segment_data_end` bytes, at most the file's length (flag `PREFIX`).
    Prefix,
}

fn decode_as(
    bytes: &[u8],
    segment: &SegmentInfo,
    coverage: Coverage,
) -> Result<DecodedCheckpoint, CheckpointDefect> {
    let h = bytes.get(..HEADER_LEN).ok_or(CheckpointDefect::Truncated)?;
    if h[..8] != MAGIC {
        return Err(CheckpointDefect::BadMagic);
    }
    if crc32fast::hash(&h[..60]) != u32_at(h, 60).unwrap_or(0) {
        return Err(CheckpointDefect::HeaderChecksum);
    }
    let field = |at| u64_at(h, at).unwrap_or(0);
    let version = u16::from_le_bytes([h[8], h[9]]);
    if !(version == 1 || version == VERSION)
        || usize::from(u16::from_le_bytes([h[10], h[11]])) != HEADER_LEN
    {
        return Err(CheckpointDefect::UnsupportedVersion);
    }
    let flags = u32_at(h, 12).unwrap_or(0);
    if flags & !FLAG_PREFIX != 0 {
        return Err("unknown flag bits".into());
    }
    // What the records must lie inside: the whole segment, or the prefix.
    let data_end = field(32);
    let fits = match coverage {
        Coverage::Whole => flags == 0 && data_end == segment.data_end,
        Coverage::Prefix => flags == FLAG_PREFIX && data_end <= segment.data_end,
    };
    if (field(16), field(24)) != (segment.number, segment.first_lsn) || !fits {
        return Err(CheckpointDefect::Stale);
    }
    let record_count = u32_at(h, 40).unwrap_or(0) as usize;
    let string_count = u32_at(h, 44).unwrap_or(0) as usize;
    let body_len = usize::try_from(field(48)).map_err(|_| "body length overflows")?;
    if HEADER_LEN
        .checked_add(body_len)
        .and_then(|n| n.checked_add(TRAILER_LEN))
        != Some(bytes.len())
    {
        return Err("length does not match its header".into());
    }
    let body = &bytes[HEADER_LEN..HEADER_LEN + body_len];
    // Salted with the segment's record salt: a checkpoint of another segment that happens to
    // have the same number, first LSN and length (numbers of removed segments can come back)
    // fails here.
    let mut crc = crc32fast::Hasher::new();
    crc.update(&segment.record_salt.to_le_bytes());
    crc.update(body);
    if crc.finalize() != u32_at(bytes, HEADER_LEN + body_len).unwrap_or(0) {
        return Err(CheckpointDefect::BodyChecksum);
    }
    // Counts are bounded by the body they must fit in before anything is allocated: each
    // entry takes at least its version's least size, each string at least a byte.
    let entry_len = if version == 1 {
        RECORD_ENTRY_LEN
    } else {
        MIN_ENTRY_LEN_V2
    };
    let records_len = record_count
        .checked_mul(entry_len)
        .filter(|&n| n <= body.len())
        .ok_or("record count too large")?;
    if string_count > body.len() - records_len {
        return Err("string count too large".into());
    }
    let mut strings = Vec::with_capacity(string_count);
    let mut seen = std::collections::HashSet::with_capacity(string_count);
    let mut at = 0usize;
    for _ in 0..string_count {
        let len = usize::from(*body.get(at).ok_or("string table truncated")?);
        let s = body
            .get(at + 1..at + 1 + len)
            .ok_or("string table truncated")?;
        // Each id once: two entries of one id would make two executions of it.
        if !seen.insert(s) {
            return Err("string table holds an id twice".into());
        }
        strings.push(String::from_utf8(s.to_vec()).map_err(|_| "id is not UTF-8")?);
        at += 1 + len;
    }
    if version == 1 && body.len() - at != records_len {
        return Err("record table size mismatch".into());
    }
    let mut records = Vec::with_capacity(record_count);
    let mut prev_lsn = segment.first_lsn.saturating_sub(1);
    // A clustered segment (format.md §3.5): LSNs increase per execution. (That no LSN comes
    // twice across executions is checked where the segment itself is read and when it is
    // built; a set of every LSN here cost a cold open of 1M events ~40 ms.)
    let mut clustered = segment
        .clustered
        .then(|| vec![segment.first_lsn.saturating_sub(1); strings.len()]);
    let mut prev_end = 0u64;
    let mut previous = Previous::new(segment.first_lsn);
    for _ in 0..record_count {
        let r = if version == 1 {
            entries::get_v1(body, &mut at)
        } else {
            entries::get_v2(body, &mut at, &mut previous)
        }
        .ok_or("record table truncated")?;
        let ok = (r.execution as usize) < strings.len()
            && (r.tenant as usize) < strings.len()
            && u64::from(r.offset) >= prev_end.max(64)
            && u64::from(r.offset) < data_end
            && match clustered.as_mut() {
                None => r.lsn > prev_lsn,
                Some(last) => last.get_mut(r.execution as usize).is_some_and(|last| {
                    let ok = r.lsn > *last;
                    *last = r.lsn;
                    ok
                }),
            }
            && r.event_count > 0
            && r.first_seq > 0;
        if !ok {
            return Err(CheckpointDefect::Malformed(format!(
                "record entry for LSN {} is out of place",
                r.lsn
            )));
        }
        prev_lsn = r.lsn;
        prev_end = u64::from(r.offset) + 1;
        records.push(r);
    }
    if at != body.len() {
        return Err("record table size mismatch".into());
    }
    Ok(DecodedCheckpoint { strings, records })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(clustered: bool) -> SegmentInfo {
        SegmentInfo {
            number: 9,
            first_lsn: 1000,
            last_lsn: 0,
            path: std::path::PathBuf::from("00000000000000001000.seg"),
            data_end: 1 << 20,
            sealed: true,
            created_unix_nanos: 0,
            record_salt: 0x0123_4567_89ab_cdef,
            clustered,
        }
    }

    /// A checkpoint as a real segment gives it: ids, offsets in file order, LSNs that skip
    /// (compaction) or go back (clustered), batches, timestamps that go back (clock steps).
    fn realistic(records: usize, clustered: bool) -> DecodedCheckpoint {
        let strings = (0..5).map(|i| format!("exec-{i}")).chain(["tenant".into()]);
        let mut seq = [0u64; 5];
        let mut records_out = Vec::new();
        let mut offset = 64u32;
        for i in 0..records {
            let e = if clustered { i * 5 / records } else { i % 5 };
            let count = 1 + (i % 3) as u32;
            let lsn = if clustered {
                1000 + (i % (records / 5).max(1)) as u64 * 5 + e as u64
            } else {
                1000 + i as u64 * 2
            };
            records_out.push(CheckpointRecord {
                execution: e as u32,
                tenant: 5,
                offset,
                event_count: count,
                first_seq: seq[e] + 1,
                lsn,
                timestamp_unix_nanos: 1_700_000_000_000_000_000 + (i as i64 * 7919 % 100_000)
                    - 50_000,
            });
            seq[e] += u64::from(count);
            offset += 200 + (i as u32 % 97);
        }
        DecodedCheckpoint {
            strings: strings.collect(),
            records: records_out,
        }
    }

    #[test]
    fn version_1_and_version_2_checkpoints_decode_to_the_same_records() {
        for clustered in [false, true] {
            let seg = segment(clustered);
            let cp = realistic(1000, clustered);
            let v1 = encode_v1(&seg, &cp);
            let v2 = encode(&seg, &cp);
            assert_eq!(u16::from_le_bytes([v1[8], v1[9]]), 1);
            assert_eq!(u16::from_le_bytes([v2[8], v2[9]]), 2);
            assert_eq!(decode(&v1, &seg).unwrap(), cp);
            assert_eq!(decode(&v2, &seg).unwrap(), cp);
            // ~11 bytes a record instead of 40.
            assert!(v2.len() * 3 < v1.len(), "{} vs {}", v2.len(), v1.len());
        }
    }

    /// Header and trailer around `body` with valid checksums, so the body's parsing is
    /// what gets exercised.
    fn forged(seg: &SegmentInfo, version: u16, records: u32, strings: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&seg.number.to_le_bytes());
        out.extend_from_slice(&seg.first_lsn.to_le_bytes());
        out.extend_from_slice(&seg.data_end.to_le_bytes());
        out.extend_from_slice(&records.to_le_bytes());
        out.extend_from_slice(&strings.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(body);
        let mut h = crc32fast::Hasher::new();
        h.update(&seg.record_salt.to_le_bytes());
        h.update(body);
        out.extend_from_slice(&h.finalize().to_le_bytes());
        out
    }

    #[test]
    fn counts_larger_than_the_body_are_refused_before_allocating() {
        let seg = segment(false);
        for version in [1, 2] {
            let bytes = forged(&seg, version, u32::MAX, u32::MAX, &[0u8; 64]);
            assert_eq!(
                decode(&bytes, &seg).err(),
                Some(CheckpointDefect::Malformed("record count too large".into()))
            );
        }
    }

    proptest! {
        #[test]
        fn any_body_under_valid_checksums_is_decoded_or_refused_without_panicking(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            records in 0u32..200,
            strings in 0u32..8,
            version in 1u16..=2,
            clustered in any::<bool>(),
        ) {
            let seg = segment(clustered);
            let bytes = forged(&seg, version, records, strings, &body);
            if let Ok(cp) = decode(&bytes, &seg) {
                // What decodes encodes back to a checkpoint that decodes the same.
                prop_assert_eq!(decode(&encode(&seg, &cp), &seg).unwrap(), cp);
            }
        }

        #[test]
        fn a_realistic_checkpoint_with_a_flipped_bit_is_never_accepted_as_another(
            at in 0usize..4000,
            bit in 0u8..8,
        ) {
            let seg = segment(false);
            let cp = realistic(300, false);
            let mut bytes = encode(&seg, &cp);
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
            prop_assert!(decode(&bytes, &seg).is_err());
        }
    }

    #[test]
    fn a_checkpoint_naming_an_id_twice_is_refused() {
        let segment = SegmentInfo {
            number: 3,
            first_lsn: 10,
            last_lsn: 11,
            path: std::path::PathBuf::from("00000000000000000010.seg"),
            data_end: 4096,
            sealed: true,
            created_unix_nanos: 0,
            record_salt: 3,
            clustered: false,
        };
        let record = |execution, lsn, offset| CheckpointRecord {
            execution,
            tenant: 1,
            offset,
            event_count: 1,
            first_seq: 1,
            lsn,
            timestamp_unix_nanos: 0,
        };
        // "exec" twice: entries 0 and 2 would be two executions with one id.
        let cp = DecodedCheckpoint {
            strings: vec!["exec".into(), "tenant".into(), "exec".into()],
            records: vec![record(0, 10, 64), record(2, 11, 200)],
        };
        assert_eq!(
            decode(&encode(&segment, &cp), &segment).err(),
            Some(CheckpointDefect::Malformed(
                "string table holds an id twice".into()
            ))
        );
        let unique = DecodedCheckpoint {
            strings: vec!["exec".into(), "tenant".into()],
            records: vec![record(0, 10, 64)],
        };
        assert!(decode(&encode(&segment, &unique), &segment).is_ok());
    }

    #[test]
    fn a_checkpoint_of_another_segment_with_the_same_number_and_length_is_refused() {
        // Segment numbers of removed segments can come back after a reopen; only the random
        // record salt tells two such segments apart.
        let old = SegmentInfo {
            number: 7,
            first_lsn: 100,
            last_lsn: 100,
            path: std::path::PathBuf::from("00000000000000000100.seg"),
            data_end: 4096,
            sealed: true,
            created_unix_nanos: 0,
            record_salt: 0x1111_2222_3333_4444,
            clustered: false,
        };
        let new = SegmentInfo {
            record_salt: 0x5555_6666_7777_8888,
            clustered: false,
            ..old.clone()
        };
        let cp = DecodedCheckpoint {
            strings: vec!["erased-exec".into(), "tenant".into()],
            records: vec![CheckpointRecord {
                execution: 0,
                tenant: 1,
                offset: 64,
                event_count: 1,
                first_seq: 1,
                lsn: 100,
                timestamp_unix_nanos: 0,
            }],
        };
        let bytes = encode(&old, &cp);
        assert!(decode(&bytes, &old).is_ok());
        assert_eq!(
            decode(&bytes, &new).err(),
            Some(CheckpointDefect::BodyChecksum)
        );
    }

    #[test]
    fn a_checkpoint_of_the_segment_before_a_cut_is_stale_and_a_bit_flip_is_not() {
        let before_cut = SegmentInfo {
            number: 4,
            first_lsn: 20,
            last_lsn: 20,
            path: std::path::PathBuf::from("00000000000000000020.seg"),
            data_end: 8192,
            sealed: true,
            created_unix_nanos: 0,
            record_salt: 4,
            clustered: false,
        };
        let cut = SegmentInfo {
            data_end: 4096,
            ..before_cut.clone()
        };
        let cp = DecodedCheckpoint {
            strings: vec!["exec".into(), "tenant".into()],
            records: vec![CheckpointRecord {
                execution: 0,
                tenant: 1,
                offset: 64,
                event_count: 1,
                first_seq: 1,
                lsn: 20,
                timestamp_unix_nanos: 0,
            }],
        };
        let bytes = encode(&before_cut, &cp);
        let stale = decode(&bytes, &cut).err();
        assert_eq!(stale, Some(CheckpointDefect::Stale));
        assert!(stale.is_some_and(|d| d.is_stale()));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let damaged = decode(&flipped, &before_cut).err();
        assert_eq!(damaged, Some(CheckpointDefect::BodyChecksum));
        assert!(!damaged.is_some_and(|d| d.is_stale()));
        assert_eq!(
            decode(&bytes[..10], &before_cut).err(),
            Some(CheckpointDefect::Truncated)
        );
    }
}
