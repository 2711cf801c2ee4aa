//! How far the writer may have written into the active segment, kept durable ahead of the
//! writes (the `TAIL_BOUND` file; layout in `format::tail_bound`, docs/format.md §3.6).
//!
//! Why: a segment made from a prepared file holds written zeros to its end (128 MiB by
//! default), so after a crash the file system cannot say where the written data ends, and
//! recovery would read every zero to check that nothing follows the end of data. With the
//! bound durable before any byte past it is written, recovery reads the zeros only up to it
//! (at most [`BOUND_STEP`] past the data, plus a round).
//!
//! Invariants:
//! - No byte of a segment at or past `bound` is written unless a slot naming that segment
//!   (number and salt) with a greater bound was made durable first. So the newest valid slot
//!   that names the last segment bounds everything ever written to it, however the crash
//!   left the file. A slot whose write was torn is invalid, and the other slot (older, and
//!   made durable before any byte past it was written) counts.
//! - A failed write or sync of the file fails the commit round (the log is poisoned): the
//!   writer never writes past a bound it could not make durable.
//! - Recovery also distrusts a bound the data it reads runs past (defence in depth: nothing
//!   this build writes can do that).
//! - A writer that does not keep the bound (the next segment not prepared) removes the file
//!   at open, durably, before it appends; so does a writer that could not read it (its
//!   generations unknown, a new slot could lose to an older one) or whose newest slot has the
//!   greatest generation (none could follow it).
//! - The file always has both slots' pages (filled at open if a power cut left it short), so
//!   no slot write needs space: a full disk never fails one.
//! - Recovery trusts a bound only for a segment of format version 5 or later
//!   ([`crate::format::TAIL_BOUND_SEGMENT_VERSION`]): no build that ignores the file can
//!   append to one.

use crate::format::{TailBound, TAIL_BOUND_FILE_NAME, TAIL_BOUND_SLOT_LEN, TAIL_BOUND_SLOT_STRIDE};
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};

/// How far past the end of a write the bound is moved when it must move: one sync of the
/// bound file per this many bytes appended, and at most this many zeros read by recovery.
pub(crate) const BOUND_STEP: u64 = 4 << 20;

fn path(dir: &Path) -> PathBuf {
    dir.join(TAIL_BOUND_FILE_NAME)
}

/// What recovery found of the bound file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No file.
    Absent,
    /// A file that could not be read: recovery uses no bound, and a writer removes it
    /// before it writes (its slots' generations are unknown, so a new slot might lose to an
    /// old one).
    Unreadable,
    /// The file's newest valid slot, if any.
    Slot(Option<TailBound>),
}

impl Found {
    /// The slot recovery may use.
    pub(crate) fn slot(self) -> Option<TailBound> {
        match self {
            Found::Slot(slot) => slot,
            Found::Absent | Found::Unreadable => None,
        }
    }
}

/// `dir`'s bound file, read as the disk holds it (recovery reads to where written bytes end
/// without a slot).
///
/// Synced, then its cached pages dropped, then read: after a slot's sync failed, the slot
/// stays in the page cache and never reaches the disk (Linux marks the page clean). Read
/// from the cache, it would hand the writer a generation the disk never saw, and the
/// writer's first slot would overwrite the newest *durable* one: a torn write of that slot
/// would leave only the older one, whose bound may lie below acknowledged data.
pub(crate) fn read<F: FileSystem>(fs: &F, dir: &Path) -> Found {
    let path = path(dir);
    let file = match fs.open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Found::Absent,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot open the tail bound; reading the last segment to its end");
            return Found::Unreadable;
        }
    };
    // A slot a dead process wrote and never synced is dirty, and the eviction leaves dirty
    // pages: sync first. A failed sync leaves the disk's slots unknown.
    let settled = sync_unless_skipped(&file).and_then(|()| {
        if crate::teeth::skipped(crate::teeth::SyncPoint::RecoveredTailBoundEvict) {
            return Ok(());
        }
        let len = file.len()?;
        file.evict(0, len)
    });
    if let Err(e) = settled {
        tracing::warn!(path = %path.display(), error = %e, "cannot settle the tail bound on disk; reading the last segment to its end");
        return Found::Unreadable;
    }
    let buf = match read_slots(&file) {
        Ok(buf) => buf,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the tail bound; reading the last segment to its end");
            return Found::Unreadable;
        }
    };
    match TailBound::newest(&buf) {
        // Valid, but no later generation can beat it: a writer could never move the bound.
        Some(slot) if slot.generation == u64::MAX => Found::Unreadable,
        slot => Found::Slot(slot),
    }
}

