//! The whole bytes of an offloaded segment, read through its source into a new file and
//! checked against its stub (length, header byte for byte, CRC-32), then fdatasynced: what a
//! rehydration and a backup write. A failed check leaves no file behind and tells the
//! source to forget what it cached of the segment.

use super::{OffloadedSegment, SegmentSource};
use crate::{Error, Result};
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::io::{FileSystem, SegmentFile};
use std::path::Path;

/// Bytes read through the source at a time: a segment never sits in memory whole.
const PIECE_BYTES: u64 = 4 << 20;

/// Writes `segment`'s bytes into `path` (created; it must not exist) and syncs them; `what`
/// names the operation in errors. On a failure after `path` was created, it is removed.
///
/// # Errors
/// [`Error::Offloaded`] when the source fails; [`Error::Corruption`] when the bytes are not
/// the stub's; I/O errors.
pub(crate) fn download_checked<F: FileSystem>(
    fs: &F,
    source: &dyn SegmentSource,
    segment: &OffloadedSegment,
    path: &Path,
    what: &'static str,
) -> Result<u64> {
    // IMPORTANT: only a file this call created is removed on failure: one already there
    // (another backup's, into the same destination) is not ours to delete (review 36).
    let file = fs
        .create_new(path)
        .map_err(|e| Error::io("create", path, e))?;
    let written = write_checked(&file, source, segment, path, what);
    if let Err(e) = &written {
        if matches!(e, Error::Corruption(_)) {
            source.forget(segment);
        }
        drop(file);
        let _ = fs.remove(path);
    }
    written
}

fn write_checked<W: SegmentFile>(
    file: &W,
    source: &dyn SegmentSource,
    segment: &OffloadedSegment,
    path: &Path,
    what: &'static str,
) -> Result<u64> {
    let number = segment.number;
    let mut crc = crc32fast::Hasher::new();
    let mut at = 0u64;
    while at < segment.data_end {
        let end = (at + PIECE_BYTES).min(segment.data_end);
        let piece = source
            .read_ranges(segment, std::slice::from_ref(&(at..end)))
            .map_err(|e| {
                tracing::warn!(segment = number, error = %e, "reading an offloaded segment whole failed");
                Error::Offloaded { segment: number, what }
            })?;
        let Some(bytes) = piece.first().filter(|b| b.len() as u64 == end - at) else {
            return Err(Error::Corruption(format!(
                "segment {number}: the source returned other than bytes {at}..{end}"
            )));
        };
        if at == 0 && bytes.get(..SEGMENT_HEADER_LEN) != Some(&segment.header_bytes[..]) {
            return Err(Error::Corruption(format!(
                "segment {number}: the bytes at {} are another segment's",
                segment.location
            )));
        }
        crc.update(bytes);
        file.write_all_at(bytes, at)
            .map_err(|e| Error::io("write", path, e))?;
        at = end;
    }
    if crc.finalize() != segment.object_crc32 {
        return Err(Error::Corruption(format!(
            "segment {number}: the bytes at {} differ from the offloaded segment's (CRC-32)",
            segment.location
        )));
    }
    file.sync_data()
        .map_err(|e| Error::io("sync_data", path, e))?;
    Ok(segment.data_end)
}
