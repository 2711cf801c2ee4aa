//! Writing and loading checkpoint files through the log's `FileSystem`.

use super::{codec, CheckpointRecord, DecodedCheckpoint, SUFFIX, TEMP_SUFFIX};
use crate::{Error, Result};
use seglog_segment::format::{
    decode_record, parse_segment_file_name, RecordScan, SEGMENT_HEADER_LEN, SEGMENT_NAME_DIGITS,
};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::SegmentInfo;
use std::collections::HashMap;
use std::io;
use std::path::Path;

/// File name of the checkpoint of the segment starting at `first_lsn`.
pub fn checkpoint_file_name(first_lsn: u64) -> String {
    format!("{first_lsn:0width$}{SUFFIX}", width = SEGMENT_NAME_DIGITS)
}

fn io_err(op: &'static str, path: &Path, e: io::Error) -> Error {
    Error::Segment(seglog_segment::Error::Io {
        op,
        path: path.to_path_buf(),
        source: e,
    })
}

/// How the records [`describe`] listed end.
struct Described {
    checkpoint: DecodedCheckpoint,
    /// First byte after the last record or commit marker.
    end: usize,
    /// The LSN of the commit marker that ends the bytes, if one does, and vouches for every
    /// LSN before its own.
    closing_marker: Option<u64>,
}

/// What [`describe`] does where the records stop before the end of `bytes`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// A sealed segment: its records fill its bytes; anything else is corruption.
    Filled,
    /// The active segment of a closed log: records until the end of data (zeros).
    EndOfData,
}

/// Lists the records of a segment's bytes as a checkpoint; with `base`, the records of the
/// first `base.0` bytes are `base.1`'s and only the bytes after them are read.
fn describe<'b>(
    segment: &SegmentInfo,
    bytes: &'b [u8],
    until: Until,
    base: Option<(usize, &'b DecodedCheckpoint)>,
) -> Result<Described> {
    let mut strings: Vec<String> = base.map(|b| b.1.strings.clone()).unwrap_or_default();
    let mut ids: HashMap<&'b [u8], u32> = HashMap::new();
    if let Some((_, cp)) = base {
        for (i, s) in cp.strings.iter().enumerate() {
            ids.insert(s.as_bytes(), i as u32);
        }
    }
    let mut records = base.map(|b| b.1.records.clone()).unwrap_or_default();
    let salt = seglog_segment::format::SegmentHeader::decode(bytes)
        .map_err(|d| {
            Error::Segment(seglog_segment::Error::Corruption {
                segment: segment.number,
                offset: 0,
                reason: d.to_string(),
            })
        })?
        .record_salt();
    let mut at = base.map_or(SEGMENT_HEADER_LEN, |b| b.0.max(SEGMENT_HEADER_LEN));
    let mut closing_marker = None;
    fn intern<'b>(
        id: &'b [u8],
        lsn: u64,
        ids: &mut HashMap<&'b [u8], u32>,
        strings: &mut Vec<String>,
    ) -> Result<u32> {
        if let Some(&i) = ids.get(id) {
            return Ok(i);
        }
        let s = std::str::from_utf8(id).map_err(|_| Error::Inconsistent {
            lsn,
            reason: "id is not UTF-8".into(),
        })?;
        let i = strings.len() as u32;
        strings.push(s.to_owned());
        ids.insert(id, i);
        Ok(i)
    }
    while at < bytes.len() {
        let r = match decode_record(&bytes[at..], salt, 0, u64::MAX) {
            RecordScan::Record(r) => r,
            RecordScan::Commit(m) => {
                at += seglog_segment::format::COMMIT_MARKER_LEN;
                closing_marker =
                    (m.durable_through_lsn.checked_add(1) == Some(m.lsn)).then_some(m.lsn);
                continue;
            }
            RecordScan::EndOfData if until == Until::EndOfData => break,
            RecordScan::EndOfData => {
                return Err(Error::Segment(seglog_segment::Error::Corruption {
                    segment: segment.number,
                    offset: at as u64,
                    reason: "sealed segment has no record where its data runs on".into(),
                }))
            }
            RecordScan::Defect(d) => {
                return Err(Error::Segment(seglog_segment::Error::Corruption {
                    segment: segment.number,
                    offset: at as u64,
                    reason: format!("sealed segment does not read back whole: {d}"),
                }))
            }
        };
        closing_marker = None;
        let execution = intern(r.execution_id(), r.lsn(), &mut ids, &mut strings)?;
        let tenant = intern(r.tenant_id(), r.lsn(), &mut ids, &mut strings)?;
        records.push(CheckpointRecord {
            execution,
            tenant,
            offset: u32::try_from(at).map_err(|_| Error::LimitExceeded("segment offset"))?,
            event_count: r.event_count(),
            first_seq: r.first_seq(),
            lsn: r.lsn(),
            timestamp_unix_nanos: r.timestamp_unix_nanos(),
        });
        at += r.len();
    }
    Ok(Described {
        checkpoint: DecodedCheckpoint { strings, records },
        end: at,
        closing_marker,
    })
}

