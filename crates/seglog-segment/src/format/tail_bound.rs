//! The tail bound file (`TAIL_BOUND`, docs/format.md §3.6): how far into the active segment
//! the writer may have written, made durable before it writes there, so that recovery after
//! a crash need not read a prepared segment's zeros to their end.
//!
//! Two slots, each at the start of its own 4 KiB page (a torn write spoils at most the slot
//! being written); of the valid slots, the one with the greater generation counts. A slot
//! (little-endian):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `SEGLOGTB` |
//! | 8 | 2 | version (1) |
//! | 10 | 6 | zeros |
//! | 16 | 8 | generation (≥ 1; written to slot `generation % 2`) |
//! | 24 | 8 | segment number |
//! | 32 | 8 | that segment's `record_salt` |
//! | 40 | 8 | bound: no byte of that segment at or past this offset was ever written |
//! | 48 | 4 | CRC-32 of bytes 0..48 |

use super::le_u64;

/// The file's name in the log directory.
pub const TAIL_BOUND_FILE_NAME: &str = "TAIL_BOUND";
/// First 8 bytes of a slot.
pub const TAIL_BOUND_MAGIC: [u8; 8] = *b"SEGLOGTB";
/// The slot version this build writes and reads.
pub const TAIL_BOUND_VERSION: u16 = 1;
/// Bytes of a slot.
pub const TAIL_BOUND_SLOT_LEN: usize = 52;
/// Where slot `i` starts (`i` = generation % 2).
pub const TAIL_BOUND_SLOT_STRIDE: u64 = 4096;

const GENERATION_OFFSET: usize = 16;
const SEGMENT_OFFSET: usize = 24;
const SALT_OFFSET: usize = 32;
const BOUND_OFFSET: usize = 40;
const CRC_OFFSET: usize = 48;

/// What one slot says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailBound {
    /// Greater for every slot written after another (≥ 1).
    pub generation: u64,
    /// The segment it bounds.
    pub segment: u64,
    /// That segment's `record_salt`, so the slot names this very file.
    pub record_salt: u64,
    /// No byte of the segment at or past this offset was ever written.
    pub bound: u64,
}

impl TailBound {
    /// The slot's offset in the file.
    pub fn slot_offset(&self) -> u64 {
        (self.generation % 2) * TAIL_BOUND_SLOT_STRIDE
    }

    /// The slot's bytes.
    pub fn encode(&self) -> [u8; TAIL_BOUND_SLOT_LEN] {
        let mut b = [0u8; TAIL_BOUND_SLOT_LEN];
        b[..8].copy_from_slice(&TAIL_BOUND_MAGIC);
        b[8..10].copy_from_slice(&TAIL_BOUND_VERSION.to_le_bytes());
        b[GENERATION_OFFSET..GENERATION_OFFSET + 8].copy_from_slice(&self.generation.to_le_bytes());
        b[SEGMENT_OFFSET..SEGMENT_OFFSET + 8].copy_from_slice(&self.segment.to_le_bytes());
        b[SALT_OFFSET..SALT_OFFSET + 8].copy_from_slice(&self.record_salt.to_le_bytes());
        b[BOUND_OFFSET..BOUND_OFFSET + 8].copy_from_slice(&self.bound.to_le_bytes());
        let crc = crc32fast::hash(&b[..CRC_OFFSET]);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// One slot's bytes, if they are a valid slot of this version.
    pub fn decode(b: &[u8]) -> Option<TailBound> {
        let b = b.get(..TAIL_BOUND_SLOT_LEN)?;
        let crc = u32::from_le_bytes(b[CRC_OFFSET..CRC_OFFSET + 4].try_into().ok()?);
        if b[..8] != TAIL_BOUND_MAGIC
            || b[8..10] != TAIL_BOUND_VERSION.to_le_bytes()
            || b[10..GENERATION_OFFSET].iter().any(|&x| x != 0)
            || crc32fast::hash(&b[..CRC_OFFSET]) != crc
        {
            return None;
        }
        let slot = TailBound {
            generation: le_u64(b, GENERATION_OFFSET),
            segment: le_u64(b, SEGMENT_OFFSET),
            record_salt: le_u64(b, SALT_OFFSET),
            bound: le_u64(b, BOUND_OFFSET),
        };
        (slot.generation >= 1).then_some(slot)
    }

    /// The slot that counts in a whole file's bytes: the valid one with the greater
    /// generation, if it sits where its generation says.
    pub fn newest(file: &[u8]) -> Option<TailBound> {
        [0u64, 1]
            .into_iter()
            .filter_map(|i| {
                let at = usize::try_from(i * TAIL_BOUND_SLOT_STRIDE).ok()?;
                TailBound::decode(file.get(at..)?).filter(|s| s.generation % 2 == i)
            })
            .max_by_key(|s| s.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_every_flipped_bit_is_refused() {
        let slot = TailBound {
            generation: 7,
            segment: 3,
            record_salt: 0xdead_beef,
            bound: 4 << 20,
        };
        let bytes = slot.encode();
        assert_eq!(TailBound::decode(&bytes), Some(slot));
        for bit in 0..TAIL_BOUND_SLOT_LEN * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(TailBound::decode(&b), None, "bit {bit}");
        }
        assert_eq!(TailBound::decode(&bytes[..TAIL_BOUND_SLOT_LEN - 1]), None);
    }

    #[test]
    fn the_newest_valid_slot_in_its_own_place_counts() {
        let mut file = vec![0u8; TAIL_BOUND_SLOT_STRIDE as usize + TAIL_BOUND_SLOT_LEN];
        let put = |file: &mut Vec<u8>, s: TailBound| {
            let at = s.slot_offset() as usize;
            file[at..at + TAIL_BOUND_SLOT_LEN].copy_from_slice(&s.encode());
        };
        let old = TailBound {
            generation: 4,
            segment: 1,
            record_salt: 9,
            bound: 1 << 20,
        };
        let new = TailBound {
            generation: 5,
            bound: 2 << 20,
            ..old
        };
        assert_eq!(TailBound::newest(&file), None);
        put(&mut file, old);
        put(&mut file, new);
        assert_eq!(TailBound::newest(&file), Some(new));
        // A torn newer slot leaves the older one.
        file[new.slot_offset() as usize + 20] ^= 1;
        assert_eq!(TailBound::newest(&file), Some(old));
        // A slot found in the other place (generation parity) does not count.
        let misplaced = TailBound {
            generation: 6,
            ..new
        };
        let at = new.slot_offset() as usize;
        file[at..at + TAIL_BOUND_SLOT_LEN].copy_from_slice(&misplaced.encode());
        assert_eq!(TailBound::newest(&file), Some(old));
        // A file cut short holds only the first slot.
        assert_eq!(TailBound::newest(&file[..TAIL_BOUND_SLOT_LEN]), Some(old));
    }
}
