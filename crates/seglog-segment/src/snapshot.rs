//! A consistent set of a log directory's segment files, opened without the directory lock,
//! for readers that do not own the log (read-only opens, their refreshes and backups).
//!
//! A writer in another process may roll, compact or recover while we look, so listing the
//! directory and opening what it names is not enough: a compaction between two opens could
//! hand us an output next to one of its own inputs (records twice), or one of them without
//! the other (records missing). What must hold, and how:
//!
//! - Every file is opened once and read through that handle from then on: a file that
//!   compaction renames over or removes lives on for us, unchanged (sealed segments never
//!   change; the active one only grows past what a reader trusts).
//! - The set is accepted only if, after every file was opened, the directory holds no
//!   committed replacement manifest (`REPLACE`, format.md §6) and then still names each
//!   opened file (same header: number, salt, first LSN, creation time) under the same name,
//!   with no new segment name except after the last one. A file never comes back once
//!   removed, so each opened file was present from its open to its check, and all of them at
//!   the moment of the last open: a state of the directory that really existed. `REPLACE`
//!   stands for the whole of a switch (from before its first rename to after its last
//!   removal), so a set taken in the middle of one fails the check.
//! - Otherwise the attempt is thrown away and made again, a bounded number of times.

use crate::format::{HeaderDefect, SegmentHeader, MANIFEST_FILE_NAME, SEGMENT_HEADER_LEN};
use crate::inspect::list_segment_files;
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Attempts before giving up on a directory that keeps changing.
const ATTEMPTS: u32 = 50;

/// One segment file, opened.
pub(crate) struct OpenedSegment<F: FileSystem> {
    pub path: PathBuf,
    pub file: F::File,
    pub header: SegmentHeader,
}

/// A file inside the log, under a segment name, whose header does not decode. A writer's
/// open removes it when it holds no record (format.md §4, step 1); `read_view` judges it as
/// that open does, and reads past it or refuses the log.
pub(crate) struct HeaderlessFile<F: FileSystem> {
    pub path: PathBuf,
    pub file: F::File,
    pub defect: HeaderDefect,
    /// The index in `Snapshot::segments` of the segment that follows it.
    pub before: usize,
}

/// The segments of a directory at one moment.
pub(crate) struct Snapshot<F: FileSystem> {
    /// In log order.
    pub segments: Vec<OpenedSegment<F>>,
    /// Files inside the log without a header, each followed by a segment (at most one per
    /// gap between two segments).
    pub headerless: Vec<HeaderlessFile<F>>,
}

/// The header at the start of `file`, or why it does not decode.
fn read_header<F: SegmentFile>(
    file: &F,
    path: &Path,
) -> Result<std::result::Result<SegmentHeader, HeaderDefect>> {
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(SegmentHeader::decode(&buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Err(HeaderDefect::Short)),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Whether a committed replacement is in progress (or a crash left one for the next open).
fn replacing<F: FileSystem>(fs: &F, dir: &Path) -> Result<bool> {
    let path = dir.join(MANIFEST_FILE_NAME);
    match fs.open_read_only(&path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

/// Takes a consistent snapshot of `dir`'s segments (see the module documentation).
///
/// # Errors
/// [`Error::DirectoryChanging`] when no consistent set could be taken in
/// `ATTEMPTS` tries (a replacement manifest that stays: a crashed compaction that only the
/// next writer's open finishes); corruption (a sealed segment without a readable header, a
/// header that contradicts its name); I/O errors.
pub(crate) fn take<F: FileSystem>(fs: &F, dir: &Path) -> Result<Snapshot<F>> {
    for attempt in 0..ATTEMPTS {
        if let Some(snapshot) = attempt_once(fs, dir)? {
            return Ok(snapshot);
        }
        std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20)) + 1));
    }
    Err(Error::DirectoryChanging {
        dir: dir.to_path_buf(),
    })
}

/// One attempt: `None` when the directory changed under it.
fn attempt_once<F: FileSystem>(fs: &F, dir: &Path) -> Result<Option<Snapshot<F>>> {
    if replacing(fs, dir)? {
        return Ok(None);
    }
    let listed = list_segment_files(fs, dir)?;
    let mut segments: Vec<OpenedSegment<F>> = Vec::with_capacity(listed.len());
    let mut headerless: Vec<HeaderlessFile<F>> = Vec::new();
    for (i, (first_lsn, path)) in listed.iter().enumerate() {
        let file = match fs.open_read_only(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        match read_header(&file, path)? {
            Ok(header) if header.first_lsn == *first_lsn => segments.push(OpenedSegment {
                path: path.clone(),
                file,
                header,
            }),
            Ok(header) => {
                return Err(Error::Corruption {
                    segment: header.segment_number,
                    offset: 0,
                    reason: format!(
                        "{}: file name says first LSN {first_lsn} but header says {}",
                        path.display(),
                        header.first_lsn
                    ),
                })
            }
            // A last file without a header and nothing written after the header's place
            // holds nothing acknowledged: a segment the writer is creating, one whose
            // creation a crash cut, or another log's file of zeros (design.md, "The
            // directory moved under an open log"). Which, a reader cannot tell for sure
            // (review 136), so the segment before it is served as the active one: what a
            // later record proves durable, a prefix of what was acknowledged. With anything
            // written after it, it is a segment whose header was damaged: refused, as the
            // writer's open refuses it (review 137: its records were hidden, and a backup
            // of the view was a clean log without them); unless the header decodes when
            // read again: a roll wrote it and appended between the two reads (review 138),
            // and the directory changed under this attempt.
            Err(defect) if i + 1 == listed.len() => {
                let from = SEGMENT_HEADER_LEN as u64;
                if !crate::inspect::written_zeros_from(&file, path, from)? {
                    if read_header(&file, path)?.is_ok() {
                        return Ok(None);
                    }
                    return Err(crate::recovery::header_error(path, defect));
                }
            }
            Err(defect) => {
                let before = segments.len();
                if headerless.last().is_some_and(|h| h.before == before) {
                    return Err(unreadable_header(path));
                }
                headerless.push(HeaderlessFile {
                    path: path.clone(),
                    file,
                    defect,
                    before,
                });
            }
        }
    }
    // Nothing follows a file without a header but one being created: once that is gone (a
    // writer's open removes a cut creation), the file would be the last one.
    if let Some(h) = headerless.iter().find(|h| h.before == segments.len()) {
        return Err(unreadable_header(&h.path));
    }
    // IMPORTANT: checked after every open and before the names are checked again: a
    // replacement switching files between our opens either still holds `REPLACE` here, or
    // finished before this check, and then removed an input we hold (the check below).
    if replacing(fs, dir)? {
        return Ok(None);
    }
    let relisted = list_segment_files(fs, dir)?;
    let last_listed = listed.last().map(|(lsn, _)| *lsn);
    for (lsn, _) in &relisted {
        let known = listed.iter().any(|(l, _)| l == lsn);
        if !known && last_listed.is_some_and(|last| *lsn < last) {
            return Ok(None); // a new name inside the log: a replacement output
        }
    }
    for s in &segments {
        let file = match fs.open_read_only(&s.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &s.path, e)),
        };
        if read_header(&file, &s.path)? != Ok(s.header) {
            return Ok(None);
        }
    }
    Ok(Some(Snapshot {
        segments,
        headerless,
    }))
}

fn unreadable_header(path: &Path) -> Error {
    Error::Corruption {
        segment: 0,
        offset: 0,
        reason: format!("{}: unreadable header in a sealed segment", path.display()),
    }
}
