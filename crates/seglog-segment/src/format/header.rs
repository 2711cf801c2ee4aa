//! The 64-byte segment header (docs/format.md §2).

use super::*;

/// The decoded header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment number: unique in the log, never reused.
    pub segment_number: u64,
    /// LSN of the segment's first record.
    pub first_lsn: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_nanos: i64,
    /// Random, non-zero salt of every record checksum in the segment (format version 3 on).
    /// `0` in older segments, whose records are salted with the segment number.
    pub salt: u64,
    /// Written by compaction ([`FLAG_COMPACTED`], version 3 on): its LSNs may skip.
    pub compacted: bool,
    /// Records grouped by execution ([`FLAG_CLUSTERED`], version 4 on; always with
    /// `compacted`): LSNs increase per execution inside it, not through the file.
    pub clustered: bool,
}

/// Why a header did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderDefect {
    /// Fewer than 64 bytes.
    Short,
    /// Not a seglog segment.
    BadMagic,
    /// Written by another format version.
    Version(u16),
    /// The CRC does not match.
    Checksum,
    /// A field holds a value this version never writes.
    Field(&'static str),
}

impl SegmentHeader {
    /// A header for a new segment, with a fresh random salt.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn new(
        segment_number: u64,
        first_lsn: u64,
        created_unix_nanos: i64,
    ) -> std::io::Result<Self> {
        Ok(SegmentHeader {
            segment_number,
            first_lsn,
            created_unix_nanos,
            salt: random_salt()?,
            compacted: false,
            clustered: false,
        })
    }

    /// True when damage at the end of this segment, if it is the last one, may be a torn
    /// write of appends never acknowledged. Not for a clustered segment: a compaction
    /// output, whole and synced before the manifest named it (recovery, read-only opens,
    /// verify and repair all ask this one question).
    pub fn tail_may_be_torn(&self) -> bool {
        !self.clustered
    }

    /// The salt of this segment's record checksums.
    pub fn record_salt(&self) -> u64 {
        if self.salt == 0 {
            self.segment_number
        } else {
            self.salt
        }
    }

    /// Encodes the header to its 64 bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[HDR_VERSION_OFFSET..HDR_VERSION_OFFSET + 2]
            .copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[HDR_LEN_OFFSET..HDR_LEN_OFFSET + 2]
            .copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        // reserved (48..60) stays zero.
        let flags = if self.compacted { FLAG_COMPACTED } else { 0 }
            | if self.clustered { FLAG_CLUSTERED } else { 0 };
        b[HDR_FLAGS_OFFSET..HDR_FLAGS_OFFSET + 4].copy_from_slice(&flags.to_le_bytes());
        b[HDR_SEGMENT_NUMBER_OFFSET..HDR_SEGMENT_NUMBER_OFFSET + 8]
            .copy_from_slice(&self.segment_number.to_le_bytes());
        b[HDR_FIRST_LSN_OFFSET..HDR_FIRST_LSN_OFFSET + 8]
            .copy_from_slice(&self.first_lsn.to_le_bytes());
        b[HDR_CREATED_OFFSET..HDR_CREATED_OFFSET + 8]
            .copy_from_slice(&self.created_unix_nanos.to_le_bytes());
        b[HDR_SALT_OFFSET..HDR_SALT_OFFSET + 8].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32fast::hash(&b[..HDR_CRC_OFFSET]);
        b[HDR_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The format version the header at the start of `buf` was written with, read without
    /// checking it (call after [`Self::decode`] succeeded on the same bytes); `None` when
    /// `buf` is too short to hold one.
    pub fn format_version_of(buf: &[u8]) -> Option<u16> {
        (buf.len() >= SEGMENT_HEADER_LEN).then(|| le_u16(buf, HDR_VERSION_OFFSET))
    }

    /// Decodes and checks a header from the start of a segment file.
    ///
    /// # Errors
    /// A [`HeaderDefect`] saying what is wrong.
    pub fn decode(buf: &[u8]) -> Result<Self, HeaderDefect> {
        if buf.len() < SEGMENT_HEADER_LEN {
            return Err(HeaderDefect::Short);
        }
        let b = &buf[..SEGMENT_HEADER_LEN];
        if b[..8] != MAGIC {
            return Err(HeaderDefect::BadMagic);
        }
        if crc32fast::hash(&b[..HDR_CRC_OFFSET]) != le_u32(b, HDR_CRC_OFFSET) {
            return Err(HeaderDefect::Checksum);
        }
        let version = le_u16(b, HDR_VERSION_OFFSET);
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(HeaderDefect::Version(version));
        }
        if usize::from(le_u16(b, HDR_LEN_OFFSET)) != SEGMENT_HEADER_LEN {
            return Err(HeaderDefect::Field("header_len"));
        }
        let known_flags = if version >= CLUSTERED_VERSION {
            FLAG_COMPACTED | FLAG_CLUSTERED
        } else if version >= SALTED_HEADER_VERSION {
            FLAG_COMPACTED
        } else {
            0
        };
        let flags = le_u32(b, HDR_FLAGS_OFFSET);
        if flags & !known_flags != 0 {
            return Err(HeaderDefect::Field("flags"));
        }
        // Only compaction writes clustered segments; the writer must never append to one.
        if flags & FLAG_CLUSTERED != 0 && flags & FLAG_COMPACTED == 0 {
            return Err(HeaderDefect::Field("flags"));
        }
        let segment_number = le_u64(b, HDR_SEGMENT_NUMBER_OFFSET);
        let first_lsn = le_u64(b, HDR_FIRST_LSN_OFFSET);
        if segment_number == 0 {
            return Err(HeaderDefect::Field("segment_number"));
        }
        if first_lsn == 0 || first_lsn >= LSN_LIMIT {
            return Err(HeaderDefect::Field("first_lsn"));
        }
        let salt = if version >= SALTED_HEADER_VERSION {
            match le_u64(b, HDR_SALT_OFFSET) {
                0 => return Err(HeaderDefect::Field("record_salt")),
                salt => salt,
            }
        } else {
            0
        };
        Ok(SegmentHeader {
            segment_number,
            first_lsn,
            created_unix_nanos: le_u64(b, HDR_CREATED_OFFSET) as i64,
            salt,
            compacted: flags & FLAG_COMPACTED != 0,
            clustered: flags & FLAG_CLUSTERED != 0,
        })
    }
}

