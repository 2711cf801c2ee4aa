//! The chunk object (docs/scale-out.md, "Chunk shipping"): a slice of the active segment's
//! durable bytes, or the end marker a restore writes after the last chunk it used.
//!
//! ```text
//! offset len field
//!  0      8  magic "SEGLOGCK"
//!  8      4  version (1)
//! 12      4  kind: 1 data, 2 end
//! 16      8  segment number
//! 24      8  segment first LSN
//! 32      8  segment record salt
//! 40      8  chunk index (its key's last part)
//! 48      8  start: offset in the segment file of the payload's first byte (end: where the
//!            restore's copy ends)
//! 56      8  writer epoch
//! 64      8  payload length (0 for an end marker)
//! 72      4  CRC-32 (IEEE) of bytes 0..72 and the payload
//! 76         payload: the segment file's bytes start..start+len
//! ```
//!
//! Little-endian. What must hold: a chunk decodes only if every field is checked (magic,
//! version, kind, CRC, exact length), so a restore never assembles bytes it cannot vouch for.

use bytes::Bytes;

const MAGIC: &[u8; 8] = b"SEGLOGCK";
const VERSION: u32 = 1;
/// Length of a chunk's header, in bytes.
pub(crate) const HEADER_LEN: usize = 76;

/// What a chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Segment bytes.
    Data,
    /// The end of the segment's chunks: written by a restore, after the last chunk it used.
    End,
}

/// A chunk's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: Kind,
    pub number: u64,
    pub first_lsn: u64,
    pub record_salt: u64,
    pub index: u64,
    pub start: u64,
    pub writer_epoch: u64,
    pub payload_len: u64,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(le)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut le = [0u8; 4];
    le.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(le)
}

/// Encodes a chunk (`header.payload_len` is taken from `payload`).
pub(crate) fn encode(header: &Header, payload: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(HEADER_LEN + payload.len());
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(
        &(match header.kind {
            Kind::Data => 1u32,
            Kind::End => 2u32,
        })
        .to_le_bytes(),
    );
    for v in [
        header.number,
        header.first_lsn,
        header.record_salt,
        header.index,
        header.start,
        header.writer_epoch,
        payload.len() as u64,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b);
    crc.update(payload);
    b.extend_from_slice(&crc.finalize().to_le_bytes());
    b.extend_from_slice(payload);
    Bytes::from(b)
}

/// Decodes a chunk, checking every field; returns its header and payload.
///
/// # Errors
/// What is wrong, for the caller's `Corruption`.
pub(crate) fn decode(bytes: &Bytes) -> Result<(Header, Bytes), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than a chunk header",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a chunk (bad magic)".into());
    }
    if u32_at(bytes, 8) != VERSION {
        return Err(format!("chunk version {}", u32_at(bytes, 8)));
    }
    let kind = match u32_at(bytes, 12) {
        1 => Kind::Data,
        2 => Kind::End,
        other => return Err(format!("chunk kind {other}")),
    };
    let payload_len = u64_at(bytes, 64);
    if payload_len != (bytes.len() - HEADER_LEN) as u64 || (kind == Kind::End && payload_len != 0) {
        return Err(format!(
            "payload length {payload_len} in a {}-byte chunk",
            bytes.len()
        ));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..72]);
    crc.update(&bytes[HEADER_LEN..]);
    if crc.finalize() != u32_at(bytes, 72) {
        return Err("chunk checksum mismatch".into());
    }
    let start = u64_at(bytes, 48);
    // A chunk names a byte range of a segment file: it must fit in a file offset, so that
    // no reader's `start + payload_len` can overflow (review 16: a forged start panicked the
    // shipper).
    if start
        .checked_add(payload_len)
        .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(format!(
            "chunk range {start} + {payload_len} is beyond any file offset"
        ));
    }
    let header = Header {
        kind,
        number: u64_at(bytes, 16),
        first_lsn: u64_at(bytes, 24),
        record_salt: u64_at(bytes, 32),
        index: u64_at(bytes, 40),
        start,
        writer_epoch: u64_at(bytes, 56),
        payload_len,
    };
    Ok((header, bytes.slice(HEADER_LEN..)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header() -> Header {
        Header {
            kind: Kind::Data,
            number: 3,
            first_lsn: 90,
            record_salt: 0xabc,
            index: 2,
            start: 4096,
            writer_epoch: 5,
            payload_len: 0,
        }
    }

    #[test]
    fn a_chunk_round_trips_and_every_flipped_bit_or_cut_is_refused() {
        let bytes = encode(&header(), b"segment bytes");
        let (h, payload) = decode(&bytes).unwrap();
        assert_eq!(
            h,
            Header {
                payload_len: 13,
                ..header()
            }
        );
        assert_eq!(&payload[..], b"segment bytes");
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.to_vec();
                b[i] ^= 1 << bit;
                assert!(decode(&Bytes::from(b)).is_err(), "bit {bit} of byte {i}");
            }
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes.slice(..len)).is_err(), "cut at {len}");
        }
    }
}