/// The bytes of both slots (fewer where the file is short).
fn read_slots<Fl: SegmentFile>(file: &Fl) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; TAIL_BOUND_SLOT_STRIDE as usize + TAIL_BOUND_SLOT_LEN];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The newest valid slot of `dir`'s bound file, read without writing anything (for readers
/// that do not own the log, and the tools): as the page cache shows it, unlike [`read`],
/// which settles the file first. `None` without a file or a slot recovery could use.
pub(crate) fn peek<F: FileSystem>(fs: &F, dir: &Path) -> Option<TailBound> {
    let file = fs.open_read_only(&path(dir)).ok()?;
    let buf = read_slots(&file).ok()?;
    TailBound::newest(&buf).filter(|slot| slot.generation != u64::MAX)
}

/// The bound `slot` puts on the segment whose header is at the start of `bytes`: only a slot
/// naming it (number and salt), and only for a segment of a format whose writers keep the
/// bound (no build that ignores the file can have appended to it).
pub(crate) fn bound_for(
    slot: Option<TailBound>,
    header: &crate::format::SegmentHeader,
    bytes: &[u8],
) -> Option<usize> {
    slot.filter(|b| {
        b.segment == header.segment_number
            && b.record_salt == header.record_salt()
            && crate::format::SegmentHeader::format_version_of(bytes)
                .is_some_and(|v| v >= crate::format::TAIL_BOUND_SEGMENT_VERSION)
    })
    .map(|b| usize::try_from(b.bound).unwrap_or(usize::MAX))
}

fn sync_unless_skipped<Fl: SegmentFile>(file: &Fl) -> io::Result<()> {
    if crate::teeth::skipped(crate::teeth::SyncPoint::RecoveredTailBoundFsync) {
        return Ok(());
    }
    file.sync_data()
}

/// Removes `dir`'s bound file durably, if there is one (a writer that keeps no bound).
pub(crate) fn remove<F: FileSystem>(fs: &F, dir: &Path) -> Result<()> {
    let path = path(dir);
    match fs.remove(&path) {
        Ok(()) => fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &path, e)),
    }
}

/// Both slots' pages, whole: no slot write ever needs space on the disk.
const FILE_LEN: u64 = 2 * TAIL_BOUND_SLOT_STRIDE;

/// Writes zeros over what `file` lacks of [`FILE_LEN`] (never over a slot it holds) and
/// syncs them.
fn fill<F: FileSystem>(file: &F::File, path: &Path) -> Result<()> {
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    if len >= FILE_LEN {
        return Ok(());
    }
    let zeros = vec![0u8; (FILE_LEN - len) as usize];
    file.write_all_at(&zeros, len)
        .map_err(|e| Error::io("write", path, e))?;
    file.sync_data()
        .map_err(|e| Error::io("sync_data", path, e))
}

/// A new bound file with both slots' pages written (zeros), synced, and its name made
/// durable.
fn create<F: FileSystem>(fs: &F, dir: &Path, path: &Path) -> Result<F::File> {
    let file = fs
        .create_new(path)
        .map_err(|e| Error::io("create", path, e))?;
    fill::<F>(&file, path)?;
    // Once per log, not per slot: without the name durable, a power cut would leave recovery
    // reading every zero until the next directory fsync (a roll) made it so.
    fs.sync_dir(dir)
        .map_err(|e| Error::io("sync_dir", dir, e))?;
    Ok(file)
}

