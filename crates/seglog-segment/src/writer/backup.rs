//! [`SegmentLog::backup_segments`]: a consistent copy of the segments a log serves, taken
//! while it keeps running.
//!
//! Sealed segments never change, so they are hard-linked (copied where a link is refused:
//! another file system, a file system without links); the last segment is copied up to its
//! durable end, which is a clean end of records. What must hold:
//! - Only a segment with a later segment in the table is linked: a writer puts a segment in
//!   its table only once its header and directory entry are durable (`roll`), so the one
//!   before it can never become active again (recovery removes only a last segment whose
//!   creation was cut short). A linked file is never written again by the live log, and the
//!   backup's own writer appends only to its last segment, which is a copy.
//! - A link is checked to name the file the log reads (same header, same length): a
//!   compaction by another process may have replaced the name since (read-only logs). If not,
//!   the bytes are copied from the handle the log reads through.
//! - Every copied file is fdatasynced before the caller syncs the directory; the caller does
//!   that last, once every file is in place.

use super::SegmentLog;
use crate::format::{SegmentHeader, SEGMENT_HEADER_LEN};
use crate::io::{FileSystem, SegmentFile};
use crate::segment::SegmentInfo;
use crate::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};

/// Bytes copied per read and write.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// What [`SegmentLog::backup_segments`] put in the destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentBackup {
    /// The segments backed up, in log order, as the source log served them.
    pub segments: Vec<SegmentInfo>,
    /// Segment files hard-linked.
    pub linked: usize,
    /// Segment files copied.
    pub copied: usize,
    /// Bytes copied (not linked).
    pub bytes_copied: u64,
}

/// Copies `len` bytes from the start of `from` into a new file `to`, and fdatasyncs it.
///
/// # Errors
/// I/O errors (a source shorter than `len` among them); `to` must not exist.
pub fn copy_prefix<F: FileSystem>(
    fs: &F,
    from: &F::File,
    from_path: &Path,
    to: &Path,
    len: u64,
) -> Result<u64> {
    let out = fs.create_new(to).map_err(|e| Error::io("create", to, e))?;
    let mut buf = vec![0u8; COPY_CHUNK_BYTES.min(usize::try_from(len).unwrap_or(usize::MAX))];
    let mut at = 0u64;
    while at < len {
        let n = buf
            .len()
            .min(usize::try_from(len - at).unwrap_or(usize::MAX));
        from.read_exact_at(&mut buf[..n], at)
            .map_err(|e| Error::io("read", from_path, e))?;
        out.write_all_at(&buf[..n], at)
            .map_err(|e| Error::io("write", to, e))?;
        at += n as u64;
    }
    // IMPORTANT: the copy's bytes are durable before its directory entry is synced and the
    // backup reported done: a power cut must not leave a named but empty or torn segment.
    out.sync_data().map_err(|e| Error::io("sync_data", to, e))?;
    Ok(len)
}

/// Hard-links `from` as `to`, or copies it where the file system refuses the link. Returns
/// whether it linked. For files that are never changed in place (sealed segments, index
/// checkpoints). `Ok(None)` when `from` does not exist.
///
/// # Errors
/// I/O errors.
pub fn link_or_copy<F: FileSystem>(fs: &F, from: &Path, to: &Path) -> Result<Option<bool>> {
    match fs.hard_link(from, to) {
        Ok(()) => return Ok(Some(true)),
        // ENOENT is also `to`'s directory missing: the copy below tells the two apart.
        Err(e) => tracing::debug!(from = %from.display(), error = %e, "cannot link; copying"),
    }
    let file = match fs.open_read_only(from) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", from, e)),
    };
    let len = file.len().map_err(|e| Error::io("stat", from, e))?;
    copy_prefix(fs, &file, from, to, len)?;
    Ok(Some(false))
}

/// Whether the file at `path` is `len` bytes long and starts with `header`.
fn is_same_segment<F: FileSystem>(fs: &F, path: &Path, header: &SegmentHeader, len: u64) -> bool {
    let Ok(file) = fs.open_read_only(path) else {
        return false;
    };
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    file.len().is_ok_and(|l| l == len)
        && file.read_exact_at(&mut buf, 0).is_ok()
        && SegmentHeader::decode(&buf).ok().as_ref() == Some(header)
}

