//! [`SegmentLog`]: a directory of segments opened for appending and reading.
//!
//! Appends go through group commit (`group_commit`); segment creation and sealing through
//! `roll`; reads go straight to a segment's bytes and never wait for a commit.

mod backup;
mod bell;
mod close;
mod drop_behind;
mod group_commit;
mod offload;
mod ordered_submit;
mod prepare;
mod read_only;
mod replace;
mod roll;
mod round_runner;
mod sync_written;
mod waiters;
mod zeroing;

pub use backup::{copy_prefix, link_or_copy, prepare_destination, SegmentBackup};
pub use group_commit::Appended;
pub use ordered_submit::OrderedQueue;
pub use read_only::{CheckedView, ReloadedView};
pub use replace::Replacement;

use crate::format::{EncodedRecord, EventBatch};
use crate::io::{FileSystem, SegmentFile};
use crate::recovery::{recover, RecoveryReport};
use crate::scan::RecoveryVisitor;
use crate::segment::{Record, RecordPosition, SegmentEntry, SegmentInfo, SegmentRecords};
use crate::stats::{WriterCounters, WriterStats};
use crate::sync::{AtomicU64, Mutex};
use crate::{Error, Result, SegmentOptions};
use group_commit::CommitState;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

pub(crate) struct Inner<F: FileSystem> {
    fs: F,
    dir: PathBuf,
    opts: SegmentOptions,
    commit: Mutex<CommitState>,
    /// Where blocked waiters sleep (`bell`).
    bell: Arc<bell::Bell>,
    durable_tx: watch::Sender<u64>,
    /// Mirror of `CommitState::durable_lsn`, stored under the commit lock at the same moment,
    /// so a caller whose wait just ended never reads an older value.
    durable_lsn: AtomicU64,
    segments: RwLock<BTreeMap<u64, Arc<SegmentEntry<F>>>>,
    closed: AtomicBool,
    /// One close at a time; a second waits for the first (`close`, review 143).
    close_gate: crate::CloseGate<std::result::Result<(), crate::PoisonCause>>,
    dir_lock: parking_lot::Mutex<Option<F::DirLock>>,
    /// Set when the last handle went while a round still wrote (`crate::departing`).
    /// IMPORTANT: declared after `dir_lock`, so dropped after it: an open waiting for the
    /// departure to end must find the lock gone.
    departure: parking_lot::Mutex<Option<crate::departing::Departure>>,
    stats: WriterCounters,
    seal_listener: RwLock<Option<SealListener>>,
    /// Held for the whole of a segment replacement: one at a time.
    replace_lock: parking_lot::Mutex<()>,
    /// The thread keeping zeros ahead of the tail (`zeroing`), to wake; unset when the log
    /// keeps none.
    zeroer: std::sync::OnceLock<std::thread::Thread>,
    /// Where a round a spawned async task wins runs (`round_runner`).
    round_runner: round_runner::RoundRunner<F>,
    /// The next segment's file, being zeroed ahead of the roll (`prepare`).
    prepared: parking_lot::Mutex<Option<prepare::PreparedSegment<F>>>,
    /// How far this writer may have written into the active segment, kept durable ahead of
    /// its writes when it prepares segments (`tail_bound`).
    tail_lease: parking_lot::Mutex<crate::tail_bound::TailLease<F>>,
    /// Opened by `open_read_only`: nothing may be written (see `read_only`).
    read_only: bool,
    /// The directory as it was at open: checked before each change made to it by path.
    dir_guard: crate::DirGuard,
    /// The log's identity (`LOG_ID`); `None` only for a read-only open of a log that has
    /// none yet, or whose file is damaged.
    log_id: Option<crate::format::LogId>,
}

/// Called on the commit leader's thread right after a segment is sealed, with the segment
/// and its whole (durable, immutable) contents. Keep it short: hand work to another thread.
pub type SealListener = Box<dyn Fn(&SegmentInfo, &bytes::Bytes) + Send + Sync>;

/// An open log directory: the append-only writer and random-access reader of its segments.
///
/// Cheap to clone; clones share the log. Appends from many threads and tasks are grouped
/// into shared fsyncs. The directory is locked against other writers until [`Self::close`]
/// (or until the last clone is dropped).
pub struct SegmentLog<F: FileSystem> {
    inner: Arc<Inner<F>>,
    /// Shared by the clones only (background threads hold `inner`, never this): when the
    /// last clone goes, the log stops its own writers and releases the directory lock at
    /// once, whatever a background thread still holds.
    _handles: Arc<LastHandle<F>>,
}

