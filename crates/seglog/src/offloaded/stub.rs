//! The offload stub: the small file `<first_lsn:020>.off` that records, durably, that a
//! sealed segment's file left the directory and where its bytes are (docs/format.md §7).
//! Little-endian; a CRC-32 (IEEE) of everything before it ends the file.
//!
//! ```text
//!   0   8  magic "SEGLOGOF"
//!   8   2  stub version (1)
//!  10   2  reserved, 0
//!  12   4  reserved, 0
//!  16  64  the segment's header, byte for byte (its own CRC included)
//!  80   8  data_end: the segment file's length in bytes (the object's length)
//!  88   8  last_lsn: the LSN of its last record (first_lsn - 1 when it has none)
//!  96   8  last_event_lsn: the greatest LSN of an event record (first_lsn - 1 when none)
//! 104   4  CRC-32 (IEEE) of the segment's bytes (the object's)
//! 108   4  location length k, 1..=MAX_LOCATION_BYTES
//! 112   k  location: UTF-8, the object key the segment source reads
//! 112+k 4  CRC-32 (IEEE) of bytes 0 .. 112+k
//! ```
//!
//! What must hold: a stub is written whole or not at all (temp file, fdatasync, rename,
//! directory fsync); a reader refuses any stub whose length, magic, version, CRC or
//! embedded header is wrong, and never allocates more than [`MAX_STUB_BYTES`].

use super::OffloadedSegment;
use crate::{Error, Result};
use seglog_segment::format::{SegmentHeader, SEGMENT_HEADER_LEN, SEGMENT_NAME_DIGITS};
use seglog_segment::io::{FileSystem, SegmentFile};
use std::path::{Path, PathBuf};

/// First bytes of every stub.
pub const STUB_MAGIC: [u8; 8] = *b"SEGLOGOF";
/// The stub version this build writes and reads.
pub const STUB_VERSION: u16 = 1;
/// Suffix of a stub's file name (`<first_lsn:020>.off`).
pub const STUB_SUFFIX: &str = ".off";
/// Longest location (object key) a stub holds, in bytes.
pub const MAX_LOCATION_BYTES: usize = 1024;
const FIXED_LEN: usize = 112;
/// Largest stub file, in bytes: a longer file is refused before it is read.
pub const MAX_STUB_BYTES: usize = FIXED_LEN + MAX_LOCATION_BYTES + 4;
const TEMP_SUFFIX: &str = ".tmp";

/// File name of the stub of the segment starting at `first_lsn`.
pub fn stub_file_name(first_lsn: u64) -> String {
    format!(
        "{first_lsn:0width$}{STUB_SUFFIX}",
        width = SEGMENT_NAME_DIGITS
    )
}

fn parse_stub_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(STUB_SUFFIX)?;
    (digits.len() == SEGMENT_NAME_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Corruption(format!("offload stub {}: {reason}", path.display()))
}

