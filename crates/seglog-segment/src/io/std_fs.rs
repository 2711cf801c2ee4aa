//! [`FileSystem`] over `std::fs`: the production implementation.

use super::{FileIdentity, FileSystem, SegmentFile};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

/// A real file.
#[derive(Debug)]
pub struct StdFile(File);

/// The lock on a log directory: an exclusive `flock` on its `LOCK` file.
///
/// Dropping it unlocks explicitly (`LOCK_UN`) before closing. A `flock` belongs to the open
/// file description, which a child process forked by another thread shares until it calls
/// `exec`; closing only our descriptor would leave the lock held by that child meanwhile, and
/// a reopen right after `close` would fail with `Locked`. `LOCK_UN` releases it for every copy.
#[derive(Debug)]
pub struct StdDirLock(File);

impl Drop for StdDirLock {
    fn drop(&mut self) {
        if let Err(e) = rustix::fs::flock(&self.0, rustix::fs::FlockOperation::Unlock) {
            tracing::warn!(error = %e, "cannot unlock the log directory; closing the lock file anyway");
        }
    }
}

impl FileSystem for StdFs {
    type File = StdFile;
    type DirLock = StdDirLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn create_new(&self, path: &Path) -> io::Result<StdFile> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map(StdFile)
    }

    fn open(&self, path: &Path) -> io::Result<StdFile> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(StdFile)
    }

    fn open_read_only(&self, path: &Path) -> io::Result<StdFile> {
        File::open(path).map(StdFile)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            // File systems without RENAME_NOREPLACE (EINVAL), kernels without renameat2
            // (ENOSYS), and sandboxes whose seccomp filter refuses it (EPERM: older container
            // runtimes, systemd's `SystemCallFilter=`): check, then rename (the directory lock
            // keeps other writers of this log out of the window). A real permission error
            // comes back from the rename itself.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                match std::fs::symlink_metadata(to) {
                    Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(from, to),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // O_DIRECTORY: a file at `dir` is ENOTDIR, not a sync of the wrong thing that says Ok.
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::DIRECTORY.bits() as i32)
            .open(dir)?
            .sync_all()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    fn link_count(&self, path: &Path) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(path)?.nlink())
    }

    fn identity(&self, path: &Path) -> io::Result<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        Ok(FileIdentity {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    fn zeroes_ahead(&self) -> bool {
        true
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<StdDirLock> {
        let path = dir.join(crate::format::LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(StdDirLock(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl SegmentFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(&self.0, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, offset)
    }

    fn write_all_vectored_at(&self, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        write_all_vectored_at(&self.0, parts, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.0.metadata()?.len();
        if len <= current {
            return Ok(());
        }
        match rustix::fs::fallocate(&self.0, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            // File systems without fallocate: an explicit size is the next best thing.
            Err(rustix::io::Errno::OPNOTSUPP) => self.0.set_len(len),
            Err(e) => Err(e.into()),
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn identity(&self) -> io::Result<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let meta = self.0.metadata()?;
        Ok(FileIdentity {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    fn write_zeros(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::sync::atomic::{AtomicBool, Ordering};
        // FALLOC_FL_WRITE_ZEROES (Linux 6.17): written zeros made by the device, with no
        // page-cache traffic. Older kernels and devices without a write-zeroes command refuse
        // it; then zeros are written by hand (and the flag is not tried again).
        const FALLOC_FL_WRITE_ZEROES: u32 = 0x80;
        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        if !UNSUPPORTED.load(Ordering::Relaxed) {
            let flags = rustix::fs::FallocateFlags::from_bits_retain(FALLOC_FL_WRITE_ZEROES);
            match rustix::fs::fallocate(&self.0, flags, offset, len) {
                Ok(()) => return Ok(()),
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
                    UNSUPPORTED.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        super::write_zeros_by_hand(self, offset, len)
    }

    fn evict(&self, offset: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        // The kernel drops whole pages inside the range only: widen it to the pages it
        // overlaps (the end is widened by the kernel itself at the end of the file).
        let page = rustix::param::page_size() as u64;
        let start = offset / page * page;
        let len = std::num::NonZeroU64::new(len + (offset - start));
        rustix::fs::fadvise(&self.0, start, len, rustix::fs::Advice::DontNeed)
            .map_err(io::Error::from)
    }

    fn will_need(&self, ranges: &[(u64, u64)]) -> io::Result<bool> {
        super::read_ahead::will_need(&self.0, ranges)
    }

    fn written_data_end(&self, from: u64) -> io::Result<u64> {
        use rustix::fs::{seek, SeekFrom};
        let len = self.0.metadata()?.len();
        // Walk data/hole pairs with SEEK_DATA / SEEK_HOLE; the end of the last data run is
        // where written bytes end. Preallocated (unwritten) extents count as holes on ext4
        // and xfs when nothing of them is cached. Any failure falls back to the length.
        let mut at = from;
        let mut end = from;
        while at < len {
            let data = match seek(&self.0, SeekFrom::Data(at)) {
                Ok(d) => d,
                Err(rustix::io::Errno::NXIO) => break,
                Err(_) => return Ok(len),
            };
            let hole = match seek(&self.0, SeekFrom::Hole(data)) {
                Ok(h) => h,
                Err(_) => return Ok(len),
            };
            if hole <= data {
                return Ok(len);
            }
            end = hole;
            at = hole;
        }
        Ok(end.min(len))
    }

    fn map(&self) -> io::Result<Bytes> {
        if self.0.metadata()?.len() == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: the engine maps sealed segments (and the active one: during recovery, and
        // for reads of its durable bytes while it holds the directory lock), and reads a map
        // only below the data end, which no truncation (sealing, a clean close's cut of the
        // zeros after the commit marker) goes below. Another process truncating the file
        // could still fault a read (SIGBUS); the LOCK file keeps seglog writers away, and
        // read-only tools read positionally and copy what they read.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&self.0)? };
        Ok(Bytes::from_owner(map))
    }

    fn map_live(&self, len: u64) -> io::Result<Option<Bytes>> {
        if len == 0 || self.0.metadata()?.len() < len {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: as for `map`. A shared read-only mapping of a file this process appends to
        // with pwrite sees those writes (one page cache). The active segment is preallocated
        // to `len` and only shrinks when sealed, to its data end, or at a clean close, to the
        // end of its commit marker: readers stay below the data end in both cases.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&self.0)? };
        Ok(Some(Bytes::from_owner(map)))
    }
}

/// The most slices one `pwritev` takes (`IOV_MAX` on Linux).
const MAX_IOVECS: usize = 1024;

/// `parts` written back to back from `offset` with `pwritev`, at most [`MAX_IOVECS`] slices
/// per call, resuming after a short write or `EINTR`.
fn write_all_vectored_at(file: &File, parts: &[&[u8]], mut offset: u64) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = parts
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| io::IoSlice::new(part))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let batch = rest.len().min(MAX_IOVECS);
        match rustix::io::pwritev(file, &rest[..batch], offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                offset += written as u64;
                io::IoSlice::advance_slices(&mut rest, written);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vectored_write_of_more_slices_than_one_call_takes_lands_back_to_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let file = StdFs.create_new(&path).expect("create");
        // 2,500 parts (empty ones among them) need three calls of at most 1,024 slices.
        let parts: Vec<Vec<u8>> = (0..2_500usize)
            .map(|i| vec![(i % 251) as u8; (i * 7) % 300])
            .collect();
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        file.write_all_at(b"head", 0).expect("head");
        file.write_all_vectored_at(&slices, 4)
            .expect("vectored write");
        let expected: Vec<u8> = b"head".iter().copied().chain(parts.concat()).collect();
        assert_eq!(file.len().expect("len"), expected.len() as u64);
        let mut read = vec![0u8; expected.len()];
        assert_eq!(file.read_at(&mut read, 0).expect("read"), expected.len());
        assert_eq!(read, expected);
    }

    #[test]
    fn a_vectored_write_of_nothing_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StdFs.create_new(&dir.path().join("f")).expect("create");
        file.write_all_vectored_at(&[&[], &[]], 10)
            .expect("empty write");
        assert_eq!(file.len().expect("len"), 0);
    }
}