impl<F: FileSystem> Clone for SegmentLog<F> {
    fn clone(&self) -> Self {
        SegmentLog {
            inner: self.inner.clone(),
            _handles: self._handles.clone(),
        }
    }
}

/// Dropped with the last [`SegmentLog`] clone.
struct LastHandle<F: FileSystem> {
    inner: Arc<Inner<F>>,
}

impl<F: FileSystem> Drop for LastHandle<F> {
    fn drop(&mut self) {
        self.inner.stop_background_writes();
        // IMPORTANT: a commit round may still be running (a cancelled async append's round
        // on the round runner holds the log, not a handle): it writes where the next owner
        // of the directory would. Then the lock goes only with the log itself, when that
        // round lets go of it; the drop does not wait for it (the round may be waiting for
        // this thread), and an open of the directory in this process waits for the
        // departure instead (`crate::departing`). No round can start once no handle is left.
        let idle = self.inner.commit.lock().rounds_idle();
        if idle {
            self.inner.dir_lock.lock().take();
        } else if self.inner.dir_lock.lock().is_some() {
            *self.inner.departure.lock() = Some(crate::departing::Departure::new(
                self.inner.dir_guard.identity(),
            ));
        }
    }
}

impl<F: FileSystem> std::fmt::Debug for SegmentLog<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentLog")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// `dir` as an absolute path ([`FileSystem::absolute`]): what a log opened by a relative path
/// keeps, so that a later change of the process's working directory cannot send its next
/// segment, checkpoint or tail bound to another directory. (Renaming the directory under an
/// open log still does: the log keeps a path, not a directory handle.)
///
/// # Errors
/// I/O errors (the working directory cannot be read).
pub fn absolute_dir<F: FileSystem>(fs: &F, dir: PathBuf) -> Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir);
    }
    fs.absolute(&dir).map_err(|e| Error::io("getcwd", &dir, e))
}

/// Creates `dir` (and missing parents) so that a power cut cannot take it away: every
/// directory created, and `dir` itself, is made durable in its parent. (Also what a restore
/// into a new directory uses, `seglog-tier`.)
///
/// # Errors
/// I/O errors.
pub fn create_dir_durably<F: FileSystem>(fs: &F, dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .take_while(|a| {
            fs.list(a)
                .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        })
        .collect();
    fs.create_dir_all(dir)
        .map_err(|e| Error::io("create_dir", dir, e))?;
    if crate::teeth::skipped(crate::teeth::SyncPoint::NewDirParentFsync) {
        return Ok(());
    }
    // IMPORTANT: a directory's entry lives in its parent, durable only once the parent is
    // fsynced. The log directory's parent is synced at every open, not only when this call
    // created it: a process that created it and died may never have synced it.
    let mut parents: Vec<&Path> = missing.iter().filter_map(|d| d.parent()).collect();
    if let Some(parent) = dir.parent() {
        if !parents.contains(&parent) {
            parents.insert(0, parent);
        }
    }
    for parent in parents {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        fs.sync_dir(parent)
            .map_err(|e| Error::io("sync_dir", parent, e))?;
    }
    Ok(())
}