/// Writes the checkpoint of a sealed segment, crash-safely: temp file, fsync, rename,
/// directory fsync.
///
/// # Errors
/// I/O errors, or corruption if the sealed segment does not read back.
pub fn write<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segment: &SegmentInfo,
    bytes: &[u8],
) -> Result<usize> {
    let cp = describe(segment, bytes, Until::Filled, None)?.checkpoint;
    let encoded = codec::encode(segment, &cp);
    write_file(fs, dir, segment, &encoded)?;
    tracing::debug!(
        segment = segment.number,
        records = cp.records.len(),
        "wrote index checkpoint"
    );
    Ok(encoded.len())
}

/// Puts `encoded` under the checkpoint name of `segment`, crash-safely.
fn write_file<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segment: &SegmentInfo,
    encoded: &[u8],
) -> Result<()> {
    let name = checkpoint_file_name(segment.first_lsn);
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(&name);
    match fs.remove(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", &tmp, e)),
    }
    let file = fs.create_new(&tmp).map_err(|e| io_err("create", &tmp, e))?;
    file.write_all_at(encoded, 0)
        .map_err(|e| io_err("write", &tmp, e))?;
    // IMPORTANT: the contents must be durable before the rename makes them the checkpoint;
    // otherwise a crash could leave the final name pointing at a torn file.
    file.sync_data().map_err(|e| io_err("sync_data", &tmp, e))?;
    drop(file);
    fs.rename(&tmp, &path)
        .map_err(|e| io_err("rename", &path, e))?;
    // IMPORTANT: make the rename durable. (A lost rename is harmless — the segment is
    // scanned instead — but the directory fsync bounds how long that can be true.)
    fs.sync_dir(dir).map_err(|e| io_err("sync_dir", dir, e))?;
    Ok(())
}

/// Writes the prefix checkpoint (format.md §5.1) of the last segment of a log that was just
/// closed cleanly: every record up to the end of its data, which must be a commit marker
/// that vouches for everything before it. Returns the bytes written, or `None` when the
/// segment does not end that way (nothing is written: the next open reads the segment).
///
/// The caller must have closed the writer without error: every byte of the segment was
/// then synced before this reads it, and nothing writes it again in this process.
///
/// `base` is the encoded prefix checkpoint of this segment that the open consumed
/// ([`crate::IndexRebuilder::consumed_prefix`]): when it still describes this file (salt,
/// number, a prefix inside it), its records are taken as they are and only the bytes after
/// its prefix are read, instead of the whole segment.
///
/// # Errors
/// I/O errors, or corruption if the segment's records do not read back.
pub fn write_prefix<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segment: &SegmentInfo,
    base: Option<&[u8]>,
) -> Result<Option<usize>> {
    let file = fs
        .open_read_only(&segment.path)
        .map_err(|e| io_err("open", &segment.path, e))?;
    let bytes = file.map().map_err(|e| io_err("map", &segment.path, e))?;
    let file_info = SegmentInfo {
        data_end: bytes.len() as u64,
        ..segment.clone()
    };
    // The open checked this base against the file (its closing marker) before using it, and
    // the segment has only grown since (appends; a torn-tail cut at open is after it).
    let base = base.and_then(|b| codec::decode_prefix(b, &file_info).ok());
    let described = describe(
        segment,
        &bytes,
        Until::EndOfData,
        base.as_ref()
            .and_then(|(cp, end)| Some((usize::try_from(*end).ok()?, cp))),
    )?;
    if described.closing_marker.is_none() {
        return Ok(None);
    }
    let header = seglog_segment::format::SegmentHeader::decode(&bytes).map_err(|d| {
        Error::Segment(seglog_segment::Error::Corruption {
            segment: segment.number,
            offset: 0,
            reason: d.to_string(),
        })
    })?;
    // Bound to the file as its header says, whatever the caller's snapshot said.
    let info = SegmentInfo {
        number: header.segment_number,
        first_lsn: header.first_lsn,
        record_salt: header.record_salt(),
        data_end: bytes.len() as u64,
        ..segment.clone()
    };
    let encoded = codec::encode_prefix(&info, described.end as u64, &described.checkpoint);
    write_file(fs, dir, &info, &encoded)?;
    tracing::debug!(
        segment = info.number,
        records = described.checkpoint.records.len(),
        end = described.end,
        "wrote prefix checkpoint of the last segment"
    );
    Ok(Some(encoded.len()))
}