/// A random non-zero u64 from the operating system.
pub(crate) fn random_salt() -> std::io::Result<u64> {
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        let salt = u64::from_le_bytes(bytes);
        if salt != 0 {
            return Ok(salt);
        }
    }
}

impl std::fmt::Display for HeaderDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderDefect::Short => write!(
                f,
                "segment header is shorter than {SEGMENT_HEADER_LEN} bytes"
            ),
            HeaderDefect::BadMagic => write!(f, "not a seglog segment (bad magic)"),
            HeaderDefect::Version(v) => write!(f, "unsupported format version {v}"),
            HeaderDefect::Checksum => write!(f, "segment header checksum mismatch"),
            HeaderDefect::Field(name) => write!(f, "segment header field {name} is invalid"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_every_bit_flip_is_caught() {
        let h = SegmentHeader::new(7, 1234, 1_700_000_000_000_000_000).unwrap();
        assert_ne!(h.salt, 0);
        assert_ne!(
            h.salt,
            SegmentHeader::new(7, 1234, 0).unwrap().salt,
            "every segment draws its own salt"
        );
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                SegmentHeader::decode(&damaged).is_err(),
                "flip of bit {bit} accepted"
            );
        }
        assert_eq!(
            SegmentHeader::decode(&bytes[..63]),
            Err(HeaderDefect::Short)
        );
    }

    /// Re-encodes `bytes` with `version` and `flags`, fixing the CRC.
    fn with(mut bytes: [u8; SEGMENT_HEADER_LEN], version: u16, flags: u32) -> [u8; 64] {
        bytes[HDR_VERSION_OFFSET..HDR_VERSION_OFFSET + 2].copy_from_slice(&version.to_le_bytes());
        bytes[HDR_FLAGS_OFFSET..HDR_FLAGS_OFFSET + 4].copy_from_slice(&flags.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..HDR_CRC_OFFSET]);
        bytes[HDR_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn clustered_flag_is_read_from_version_4_only_and_only_with_compacted() {
        let h = SegmentHeader {
            compacted: true,
            clustered: true,
            ..SegmentHeader::new(3, 10, 0).unwrap()
        };
        let bytes = h.encode();
        assert_eq!(
            le_u32(&bytes, HDR_FLAGS_OFFSET),
            FLAG_COMPACTED | FLAG_CLUSTERED
        );
        assert_eq!(le_u16(&bytes, HDR_VERSION_OFFSET), FORMAT_VERSION);
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        let both = FLAG_COMPACTED | FLAG_CLUSTERED;
        assert_eq!(
            SegmentHeader::decode(&with(bytes, 3, both)),
            Err(HeaderDefect::Field("flags")),
            "a version-3 header cannot be clustered"
        );
        assert_eq!(
            SegmentHeader::decode(&with(bytes, 4, FLAG_CLUSTERED)),
            Err(HeaderDefect::Field("flags")),
            "clustered without compacted"
        );
        assert_eq!(
            SegmentHeader::decode(&with(bytes, 4, both | 4)),
            Err(HeaderDefect::Field("flags")),
            "an unknown bit"
        );
        let v3 = SegmentHeader::decode(&with(bytes, 3, FLAG_COMPACTED)).unwrap();
        assert!(v3.compacted && !v3.clustered);
    }
}
