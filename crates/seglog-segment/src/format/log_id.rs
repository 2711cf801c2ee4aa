//! The log's identity (`LOG_ID`, docs/format.md §9): 16 random bytes drawn when the log is
//! made, kept in a 32-byte file of their own. Whatever holds the log elsewhere (a backup, a
//! bucket's manifest) carries the same id, so a directory can be told from another log's
//! even where their LSNs and segments look alike.

use std::fmt;
use std::str::FromStr;

/// Name of the file in the log directory.
pub const LOG_ID_FILE_NAME: &str = "LOG_ID";
/// The name the file is written under before it is renamed to [`LOG_ID_FILE_NAME`].
pub const LOG_ID_TEMP_FILE_NAME: &str = "LOG_ID.tmp";
/// First 8 bytes of the file.
pub const LOG_ID_MAGIC: [u8; 8] = *b"SEGLOGID";
/// The version of the file this build writes and reads.
pub const LOG_ID_VERSION: u32 = 1;
/// The file's length: magic, version, id, CRC.
pub const LOG_ID_FILE_LEN: usize = 32;

/// A log's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogId(pub [u8; 16]);

impl LogId {
    /// A new random identity.
    ///
    /// # Errors
    /// The operating system's random source failed.
    pub fn random() -> std::io::Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(LogId(bytes))
    }

    /// The file's bytes: magic (8), version (u32), id (16), CRC-32 of the 28 bytes before it.
    pub fn encode(&self) -> [u8; LOG_ID_FILE_LEN] {
        let mut out = [0u8; LOG_ID_FILE_LEN];
        out[..8].copy_from_slice(&LOG_ID_MAGIC);
        out[8..12].copy_from_slice(&LOG_ID_VERSION.to_le_bytes());
        out[12..28].copy_from_slice(&self.0);
        let crc = crc32fast::hash(&out[..28]);
        out[28..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the file's bytes.
    ///
    /// # Errors
    /// Why the bytes are not a log id file this build reads.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() != LOG_ID_FILE_LEN {
            return Err("not 32 bytes long");
        }
        if bytes[..8] != LOG_ID_MAGIC {
            return Err("bad magic");
        }
        let crc = u32::from_le_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]);
        if crc != crc32fast::hash(&bytes[..28]) {
            return Err("checksum mismatch");
        }
        if u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) != LOG_ID_VERSION {
            return Err("unsupported version");
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[12..28]);
        Ok(LogId(id))
    }
}

/// 32 lowercase hex digits.
impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogId({self})")
    }
}

/// Parses 32 hex digits (either case).
impl FromStr for LogId {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.as_bytes();
        if digits.len() != 32 {
            return Err("a log id is 32 hex digits");
        }
        let nibble = |c: u8| (c as char).to_digit(16).ok_or("a log id is 32 hex digits");
        let mut id = [0u8; 16];
        for (i, byte) in id.iter_mut().enumerate() {
            let (hi, lo) = (nibble(digits[2 * i])?, nibble(digits[2 * i + 1])?);
            // Both below 16: the sum fits a byte.
            *byte = u8::try_from(hi * 16 + lo).map_err(|_| "a log id is 32 hex digits")?;
        }
        Ok(LogId(id))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_log_id_round_trips_and_every_flipped_bit_or_cut_is_refused() {
        let id = LogId::random().unwrap();
        let bytes = id.encode();
        assert_eq!(LogId::decode(&bytes), Ok(id));
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(LogId::decode(&bad).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(LogId::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(LogId::decode(&longer).is_err());
    }

    #[test]
    fn a_log_id_prints_and_parses_as_32_hex_digits() {
        let id = LogId(*b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\xaa\xbb\xcc\xdd\xee\xff");
        assert_eq!(id.to_string(), "00010203040506070809aabbccddeeff");
        assert_eq!("00010203040506070809AABBCCDDEEFF".parse::<LogId>(), Ok(id));
        for bad in [
            "",
            "0",
            "00010203040506070809aabbccddeeffa",
            "g0010203040506070809aabbccddeeff",
            "+0010203040506070809aabbccddeeff",
        ] {
            assert!(bad.parse::<LogId>().is_err(), "{bad:?}");
        }
    }
}
