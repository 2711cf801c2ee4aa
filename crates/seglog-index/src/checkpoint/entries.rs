//! A checkpoint's record entries in both versions (format.md §5): version 1's fixed 40
//! bytes, and version 2's varints, each field but the ids and counts a difference from the
//! entry before. Version 2 is what this build writes: ~11 bytes a record instead of 40, so
//! a cold open reads a quarter of the bytes.
//!
//! Decoding never panics and never allocates: the caller bounds the entry count by the body
//! before it allocates, and every varint is at most 10 bytes.

use super::CheckpointRecord;
use crate::checkpoint::RECORD_ENTRY_LEN;
use seglog_segment::format::SEGMENT_HEADER_LEN;

/// The fewest bytes a version-2 entry takes (seven one-byte varints).
pub(super) const MIN_ENTRY_LEN_V2: usize = 7;

/// What a version-2 entry's fields are differences from: the entry before it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Previous {
    /// The least offset the next record may have: the previous one's + 1 (64 at first).
    offset_floor: u64,
    /// The previous entry's LSN (the segment's first LSN − 1 at first).
    lsn: u64,
    /// The previous entry's timestamp (0 at first).
    timestamp_unix_nanos: i64,
}

impl Previous {
    pub(super) fn new(first_lsn: u64) -> Self {
        Previous {
            offset_floor: SEGMENT_HEADER_LEN as u64,
            lsn: first_lsn.wrapping_sub(1),
            timestamp_unix_nanos: 0,
        }
    }

    fn follow(&mut self, r: &CheckpointRecord) {
        self.offset_floor = u64::from(r.offset) + 1;
        self.lsn = r.lsn;
        self.timestamp_unix_nanos = r.timestamp_unix_nanos;
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads a LEB128 varint at `*at`; `None` when the bytes end first or it is longer than 10
/// bytes or overflows 64 bits.
#[inline]
fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    // Most fields are one byte (ids, counts, LSN steps).
    let first = *bytes.get(*at)?;
    if first < 0x80 {
        *at += 1;
        return Some(u64::from(first));
    }
    let mut v = 0u64;
    for i in 0..10 {
        let b = *bytes.get(*at)?;
        *at += 1;
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends the version-2 entry of `r` (format.md §5), following `prev`. Offsets must
/// increase (they do: entries are in file order).
pub(super) fn put_v2(out: &mut Vec<u8>, r: &CheckpointRecord, prev: &mut Previous) {
    put_varint(out, u64::from(r.execution));
    put_varint(out, u64::from(r.tenant));
    put_varint(out, u64::from(r.offset).saturating_sub(prev.offset_floor));
    put_varint(out, u64::from(r.event_count));
    put_varint(out, r.first_seq);
    put_varint(out, zigzag(r.lsn.wrapping_sub(prev.lsn) as i64));
    put_varint(
        out,
        zigzag(
            r.timestamp_unix_nanos
                .wrapping_sub(prev.timestamp_unix_nanos),
        ),
    );
    prev.follow(r);
}

/// Reads the version-2 entry at `*at`, following `prev`. `None` when the bytes end inside
/// it or a field does not fit its type; whether the entry makes sense is the caller's check.
#[inline]
pub(super) fn get_v2(
    bytes: &[u8],
    at: &mut usize,
    prev: &mut Previous,
) -> Option<CheckpointRecord> {
    let execution = u32::try_from(get_varint(bytes, at)?).ok()?;
    let tenant = u32::try_from(get_varint(bytes, at)?).ok()?;
    let offset = u32::try_from(prev.offset_floor.checked_add(get_varint(bytes, at)?)?).ok()?;
    let event_count = u32::try_from(get_varint(bytes, at)?).ok()?;
    let first_seq = get_varint(bytes, at)?;
    let lsn = prev
        .lsn
        .wrapping_add(unzigzag(get_varint(bytes, at)?) as u64);
    let timestamp_unix_nanos = prev
        .timestamp_unix_nanos
        .wrapping_add(unzigzag(get_varint(bytes, at)?));
    let r = CheckpointRecord {
        execution,
        tenant,
        offset,
        event_count,
        first_seq,
        lsn,
        timestamp_unix_nanos,
    };
    prev.follow(&r);
    Some(r)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Reads the version-1 entry at `*at` (40 bytes); `None` when fewer remain.
pub(super) fn get_v1(bytes: &[u8], at: &mut usize) -> Option<CheckpointRecord> {
    let e = bytes.get(*at..at.checked_add(RECORD_ENTRY_LEN)?)?;
    *at += RECORD_ENTRY_LEN;
    Some(CheckpointRecord {
        execution: u32_at(e, 0),
        tenant: u32_at(e, 4),
        offset: u32_at(e, 8),
        event_count: u32_at(e, 12),
        first_seq: u64_at(e, 16),
        lsn: u64_at(e, 24),
        timestamp_unix_nanos: u64_at(e, 32) as i64,
    })
}

/// Appends the version-1 entry of `r` (for tests of reading version 1).
#[cfg(test)]
pub(super) fn put_v1(out: &mut Vec<u8>, r: &CheckpointRecord) {
    out.extend_from_slice(&r.execution.to_le_bytes());
    out.extend_from_slice(&r.tenant.to_le_bytes());
    out.extend_from_slice(&r.offset.to_le_bytes());
    out.extend_from_slice(&r.event_count.to_le_bytes());
    out.extend_from_slice(&r.first_seq.to_le_bytes());
    out.extend_from_slice(&r.lsn.to_le_bytes());
    out.extend_from_slice(&r.timestamp_unix_nanos.to_le_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width_and_refuse_overlong_or_overflowing_bytes() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut at = 0;
            assert_eq!(get_varint(&out, &mut at), Some(v));
            assert_eq!(at, out.len());
            let mut at = 0;
            assert_eq!(get_varint(&out[..out.len() - 1], &mut at), None);
        }
        for v in [0, 1, -1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        // Eleven continuation bytes, and a tenth byte that would carry past 64 bits.
        assert_eq!(get_varint(&[0x80; 11], &mut 0), None);
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(get_varint(&over, &mut 0), None);
    }

    #[test]
    fn entries_of_extreme_values_round_trip() {
        let records = [
            CheckpointRecord {
                execution: u32::MAX,
                tenant: 0,
                offset: 64,
                event_count: 1,
                first_seq: u64::MAX,
                lsn: 5,
                timestamp_unix_nanos: i64::MIN,
            },
            CheckpointRecord {
                execution: 0,
                tenant: u32::MAX,
                offset: u32::MAX,
                event_count: u32::MAX,
                first_seq: 1,
                lsn: 2, // backwards: a clustered segment's file order
                timestamp_unix_nanos: i64::MAX,
            },
        ];
        let mut out = Vec::new();
        let mut prev = Previous::new(1);
        for r in &records {
            put_v2(&mut out, r, &mut prev);
        }
        let (mut at, mut prev) = (0, Previous::new(1));
        for r in &records {
            assert_eq!(get_v2(&out, &mut at, &mut prev).as_ref(), Some(r));
        }
        assert_eq!(at, out.len());
    }
}
