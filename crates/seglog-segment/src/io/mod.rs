//! The one door to the file system. Every byte the engine reads or writes goes through
//! [`FileSystem`] and [`SegmentFile`], so tests can swap in a file system that fails on
//! demand or forgets unsynced bytes the way a power cut would (see `sim`, feature `sim`).

mod read_ahead;
#[cfg(feature = "sim")]
pub mod sim;
mod std_fs;

pub use std_fs::{StdDirLock, StdFs};

use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

/// What names one file or directory on one file system: `(st_dev, st_ino)` on a real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// The device (file system) it is on.
    pub device: u64,
    /// Its inode number there.
    pub inode: u64,
}

/// Directory-level operations.
///
/// Paths are absolute or relative to the process; the engine only passes paths inside the
/// log directory.
pub trait FileSystem: Send + Sync + 'static {
    /// An open file.
    type File: SegmentFile;
    /// Proof of the directory lock; dropping it releases the lock.
    type DirLock: Send + Sync + 'static;

    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates a new file for reading and writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file read-only.
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File>;
    /// Renames `from` to `to`, replacing `to`. Durable only after [`Self::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Renames `from` to `to`; fails with [`io::ErrorKind::AlreadyExists`] if `to` exists
    /// (`RENAME_NOREPLACE`). Durable only after [`Self::sync_dir`]. The default checks,
    /// then renames: atomic only against this process, which holds the directory lock.
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self.identity(to) {
            Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.rename(from, to),
            Err(e) => Err(e),
        }
    }
    /// Removes a file. Durable only after [`Self::sync_dir`].
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Takes the exclusive lock on `dir` (through a `LOCK` file in it).
    /// Fails with [`io::ErrorKind::WouldBlock`] when someone else holds it.
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock>;
    /// Which file or directory `path` names now (following symbolic links). A log records
    /// its directory's identity at open and checks it before each change to the directory:
    /// a directory renamed or removed under an open log is then refused, never written into
    /// at its old path (see `crate::DirGuard`).
    fn identity(&self, path: &Path) -> io::Result<FileIdentity>;

    /// `path` made absolute against the process's working directory, without touching the
    /// disk: a log keeps the directory it was opened in, whatever the working directory
    /// becomes later. (A path, not a handle: a log whose directory is renamed while it is
    /// open refuses further changes, see [`Self::identity`].) Default:
    /// [`std::path::absolute`].
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        std::path::absolute(path)
    }

    /// Makes `to` a second name of the file `from` (a hard link); fails if `to` exists.
    /// Durable only after [`Self::sync_dir`] of `to`'s directory. The default refuses
    /// ([`io::ErrorKind::Unsupported`]): callers copy instead.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::ErrorKind::Unsupported.into())
    }

    /// How many names the file at `path` has (`st_nlink`): a recovery that must cut a file
    /// with other names cuts by copy, not in place. No default: a wrapper that forgot to
    /// forward it would answer for the wrong file system (review 64). A file system that
    /// cannot link answers 1 for any file that exists.
    fn link_count(&self, path: &Path) -> io::Result<u64>;

    /// Whether appends gain from written zeros ahead of the tail (see
    /// [`crate::SegmentOptions::zero_ahead_bytes`]). True for real files: a write into
    /// preallocated, unwritten space makes its fdatasync also write the file's block map.
    /// Default: false.
    fn zeroes_ahead(&self) -> bool {
        false
    }
}