/// Encodes `segment`'s stub.
pub(crate) fn encode(segment: &OffloadedSegment) -> Vec<u8> {
    let location = segment.location.as_bytes();
    let mut out = Vec::with_capacity(FIXED_LEN + location.len() + 4);
    out.extend_from_slice(&STUB_MAGIC);
    out.extend_from_slice(&STUB_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&segment.header_bytes);
    out.extend_from_slice(&segment.data_end.to_le_bytes());
    out.extend_from_slice(&segment.last_lsn.to_le_bytes());
    out.extend_from_slice(&segment.last_event_lsn.to_le_bytes());
    out.extend_from_slice(&segment.object_crc32.to_le_bytes());
    out.extend_from_slice(&(location.len() as u32).to_le_bytes());
    out.extend_from_slice(location);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Decodes the stub at `path` (named for `name_lsn`) from its bytes.
///
/// # Errors
/// [`Error::Corruption`] for anything but a whole, valid stub of version 1 whose segment
/// header names `name_lsn`.
pub(crate) fn decode(bytes: &[u8], path: &Path, name_lsn: u64) -> Result<OffloadedSegment> {
    if bytes.len() < FIXED_LEN + 4 || bytes.len() > MAX_STUB_BYTES {
        return Err(corrupt(path, format!("{} bytes", bytes.len())));
    }
    if bytes[..8] != STUB_MAGIC {
        return Err(corrupt(path, "bad magic"));
    }
    let body_len = bytes.len() - 4;
    if crc32fast::hash(&bytes[..body_len]) != le_u32(bytes, body_len) {
        return Err(corrupt(path, "checksum mismatch"));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != STUB_VERSION {
        return Err(corrupt(
            path,
            format!("version {version}; this build reads version {STUB_VERSION}"),
        ));
    }
    let header_bytes: [u8; SEGMENT_HEADER_LEN] = bytes[16..16 + SEGMENT_HEADER_LEN]
        .try_into()
        .map_err(|_| corrupt(path, "short header"))?;
    let header = SegmentHeader::decode(&header_bytes)
        .map_err(|d| corrupt(path, format!("segment header: {d}")))?;
    let location_len = le_u32(bytes, 108) as usize;
    if location_len == 0 || FIXED_LEN + location_len != body_len {
        return Err(corrupt(path, format!("location length {location_len}")));
    }
    let location = std::str::from_utf8(&bytes[FIXED_LEN..body_len])
        .map_err(|_| corrupt(path, "location is not UTF-8"))?
        .to_owned();
    let (data_end, last_lsn, last_event_lsn) =
        (le_u64(bytes, 80), le_u64(bytes, 88), le_u64(bytes, 96));
    let first_lsn = header.first_lsn;
    if first_lsn != name_lsn
        || first_lsn == 0
        || data_end < SEGMENT_HEADER_LEN as u64
        || data_end > u64::from(u32::MAX)
        || last_lsn < first_lsn - 1
        || last_event_lsn < first_lsn - 1
        || last_event_lsn > last_lsn
    {
        return Err(corrupt(
            path,
            "fields out of range for the segment it names",
        ));
    }
    Ok(OffloadedSegment {
        number: header.segment_number,
        first_lsn,
        last_lsn,
        last_event_lsn,
        data_end,
        record_salt: header.record_salt(),
        created_unix_nanos: header.created_unix_nanos,
        clustered: header.clustered,
        header_bytes,
        object_crc32: le_u32(bytes, 104),
        location,
    })
}

/// Writes `segment`'s stub into `dir`, crash-atomically: after this returns, the stub is
/// durable under its final name; after a crash, either it is whole there or absent.
///
/// # Errors
/// I/O errors (a temp file may be left behind: the next open removes it).
pub(crate) fn write<F: FileSystem>(fs: &F, dir: &Path, segment: &OffloadedSegment) -> Result<()> {
    let name = stub_file_name(segment.first_lsn);
    // IMPORTANT: durable under its name (contents, then the rename) before the caller removes
    // the segment's file: a lost or torn stub with the file gone would lose its records.
    seglog_segment::io::replace_file_durably(
        fs,
        dir,
        &name,
        &format!("{name}{TEMP_SUFFIX}"),
        &encode(segment),
    )
    .map_err(Error::from)
}

/// Every stub in `dir`, in log order, and the stale temp files to remove (whoever holds the
/// directory's lock removes them).
///
/// # Errors
/// I/O errors; [`Error::Corruption`] for a damaged stub (its segment's records would be
/// lost without it: the open fails rather than go on without them).
pub(crate) fn list<F: FileSystem>(
    fs: &F,
    dir: &Path,
) -> Result<(Vec<OffloadedSegment>, Vec<PathBuf>)> {
    let names = match fs.list(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    // A restore still writing the directory may have left any part of a stub: the marker
    // says what the directory is (format.md §1), before any stub is read.
    seglog_segment::inspect::refuse_unfinished_restore(dir, &names)
        .map_err(crate::Error::Segment)?;
    let mut stubs = Vec::new();
    let mut temps = Vec::new();
    for name in names {
        if name.ends_with(&format!("{STUB_SUFFIX}{TEMP_SUFFIX}"))
            || name.ends_with(super::rehydrate::REHYDRATING_SUFFIX)
        {
            temps.push(dir.join(&name));
            continue;
        }
        let Some(lsn) = parse_stub_file_name(&name) else {
            continue;
        };
        let path = dir.join(&name);
        let file = fs
            .open_read_only(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        if len > MAX_STUB_BYTES as u64 {
            return Err(corrupt(&path, format!("{len} bytes")));
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| Error::io("read", &path, e))?;
        stubs.push(decode(&bytes, &path, lsn)?);
    }
    stubs.sort_by_key(|s| s.first_lsn);
    Ok((stubs, temps))
}

/// Removes the stub of the segment starting at `first_lsn` (not durable: the caller syncs
/// the directory).
pub(crate) fn remove<F: FileSystem>(fs: &F, dir: &Path, first_lsn: u64) -> Result<()> {
    let path = dir.join(stub_file_name(first_lsn));
    match fs.remove(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> OffloadedSegment {
        let header = SegmentHeader::new(7, 100, 1_700_000_000).unwrap();
        OffloadedSegment {
            number: 7,
            first_lsn: 100,
            last_lsn: 140,
            last_event_lsn: 139,
            data_end: 4096,
            record_salt: header.record_salt(),
            created_unix_nanos: header.created_unix_nanos,
            clustered: false,
            header_bytes: header.encode(),
            object_crc32: 0xdead_beef,
            location: "logs/p/segments/x.seg".into(),
        }
    }

    #[test]
    fn a_stub_round_trips_and_every_flipped_bit_or_cut_is_refused() {
        let s = sample();
        let bytes = encode(&s);
        let path = Path::new("/d/x.off");
        assert_eq!(decode(&bytes, path, 100).unwrap(), s);
        assert!(decode(&bytes, path, 101).is_err(), "another name");
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(decode(&b, path, 100).is_err(), "flip at {i} bit {bit}");
            }
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], path, 100).is_err(), "cut at {cut}");
        }
    }
}