/// Removes `path` if it exists.
fn remove_if_present<F: FileSystem>(fs: &F, path: &Path) -> Result<()> {
    crate::replacement::remove_if_present(fs, path).map(|_| ())
}

/// Checks that `dest` is a new or empty directory, creates it durably and locks it (as a
/// log's writer does, its `LOCK` file): the caller holds the lock until the copy is whole,
/// so that two backups into one destination at once cannot mix their files (the second is
/// refused), nor can a log be opened there meanwhile.
///
/// # Errors
/// [`Error::DestinationNotEmpty`] (also when another backup or a writer holds the
/// destination), I/O errors.
pub fn prepare_destination<F: FileSystem>(fs: &F, dest: &Path) -> Result<F::DirLock> {
    // Checked before the lock too, so that no `LOCK` file is left in a directory that was
    // never a candidate.
    refuse_unless_empty(fs, dest)?;
    super::create_dir_durably(fs, dest)?;
    let lock = fs.lock_dir(dest).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => Error::DestinationNotEmpty {
            path: dest.to_path_buf(),
        },
        _ => Error::io("lock", dest, e),
    })?;
    // Another backup may have filled it and let go between the first check and the lock.
    refuse_unless_empty(fs, dest)?;
    Ok(lock)
}

/// Fails with [`Error::DestinationNotEmpty`] when `dest` holds anything but a `LOCK` file.
fn refuse_unless_empty<F: FileSystem>(fs: &F, dest: &Path) -> Result<()> {
    match fs.list(dest) {
        Ok(names) if names.iter().any(|n| n != crate::format::LOCK_FILE_NAME) => {
            Err(Error::DestinationNotEmpty {
                path: dest.to_path_buf(),
            })
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("list", dest, e)),
    }
}

impl<F: FileSystem> SegmentLog<F> {
    /// Puts a copy of every segment the log serves into `dest` (see [`prepare_destination`]):
    /// sealed segments hard-linked (or copied), the last one copied up to its durable end,
    /// every copy fdatasynced. The caller adds what else it keeps (index checkpoints) and
    /// then syncs `dest`. The caller also keeps compaction away meanwhile, where it can (a
    /// writable log: its compaction lock); a read-only log's handles keep its view whole
    /// regardless.
    ///
    /// # Errors
    /// [`Error::Closed`], I/O errors.
    pub fn backup_segments(&self, dest: &Path) -> Result<SegmentBackup> {
        self.check_open()?;
        let mut entries: Vec<_> = self.inner.segments.read().values().cloned().collect();
        entries.sort_by_key(|e| e.header.first_lsn);
        let mut backup = SegmentBackup::default();
        let count = entries.len();
        for (i, entry) in entries.iter().enumerate() {
            let info = entry.info();
            let name: PathBuf = entry.path.file_name().map(PathBuf::from).ok_or_else(|| {
                Error::io("name", &entry.path, io::ErrorKind::InvalidInput.into())
            })?;
            let to = dest.join(&name);
            // IMPORTANT: a writer's own table holds a segment only once its directory entry
            // is durable, so any segment before the last is sealed for good. A read-only
            // view is a directory listing, which can show a new last segment whose name a
            // power cut may still take back; then the writer appends to the one before it
            // again, and through a link into the backup. The creation of the segment after
            // that one proves its name durable: so a read-only view links only segments with
            // two later ones, and copies the one before the last.
            let later_needed = if self.inner.read_only { 2 } else { 1 };
            let link = info.sealed && i + later_needed < count;
            let linked = link
                && fs_link(&self.inner.fs, &entry.path, &to)
                && is_same_segment(&self.inner.fs, &to, &entry.header, info.data_end);
            if linked {
                backup.linked += 1;
            } else {
                if link {
                    // Linked something else (a compaction replaced the name), or nothing.
                    remove_if_present(&self.inner.fs, &to)?;
                }
                backup.bytes_copied +=
                    copy_prefix(&self.inner.fs, &entry.file, &entry.path, &to, info.data_end)?;
                backup.copied += 1;
            }
            backup.segments.push(info);
        }
        Ok(backup)
    }
}

/// Hard-links `from` as `to`; false when the file system refuses (the caller copies).
fn fs_link<F: FileSystem>(fs: &F, from: &Path, to: &Path) -> bool {
    match fs.hard_link(from, to) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(from = %from.display(), error = %e, "cannot link a segment; copying");
            false
        }
    }
}