/// File-level operations. All positional, so readers and the writer never share a cursor.
#[allow(clippy::len_without_is_empty)] // `len` is a file's size, not a collection's.
pub trait SegmentFile: Send + Sync + 'static {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Writes `parts` back to back from `offset`, as one `pwritev` where the file system
    /// has it: a round of large records is written without first being copied into one
    /// buffer. Like any write, it may stop partway on an error. Default: one
    /// [`write_all_at`](Self::write_all_at) per part.
    fn write_all_vectored_at(&self, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        let mut at = offset;
        for part in parts {
            self.write_all_at(part, at)?;
            at += part.len() as u64;
        }
        Ok(())
    }
    /// Makes the file's data and size durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves space up to `len` bytes (`fallocate`); reads of it return zeros.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// The file's current size.
    fn len(&self) -> io::Result<u64>;
    /// Which file this handle is open on (`fstat`'s device and inode): what tells whether a
    /// file opened by path is the one the path named before.
    fn identity(&self) -> io::Result<FileIdentity>;
    /// A read-only view of the file's current contents (a memory map for real files).
    /// The view must not be used on a file that can still shrink.
    fn map(&self) -> io::Result<Bytes>;

    /// A view of the first `len` bytes that keeps showing later writes (a shared memory
    /// map), or `None` where the file system cannot offer one. The file must already be
    /// at least `len` bytes long, and readers must stay below what was written.
    fn map_live(&self, _len: u64) -> io::Result<Option<Bytes>> {
        Ok(None)
    }

    /// An offset at or after `from` beyond which the file holds no written data (only holes
    /// or preallocated space, which read as zeros). The file's length is always a correct
    /// answer; a file system that tracks holes can answer much earlier, sparing callers
    /// from reading megabytes of zeros.
    fn written_data_end(&self, from: u64) -> io::Result<u64> {
        let _ = from;
        self.len()
    }

    /// Drops every cached page that overlaps `offset..offset + len`, so that the next read of
    /// them comes from the disk (`POSIX_FADV_DONTNEED`). Dirty pages stay: sync first.
    /// After a failed writeback, the page cache may hold bytes the disk never got; this is how
    /// recovery sees the disk instead. A file system without a page cache does nothing.
    fn evict(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }

    /// A hint that `ranges` (offset, length) of the file are about to be read: a file system
    /// with a page cache may start reading all of them from the disk now, so that the disk
    /// works on many at once instead of one page per fault. It never changes what a read
    /// returns, and callers go on whatever it answers. Returns whether reads were started
    /// (`false`: nothing to do, or the ranges look cached already). The default does
    /// nothing.
    fn will_need(&self, ranges: &[(u64, u64)]) -> io::Result<bool> {
        let _ = ranges;
        Ok(false)
    }

    /// Makes `offset..offset + len` written zeros (not merely reserved space), so that a
    /// later write there and its fdatasync change nothing in the file's block map. Within
    /// the file's size only. The default writes zeros.
    fn write_zeros(&self, offset: u64, len: u64) -> io::Result<()> {
        write_zeros_by_hand(self, offset, len)
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// Writes zeros over `offset..offset + len` in pieces of at most 256 KiB.
pub(crate) fn write_zeros_by_hand<F: SegmentFile + ?Sized>(
    file: &F,
    offset: u64,
    len: u64,
) -> io::Result<()> {
    const PIECE: u64 = 256 << 10;
    let zeros = vec![0u8; PIECE.min(len) as usize];
    let mut at = offset;
    while at < offset + len {
        let n = PIECE.min(offset + len - at) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Makes `bytes` the contents of `dir/name`, crash-atomically: written under `dir/tmp_name`
/// (a leftover of that name is removed first), fdatasynced, renamed over `name`, and the
/// directory fsynced. After it returns the file is durable under its name; after a crash
/// there is the old file (or none) or the new one, whole, never a torn one (a temp file may
/// be left behind).
///
/// # Errors
/// I/O errors.
pub fn replace_file_durably<F: FileSystem>(
    fs: &F,
    dir: &Path,
    name: &str,
    tmp_name: &str,
    bytes: &[u8],
) -> crate::Result<()> {
    use crate::Error;
    let path = dir.join(name);
    let tmp = dir.join(tmp_name);
    crate::replacement::remove_if_present(fs, &tmp)?;
    let file = fs
        .create_new(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all_at(bytes, 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    // IMPORTANT: the contents are durable before the rename gives them the final name, so a
    // crash never leaves a torn file under it.
    file.sync_data()
        .map_err(|e| Error::io("sync_data", &tmp, e))?;
    drop(file);
    fs.rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &path, e))?;
    // IMPORTANT: and the rename is durable before the caller relies on the file.
    fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))
}
