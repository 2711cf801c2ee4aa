//! Index checkpoints: for each sealed segment, a sidecar file `<first_lsn>.idx` listing its
//! records, so opening a log reads a few bytes per record instead of every payload.
//! The format is in docs/format.md §6; this module mirrors it.
//!
//! A checkpoint names the segment it describes (number, first LSN, data length) and carries
//! two CRCs; one that fails any check is ignored and the segment is scanned instead. A
//! checkpoint is only ever written for a sealed segment, whose bytes are all durable.

mod agreement;
mod codec;
mod defect;
mod entries;
mod file;

pub use agreement::disagreement;
pub use codec::{
    decode, decode_prefix, encode, encode_prefix, CheckpointRecord, DecodedCheckpoint,
};
pub use defect::CheckpointDefect;
pub use file::{
    checkpoint_file_name, load, load_prefix, remove, remove_orphans, write, write_prefix,
    PrefixCheckpoint,
};

/// First 8 bytes of a checkpoint file.
pub const MAGIC: [u8; 8] = *b"SEGLOGIX";
/// Checkpoint format version this build writes (version 2: varint entries; version 1,
/// 40-byte entries, is still read).
pub const VERSION: u16 = 2;
/// Header flag (bit 0): a *prefix* checkpoint of the last segment, written at a clean close
/// (format.md §5.1); `segment_data_end` is where the prefix ends, not the file's length.
pub const FLAG_PREFIX: u32 = 1;
/// Header size.
pub const HEADER_LEN: usize = 64;
/// Size of one record entry in a version-1 checkpoint.
pub const RECORD_ENTRY_LEN: usize = 40;
/// Size of the trailer (body CRC).
pub const TRAILER_LEN: usize = 4;
/// Suffix of checkpoint files.
pub const SUFFIX: &str = ".idx";
/// Suffix of a checkpoint being written.
pub const TEMP_SUFFIX: &str = ".idx.tmp";