impl<F: FileSystem> SegmentLog<F> {
    /// Opens (creating if needed) the log in `dir`: locks it, recovers it, and makes the
    /// recovered tail durable. `visitor` sees every record recovery reads.
    ///
    /// # Errors
    /// [`Error::Locked`] if another writer holds the directory (a log of this process whose
    /// last handle is gone while a commit round still writes is waited for first, at most
    /// 10 s), [`Error::Corruption`] /
    /// [`Error::UnsupportedVersion`] for damage the [`crate::RecoveryMode`] does not accept,
    /// [`Error::InvalidOptions`], and I/O errors.
    pub fn open(
        fs: F,
        dir: impl Into<PathBuf>,
        opts: SegmentOptions,
        visitor: &mut dyn RecoveryVisitor,
    ) -> Result<(Self, RecoveryReport)> {
        opts.validate()?;
        let dir = absolute_dir(&fs, dir.into())?;
        create_dir_durably(&fs, &dir)?;
        let dir_lock = crate::lock_log_dir(&fs, &dir).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => Error::Locked { dir: dir.clone() },
            _ => Error::io("lock", &dir, e),
        })?;
        let dir_guard = crate::DirGuard::capture(&fs, &dir)?;
        // Read before recovery: a damaged identity stops the open before a salvage cuts.
        let found_id = crate::log_id::read(&fs, &dir)?;
        let recovered = recover(&fs, &dir, &opts, visitor)?;
        // Made after: recovery refuses a directory that is not a log yet (a restore's).
        let log_id = crate::log_id::ensure(&fs, &dir, found_id)?;
        let next_segment_number = recovered
            .segments
            .iter()
            .map(|s| s.number())
            .max()
            .unwrap_or(0)
            + 1;
        let mut segments = BTreeMap::new();
        let mut active = None;
        for entry in recovered.segments {
            let entry = Arc::new(entry);
            active = Some(entry.clone());
            segments.insert(entry.number(), entry);
        }
        let next_lsn = recovered.last_lsn + 1;
        let inner = Arc::new(Inner {
            fs,
            dir,
            opts,
            commit: Mutex::new(CommitState::new(next_lsn, (0, 0), 0, next_segment_number)),
            bell: Arc::default(),
            durable_tx: watch::Sender::new(recovered.last_lsn),
            durable_lsn: AtomicU64::new(recovered.last_lsn),
            segments: RwLock::new(segments),
            closed: AtomicBool::new(false),
            close_gate: crate::CloseGate::default(),
            dir_lock: parking_lot::Mutex::new(Some(dir_lock)),
            departure: parking_lot::Mutex::new(None),
            stats: WriterCounters::default(),
            seal_listener: RwLock::new(None),
            replace_lock: parking_lot::Mutex::new(()),
            zeroer: std::sync::OnceLock::new(),
            round_runner: Default::default(),
            prepared: parking_lot::Mutex::new(None),
            tail_lease: parking_lot::Mutex::new(crate::tail_bound::TailLease::new(
                recovered.tail_bound.slot(),
            )),
            read_only: false,
            dir_guard,
            log_id: Some(log_id),
        });
        // Whatever the options now: a crash of a run that prepared segments can leave one.
        inner.remove_leftover_prepared()?;
        // A salvage cut short leaves its copy (format.md §1): never part of the log.
        crate::replacement::remove_if_present(
            &inner.fs,
            &inner.dir.join(crate::format::SALVAGE_TEMP_FILE_NAME),
        )?;
        let bound_file = recovered.tail_bound;
        let keeps_no_bound =
            !inner.prepares_segments() && bound_file != crate::tail_bound::Found::Absent;
        if keeps_no_bound || bound_file == crate::tail_bound::Found::Unreadable {
            // A bound this writer does not keep would be trusted by a later recovery while
            // it appends past it; one it cannot read holds generations it cannot continue
            // (its first slot could lose to an older one). Either goes, durably, first.
            crate::tail_bound::remove(&inner.fs, &inner.dir)?;
        }
        if inner.prepares_segments() {
            inner.tail_lease.lock().attach(&inner.fs, &inner.dir)?;
        }
        let active = match active {
            Some(a) => a,
            None => {
                let salt = crate::format::random_salt()
                    .map_err(|e| Error::io("getrandom", &inner.dir, e))?;
                inner.create_segment(next_segment_number, next_lsn, salt)?
            }
        };
        if !active.can_overlap() {
            if let Some(file) = inner.open_overlap_file(&active.path, &active.file)? {
                active.set_overlap_file(file);
            }
        }
        if inner.opts.preallocate {
            // A full disk must not keep a log from opening (to be read, or to be compacted):
            // without the reservation, appends simply grow the file (and fail with ENOSPC if
            // the disk is still full), and reads use positional reads instead of a live map.
            match active.file.allocate(inner.opts.segment_size_bytes) {
                Ok(()) => active.set_live_view(
                    active
                        .file
                        .map_live(inner.opts.segment_size_bytes)
                        .map_err(|e| Error::io("map", &active.path, e))?,
                ),
                Err(e) => {
                    tracing::warn!(path = %active.path.display(), error = %e, "cannot preallocate the active segment; continuing without")
                }
            }
        }
        {
            let mut st = inner.commit.lock();
            let next_lsn = next_lsn.max(active.header.first_lsn);
            inner.durable_lsn.store(next_lsn - 1, Ordering::Release);
            *st = CommitState::new(
                next_lsn,
                (active.number(), active.header.record_salt()),
                active.data_end(),
                next_segment_number.max(active.number() + 1),
            );
        }
        if active.header.compacted {
            // The last segment is a compaction output (salvage cut the segments after it, or
            // a crash undid the roll that followed such a cut): its LSNs skip, and the
            // torn-tail rules assume the active segment's do not. It is sealed again, and
            // appends go to a new segment. The flag is on disk, so every open does this
            // until the roll has happened.
            let (lsn, _) = inner.submit_roll()?;
            inner.wait_durable(lsn)?;
        }
        inner.start_zeroing()?;
        let handles = Arc::new(LastHandle {
            inner: inner.clone(),
        });
        Ok((
            SegmentLog {
                inner,
                _handles: handles,
            },
            recovered.report,
        ))
    }

    /// Lays out a record for `batch`, checking the limits.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] and [`Error::TooLarge`]; nothing is written.
    pub fn encode<P: AsRef<[u8]>>(&self, batch: &EventBatch<'_, P>) -> Result<EncodedRecord> {
        EncodedRecord::new(batch, self.inner.opts.max_record_size_bytes)
    }

    /// Queues a record and returns its LSN and position; it is **not durable yet**: call
    /// [`Self::wait_durable`] (or use [`Self::append`]). The order of submits is the log order.
    ///
    /// # Errors
    /// [`Error::Poisoned`], [`Error::Closed`], [`Error::TooLarge`].
    pub fn submit(&self, record: EncodedRecord) -> Result<Appended> {
        self.check_writable()?;
        self.inner.submit(record)
    }

    /// Blocks until the record with `lsn` is durable (leading a commit round if needed).
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a write or fsync failed before `lsn` became durable;
    /// [`Error::NotSubmitted`] if no record with `lsn` was submitted (the wait would never
    /// end); [`Error::Closed`] if the log stopped writing before `lsn` became durable.
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        self.inner.wait_durable(lsn)
    }

    /// Waits until `lsn` is durable without blocking the async runtime's threads.
    ///
    /// # Errors
    /// As [`Self::wait_durable`].
    pub async fn wait_durable_async(&self, lsn: u64) -> Result<()> {
        self.inner.wait_durable_async(lsn).await
    }

    /// Queues a record for a *buffered* append: like [`Self::submit`], and when more than
    /// [`SegmentOptions::buffered_write_bytes`] are queued and no commit round is running, writes the queue
    /// to the file on this thread, without fsync. The record is **not durable** (and not
    /// readable) until a later commit round: [`Self::sync`], any durable append, or `close`.
    /// A crash before then may lose it, and any buffered record after it.
    ///
    /// # Errors
    /// Those of [`Self::submit`]; [`Error::Poisoned`] when the write of the queue failed
    /// (the record may or may not have reached the file; it is not durable).
    pub fn submit_buffered(&self, record: EncodedRecord) -> Result<Appended> {
        self.check_writable()?;
        let appended = self.inner.submit(record)?;
        match self.write_queued_if_large() {
            // A close that began after the submit drains the queue, this record included: an
            // error here would have the caller retry a record the log keeps (review 143).
            Ok(()) | Err(Error::Closed) => Ok(appended),
            Err(e) => Err(e),
        }
    }

    /// The second half of [`Self::submit_buffered`], for a caller that submits under a lock
    /// of its own and must not write while holding it: when more than
    /// [`SegmentOptions::buffered_write_bytes`] are queued and no commit round is running, writes the queue
    /// on this thread, without fsync.
    ///
    /// # Errors
    /// [`Error::Poisoned`] (the write failed, or an earlier one did), [`Error::Closed`].
    pub fn write_queued_if_large(&self) -> Result<()> {
        self.check_writable()?;
        self.inner.write_queued_if_large()
    }

    /// Makes every record submitted before the call durable (buffered ones included): one
    /// commit round, shared with concurrent appends. Returns the LSN it made durable through.
    /// Under [`crate::SyncMode::Never`] too: there the round only writes, and `sync` then
    /// fsyncs the active segment itself (appends are acknowledged unsynced in that mode;
    /// `sync` is the request for stable storage).
    ///
    /// # Errors
    /// [`Error::Closed`]; [`Error::Poisoned`] if a write or fsync failed.
    pub fn sync(&self) -> Result<u64> {
        self.check_open()?;
        self.check_writable()?;
        let last = self.inner.last_submitted_lsn();
        self.wait_durable(last)?;
        self.inner.sync_written_through(last)?;
        Ok(last)
    }

    /// Async [`Self::sync`].
    ///
    /// # Errors
    /// As [`Self::sync`].
    pub async fn sync_async(&self) -> Result<u64> {
        self.check_open()?;
        self.check_writable()?;
        let last = self.inner.last_submitted_lsn();
        self.wait_durable_async(last).await?;
        self.inner.sync_written_through_async(last).await?;
        Ok(last)
    }

    /// Appends one record and returns once it is durable (blocking).
    ///
    /// # Errors
    /// Those of [`Self::encode`], [`Self::submit`] and [`Self::wait_durable`].
    pub fn append<P: AsRef<[u8]>>(&self, batch: &EventBatch<'_, P>) -> Result<Appended> {
        let appended = self.submit(self.encode(batch)?)?;
        self.wait_durable(appended.lsn)?;
        Ok(appended)
    }

    /// Appends one record and returns once it is durable (async).
    ///
    /// # Errors
    /// As [`Self::append`].
    pub async fn append_async<P: AsRef<[u8]>>(
        &self,
        batch: &EventBatch<'_, P>,
    ) -> Result<Appended> {
        let appended = self.submit(self.encode(batch)?)?;
        self.wait_durable_async(appended.lsn).await?;
        Ok(appended)
    }

    /// LSN through which every record is durable.
    pub fn durable_lsn(&self) -> u64 {
        self.inner.durable_lsn.load(Ordering::Acquire)
    }

    /// Follows [`Self::durable_lsn`]: changes whenever it advances (or the log is poisoned or
    /// closed), for followers of the log.
    pub fn durable_watch(&self) -> crate::DurableWatch {
        crate::DurableWatch::new(self.inner.durable_tx.subscribe())
    }

    /// Reads the record at `position` (durable records only).
    ///
    /// # Errors
    /// [`Error::NoSuchRecord`], [`Error::ChecksumMismatch`], [`Error::Corruption`],
    /// [`Error::Closed`], I/O errors.
    pub fn read(&self, position: RecordPosition) -> Result<Record> {
        self.check_open()?;
        let entry = self.segment_entry(position)?;
        entry.read_record(position.offset)
    }

    /// Every durable record of segment `segment` from `offset`, in order.
    ///
    /// # Errors
    /// [`Error::NoSuchRecord`] for an unknown segment, [`Error::Closed`], I/O errors.
    pub fn records_from(&self, position: RecordPosition) -> Result<SegmentRecords> {
        self.check_open()?;
        let entry = self.segment_entry(position)?;
        let (bytes, base) = entry.durable_bytes_from(position.offset)?;
        Ok(SegmentRecords::new(
            &entry.header,
            bytes,
            base,
            position.offset,
        ))
    }

    /// The durable bytes of segment `segment`, header included (a shared view, no copy for
    /// sealed segments).
    ///
    /// # Errors
    /// [`Error::NoSuchRecord`] for an unknown segment, [`Error::Closed`], I/O errors.
    pub fn segment_bytes(&self, segment: u64) -> Result<bytes::Bytes> {
        self.check_open()?;
        let entry = self.segment_entry(RecordPosition { segment, offset: 0 })?;
        entry.durable_bytes()
    }

    /// Every durable record of the log, in log order.
    ///
    /// # Errors
    /// [`Error::Closed`], I/O errors.
    pub fn records(&self) -> Result<impl Iterator<Item = Result<Record>>> {
        let mut iters = Vec::new();
        for info in self.segments() {
            iters.push(self.records_from(RecordPosition {
                segment: info.number,
                offset: crate::format::SEGMENT_HEADER_LEN as u64,
            })?);
        }
        Ok(iters.into_iter().flatten())
    }

    /// The segments, in log order.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let mut infos: Vec<SegmentInfo> = self
            .inner
            .segments
            .read()
            .values()
            .map(|e| e.info())
            .collect();
        infos.sort_by_key(|i| i.first_lsn);
        infos
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Checks that [`Self::dir`] still names the directory this log opened: call it before
    /// changing the directory by path (see [`crate::DirGuard`]).
    ///
    /// # Errors
    /// [`Error::DirectoryMoved`], or an I/O error when the path cannot be examined.
    pub fn check_dir(&self) -> Result<()> {
        self.inner.check_dir()
    }

    /// The log's identity (docs/format.md §9): always known to a writer (its open makes one
    /// if the log has none); `None` for a read-only open of a log that has none yet, or
    /// whose `LOG_ID` is damaged (logged).
    pub fn log_id(&self) -> Option<crate::format::LogId> {
        self.inner.log_id
    }

    /// The directory as this log opened it, for checks made by other components that change
    /// it by path (checkpoints, compaction, offloading).
    pub fn dir_guard(&self) -> crate::DirGuard {
        self.inner.dir_guard.clone()
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &SegmentOptions {
        &self.inner.opts
    }

    /// The writer's counters since open.
    pub fn stats(&self) -> WriterStats {
        self.inner.stats.snapshot()
    }

    /// Installs the function told about every segment sealed from now on (replacing any
    /// earlier one). Used to write index checkpoints.
    pub fn set_seal_listener(&self, listener: SealListener) {
        *self.inner.seal_listener.write() = Some(listener);
    }

    /// The file system the log lives on.
    pub fn file_system(&self) -> &F {
        &self.inner.fs
    }

    /// Poisons the log: every later append fails until it is reopened. For layers above
    /// that find their own state can no longer follow the log's.
    pub fn poison(&self, cause: &Error) {
        self.inner.poison(cause);
    }

    /// The cause, if a failed write or fsync has poisoned the log.
    pub fn poisoned(&self) -> Option<String> {
        self.inner
            .commit
            .lock()
            .poisoned
            .as_ref()
            .map(|c| c.to_string())
    }

    /// Makes everything submitted durable, then closes: later calls fail with
    /// [`Error::Closed`] and the directory lock is released. Appends submitted before the
    /// call are made durable (or fail) before it returns; appends after it fail. The last
    /// thing written is a commit marker that vouches for every record, so that the next open
    /// tells damage to them from a torn tail. A second close waits for the first and
    /// reports its outcome.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when the final flush fails (the log is closed anyway);
    /// [`Error::InvalidOptions`] for a close from a seal listener or a waker the log runs
    /// (nothing is done: such code may run inside the round a close waits for);
    /// [`Error::Closed`] for a close from inside the running one, which cannot wait for it.
    pub fn close(&self) -> Result<()> {
        let stopped = self.stop_writes();
        // A close that did not end a close leaves the lock to the one that will, which may
        // still write.
        if !matches!(stopped, Err(Error::Closed | Error::InvalidOptions(_))) {
            self.release_lock();
        }
        stopped
    }

    /// Prepares the next segment whole on this thread, as the background thread does ahead
    /// of the roll ([`SegmentOptions::prepare_next_segment`]); true when the next roll will
    /// take a prepared file. For tests that need the prepared path at a known point (the
    /// crash enumerations run without background threads).
    #[doc(hidden)]
    pub fn prepare_next_segment_now(&self) -> bool {
        self.inner.prepare_whole_now()
    }

    /// The first half of [`Self::close`]: everything but releasing the directory lock, for a
    /// layer above that still writes files of its own in the directory (index checkpoints).
    ///
    /// # Errors
    /// As [`Self::close`].
    pub fn stop_writes(&self) -> Result<()> {
        if self.inner.read_only {
            // Nothing was written, so there is nothing to drain and no marker to write.
            self.inner.commit.lock().closed = true;
            self.inner.closed.store(true, Ordering::Release);
            self.inner.notify_followers(|_| {});
            return Ok(());
        }
        self.inner.stop_writes()
    }

    /// The second half of [`Self::close`]: releases the directory lock (which
    /// [`Self::stop_writes`] left held).
    pub fn release_lock(&self) {
        self.inner.dir_lock.lock().take();
    }

    /// The open segment named by `position`.
    fn segment_entry(&self, position: RecordPosition) -> Result<Arc<SegmentEntry<F>>> {
        self.inner
            .segments
            .read()
            .get(&position.segment)
            .cloned()
            .ok_or(Error::NoSuchRecord {
                segment: position.segment,
                offset: position.offset,
            })
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }
}