/// The writer's side: the bound made durable last, and the file it goes to.
pub(crate) struct TailLease<F: FileSystem> {
    file: Option<F::File>,
    /// The newest slot this writer made durable. Not one found at open: that one may sit
    /// unsynced in the page cache of a process that died.
    granted: Option<TailBound>,
    last_generation: u64,
    /// The file could not be created (a full disk): this writer keeps no bound, and there is
    /// no file for recovery to trust.
    disabled: bool,
}

impl<F: FileSystem> TailLease<F> {
    /// `found`: the newest valid slot of the file as it is now (its generation is
    /// continued); `None` only for a file that is absent or holds no valid slot.
    pub(crate) fn new(found: Option<TailBound>) -> Self {
        TailLease {
            file: None,
            granted: None,
            last_generation: found.map_or(0, |s| s.generation),
            disabled: false,
        }
    }

    /// Makes sure the bound durably covers `end` in segment `segment` (salt `salt`) before
    /// the caller writes there: a new slot, written and synced, when it does not yet.
    pub(crate) fn ensure(&mut self, dir: &Path, segment: u64, salt: u64, end: u64) -> Result<()> {
        if self.disabled
            || self
                .granted
                .is_some_and(|g| g.segment == segment && g.record_salt == salt && end <= g.bound)
        {
            return Ok(());
        }
        // `read` refuses a file whose generation cannot be continued; this never fails.
        let generation = self.last_generation.checked_add(1).ok_or_else(|| {
            Error::io(
                "write",
                self::path(dir),
                io::Error::other("the tail bound's generation cannot grow"),
            )
        })?;
        let slot = TailBound {
            generation,
            segment,
            record_salt: salt,
            bound: end.saturating_add(BOUND_STEP),
        };
        let result = self.write_slot(dir, &slot);
        if result.is_err() {
            // Linux reports a failed writeback once: this file is not trusted again (and
            // never reopened: every later slot fails).
            self.file = None;
            self.granted = None;
        }
        result?;
        self.last_generation = slot.generation;
        self.granted = Some(slot);
        Ok(())
    }

    /// Opens the file, or creates it: at the writer's open (before any slot is written), so
    /// that a relative log path is resolved as the caller meant it (later writes go through
    /// the handle). A file that
    /// cannot be created (a full disk) leaves this writer keeping no bound, and no file.
    pub(crate) fn attach(&mut self, fs: &F, dir: &Path) -> Result<()> {
        if self.file.is_some() || self.disabled {
            return Ok(());
        }
        let path = &self::path(dir);
        let made = match fs.open(path) {
            // A file a power cut left short (created, its pages not yet synced) is filled.
            Ok(file) => fill::<F>(&file, path).map(|()| file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => create(fs, dir, path),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        match made {
            Ok(file) => self.file = Some(file),
            Err(e) => {
                // A full disk must not stop appends that fit: keep no bound, and leave no
                // file (recovery then reads to the end of written bytes).
                tracing::warn!(path = %path.display(), error = %e, "cannot make the tail bound whole; recovery after a crash will read the last segment to its end");
                remove(fs, dir)?;
                self.disabled = true;
            }
        }
        Ok(())
    }

    fn write_slot(&self, dir: &Path, slot: &TailBound) -> Result<()> {
        let path = &self::path(dir);
        let Some(file) = self.file.as_ref() else {
            return Err(Error::io(
                "open",
                path,
                io::Error::other("the tail bound file is not open"),
            ));
        };
        file.write_all_at(&slot.encode(), slot.slot_offset())
            .map_err(|e| Error::io("write", path, e))?;
        if !crate::teeth::skipped(crate::teeth::SyncPoint::TailBoundFsync) {
            file.sync_data()
                .map_err(|e| Error::io("sync_data", path, e))?;
        }
        Ok(())
    }
}