/// Loads the checkpoint of `segment`. `Ok(None)` when there is none or it is missing,
/// damaged or stale (logged): the caller scans the segment instead.
pub fn load<F: FileSystem>(fs: &F, dir: &Path, segment: &SegmentInfo) -> Option<DecodedCheckpoint> {
    let bytes = map_checkpoint(fs, dir, segment)?;
    match codec::decode(&bytes, segment) {
        Ok(cp) => Some(cp),
        Err(reason) => {
            tracing::warn!(segment = segment.number, %reason, "ignoring index checkpoint; scanning the segment");
            None
        }
    }
}

/// A decoded prefix checkpoint of the last segment (format.md §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixCheckpoint {
    /// The records of the prefix.
    pub checkpoint: DecodedCheckpoint,
    /// Where the prefix ends (the first byte after its closing commit marker).
    pub end: u64,
    /// The file's bytes (a copy: the open that reads it removes the file), from which the
    /// next clean close builds its successor ([`write_prefix`]'s `base`).
    pub encoded: bytes::Bytes,
}

/// Loads the prefix checkpoint of `segment` (the last segment; `segment.data_end` is its
/// file's length). `None` when there is none, or it is damaged or stale (logged).
pub fn load_prefix<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segment: &SegmentInfo,
) -> Option<PrefixCheckpoint> {
    let bytes = map_checkpoint(fs, dir, segment)?;
    match codec::decode_prefix(&bytes, segment) {
        Ok((checkpoint, end)) => Some(PrefixCheckpoint {
            checkpoint,
            end,
            encoded: bytes::Bytes::copy_from_slice(&bytes),
        }),
        Err(reason) => {
            tracing::info!(segment = segment.number, %reason, "not using the last segment's checkpoint; reading the segment");
            None
        }
    }
}

/// Removes the checkpoint file of `segment`, if there is one, without syncing the directory
/// (the caller does). Errors other than its absence are returned.
///
/// # Errors
/// I/O errors of the removal.
pub fn remove<F: FileSystem>(fs: &F, dir: &Path, first_lsn: u64) -> Result<()> {
    let path = dir.join(checkpoint_file_name(first_lsn));
    match fs.remove(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &path, e)),
    }
}

fn map_checkpoint<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segment: &SegmentInfo,
) -> Option<bytes::Bytes> {
    let path = dir.join(checkpoint_file_name(segment.first_lsn));
    let file = match fs.open_read_only(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot open index checkpoint; scanning the segment");
            return None;
        }
    };
    match file.map() {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read index checkpoint; scanning the segment");
            None
        }
    }
}

/// Removes what no open may trust: temporary checkpoint files, checkpoints of segments that
/// are gone, and checkpoints that do not describe their segment as it is now (a segment
/// replaced by compaction, or cut by salvage, and the process stopped before its old
/// checkpoint went: such a file may still hold the ids of erased executions). With `keep`
/// false (checkpoints off), every checkpoint goes: nothing keeps them current. Best effort:
/// failures are logged.
pub fn remove_orphans<F: FileSystem>(fs: &F, dir: &Path, segments: &[SegmentInfo], keep: bool) {
    let live: std::collections::BTreeMap<u64, &SegmentInfo> =
        segments.iter().map(|s| (s.first_lsn, s)).collect();
    let Ok(names) = fs.list(dir) else { return };
    let mut removed = false;
    for name in names {
        let orphan = if name.ends_with(TEMP_SUFFIX) {
            true
        } else if let Some(stem) = name.strip_suffix(SUFFIX) {
            match parse_segment_file_name(&format!(
                "{stem}{}",
                seglog_segment::format::SEGMENT_SUFFIX
            )) {
                Some(Ok(lsn)) => match live.get(&lsn) {
                    Some(segment) if keep => !describes(fs, &dir.join(&name), segment),
                    _ => true,
                },
                _ => false,
            }
        } else {
            false
        };
        if orphan {
            match fs.remove(&dir.join(&name)) {
                Ok(()) => removed = true,
                Err(e) => tracing::warn!(name, error = %e, "cannot remove stale checkpoint file"),
            }
        }
    }
    if removed {
        // IMPORTANT: a removed checkpoint may have held erased ids: the removal is made
        // durable.
        if let Err(e) = fs.sync_dir(dir) {
            tracing::warn!(error = %e, "cannot sync directory after removing stale checkpoints");
        }
    }
}

/// True when the checkpoint at `path` names `segment` (number, first LSN, length) and the
/// segment is sealed; unreadable files count as describing it (left for `load` to judge).
fn describes<F: FileSystem>(fs: &F, path: &Path, segment: &SegmentInfo) -> bool {
    let Ok(file) = fs.open_read_only(path) else {
        return true;
    };
    let mut header = [0u8; super::HEADER_LEN];
    if file.read_exact_at(&mut header, 0).is_err() {
        return true;
    }
    let field = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let flags = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    // A prefix checkpoint (flag set) of the last segment goes at every open: the open that
    // reads it has consumed it (format.md §5.1).
    segment.sealed
        && flags == 0
        && (field(16), field(24), field(32))
            == (segment.number, segment.first_lsn, segment.data_end)
}
