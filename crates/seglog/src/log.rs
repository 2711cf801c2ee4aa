//! [`Log`]: opening, closing and the state shared by appends and reads.

use crate::checkpointer::Checkpointer;
use crate::stats::{EngineCounters, RecoveryStats, Stats};
use crate::{CheckpointMode, Error, Options, Result};
use parking_lot::RwLock;
use seglog_index::{ExecutionIndex, IndexRebuilder, Visibility};
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::{CloseTurn, SegmentLog};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// An append nobody waits on to publish it (a cancelled async append, or a buffered one):
/// once its LSN is durable (the queue keeps it), readers may see the execution's events
/// through `last_seq`.
pub(crate) struct PendingVisibility {
    pub execution: Box<str>,
    pub visibility: Visibility,
    pub last_seq: u64,
}

pub(crate) struct Shared<F: FileSystem> {
    pub dir: PathBuf,
    pub segments: SegmentLog<F>,
    pub index: RwLock<ExecutionIndex>,
    /// Appends submitted but not published by their caller (cancelled, or buffered);
    /// published once durable, by the next reader or `sync`.
    pub unpublished: seglog_segment::DurableQueue<PendingVisibility>,
    /// Bumped whenever events become visible (or the log closes): subscribers wait on it.
    pub visible_tx: watch::Sender<u64>,
    /// Per-execution wake-ups of subscriptions to one execution (`subscribe`).
    pub watchers: crate::watchers::ExecutionWatchers,
    pub closed: AtomicBool,
    /// One close at a time; a second waits for the first (`Log::close`).
    pub close_gate: seglog_segment::CloseGate<()>,
    pub checkpointer: Arc<Checkpointer>,
    pub counters: EngineCounters,
    pub recovery: RecoveryStats,
    /// Held by a running compaction: one at a time.
    pub compaction: parking_lot::Mutex<()>,
    /// The thread running a compaction, if any (`close` from that very thread, say from its
    /// progress callback, must not wait for it).
    pub compaction_thread: parking_lot::Mutex<Option<std::thread::ThreadId>>,
    /// Set by a `close` made on the compaction's own thread: the compaction releases the
    /// directory lock when it ends, not the close.
    pub unlock_after_compaction: AtomicBool,
    /// Executions a running compaction is erasing; appends to them fail. Changed only under
    /// the index's write lock, which every append holds while it checks.
    pub erasing: parking_lot::Mutex<ahash::AHashSet<Box<str>>>,
    pub erasing_active: AtomicBool,
    /// Bumped (under the index's write lock) each time compaction moves records, so a
    /// reader whose positions went stale knows to look them up again.
    pub layout_epoch: std::sync::atomic::AtomicU64,
    /// Handles for read-ahead hints (see `read_ahead`).
    pub read_ahead: crate::read_ahead::ReadAhead<F>,
    /// Sparse LSN → offset samples per segment, for reads in global order.
    pub lsn_samples: crate::global::LsnSamples,
    /// Held by a refresh of a read-only log: one at a time.
    pub refresh: parking_lot::Mutex<()>,
    /// The automatic retention thread, when `Options::retention` sets a limit.
    pub retention: parking_lot::Mutex<Option<Arc<crate::retention::RetentionWorker>>>,
    /// The last segment's prefix checkpoint that the open used (segment number, encoded
    /// bytes, ~10 bytes a record): the close extends it instead of listing the whole segment
    /// again (format.md §5.1).
    pub consumed_prefix: parking_lot::Mutex<Option<(u64, bytes::Bytes)>>,
    /// Sealed segments whose file left the directory (their bytes are in object storage),
    /// and the source reads of them go through (`offloaded`).
    pub offloaded: crate::offloaded::Offloaded,
    /// Tests only: run by a compaction between its two moves of `layout_epoch` (the index's
    /// write lock held, the new segments not installed yet), so a test can put a reader there.
    #[cfg(test)]
    pub between_epoch_moves: parking_lot::Mutex<Option<EpochMoveHook<F>>>,
}

/// See `Shared::between_epoch_moves`.
#[cfg(test)]
pub type EpochMoveHook<F> = Box<dyn Fn(&Log<F>) + Send + Sync>;

/// An open seglog: per-execution event streams in one segmented, group-committed log.
///
/// Cheap to clone; clones share the log. Appends are durable when they return
/// ([`seglog_segment::SyncMode::Always`], the default); reads see only durable events.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> seglog::Result<()> {
/// let dir = tempfile::tempdir().map_err(|e| seglog::Error::InvalidOptions(e.to_string()))?;
/// let log = seglog::Log::open(dir.path(), seglog::Options::default()).await?;
/// let seq = log.append("exec-1", "tenant-a", b"started").await?;
/// assert_eq!(seq, 1);
/// let first = log.append_batch("exec-1", "tenant-a", &[b"step".as_slice(), b"done"]).await?;
/// assert_eq!(first, 2);
/// let events = log.read("exec-1")?;
/// assert_eq!(events.len(), 3);
/// assert_eq!(&events[2].payload[..], b"done");
/// log.close()?;
/// # Ok(())
/// # }
/// ```
pub struct Log<F: FileSystem = StdFs> {
    pub(crate) shared: Arc<Shared<F>>,
}

impl<F: FileSystem> Clone for Log<F> {
    fn clone(&self) -> Self {
        Log {
            shared: self.shared.clone(),
        }
    }
}

impl<F: FileSystem> std::fmt::Debug for Log<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Log<StdFs> {
    /// Opens (or creates) the log in `dir`, off the async runtime's threads (in place
    /// outside a tokio runtime).
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the work: it runs on tokio's blocking pool to its
    /// end, and the log it opened is dropped, which releases the directory's lock
    /// (recovery's repairs, such as a cut torn tail, stay done).
    ///
    /// # Errors
    /// As [`Log::open_with_fs`].
    pub async fn open(dir: impl Into<PathBuf>, options: Options) -> Result<Self> {
        let dir = dir.into();
        crate::offload::run_blocking("open", move || Log::open_with_fs(StdFs, dir, options)).await
    }

    /// Opens (or creates) the log in `dir`, blocking the calling thread.
    ///
    /// # Errors
    /// As [`Log::open_with_fs`].
    pub fn open_blocking(dir: impl Into<PathBuf>, options: Options) -> Result<Self> {
        Log::open_with_fs(StdFs, dir, options)
    }
}

impl<F: FileSystem + Clone> Log<F> {
    /// Opens the log in `dir` on the file system `fs` (blocking): locks the directory,
    /// recovers the segments, rebuilds the index from checkpoints and the records after them.
    ///
    /// # Errors
    /// [`seglog_segment::Error::Locked`] when another writer holds the directory,
    /// corruption the [`seglog_segment::RecoveryMode`] does not accept, I/O errors,
    /// [`Error::InvalidOptions`].
    pub fn open_with_fs(fs: F, dir: impl Into<PathBuf>, options: Options) -> Result<Self> {
        let started = Instant::now();
        let dir = seglog_segment::absolute_dir(&fs, dir.into())?;
        // Recovery, the index rebuild and their events are inside it.
        let _span = tracing::info_span!("open", dir = %dir.display()).entered();
        let segment_options = options.segment_options()?;
        if options.retention.is_enabled() && options.retention.interval.is_zero() {
            return Err(Error::InvalidOptions(
                "retention.interval must be more than zero".into(),
            ));
        }
        let mut index = ExecutionIndex::new();
        let use_checkpoints = options.checkpoints != CheckpointMode::Off;
        let mut rebuilder = IndexRebuilder::new(&fs, &dir, &mut index, use_checkpoints);
        // Offloaded segments (docs/scale-out.md, "Read-through"): their records come from
        // their checkpoints, in log order between the segments recovery reads.
        let (stubs, stub_temps) = crate::offloaded::stub::list(&fs, &dir)?;
        let mut visitor = crate::offloaded::OffloadedRecovery::new(&mut rebuilder, &dir, stubs);
        let opened = SegmentLog::open(fs.clone(), dir.clone(), segment_options, &mut visitor);
        let local_infos = opened.as_ref().ok().map(|(s, _)| s.segments());
        let finished = visitor.finish(local_infos.as_deref())?;
        let (segments, report) = opened?;
        let (offloaded, finishing) = finished.unwrap_or_default();
        let rebuild = rebuilder.stats();
        let consumed_prefix = rebuilder.consumed_prefix();
        let without_checkpoint = rebuilder.sealed_without_checkpoint().to_vec();
        index.publish_all();
        index.shrink_to_fit();
        let infos = segments.segments();
        let checkpointer =
            Checkpointer::start(fs.clone(), segments.dir_guard(), options.checkpoints);
        // IMPORTANT: the offloaded segments' checkpoints are the only record of their
        // records in the directory: never orphans, whatever the checkpoint mode.
        // The same for an offload a crash interrupted: its file goes once the log is
        // assembled (`finish_interrupted_offloads`), and its checkpoint must be there then.
        let mut with_offloaded = infos.clone();
        with_offloaded.extend(offloaded.iter().map(|s| s.info(&dir)));
        seglog_index::checkpoint::remove_orphans(
            &fs,
            &dir,
            &with_offloaded,
            use_checkpoints || !offloaded.is_empty() || !finishing.segments.is_empty(),
        );
        crate::offloaded::remove_temps(&fs, &stub_temps);
        if let Some(listener) = checkpointer.listener(fs.clone(), segments.dir_guard()) {
            segments.set_seal_listener(listener);
        }
        if options.checkpoints == CheckpointMode::Background {
            // Sealed segments that had to be scanned get their checkpoint now, so the next
            // open is fast.
            for info in infos
                .iter()
                .filter(|i| i.sealed && without_checkpoint.contains(&i.number))
            {
                if let Ok(bytes) = segments.segment_bytes(info.number) {
                    checkpointer.submit(info.clone(), bytes);
                }
            }
        }
        let recovery = RecoveryStats {
            duration: started.elapsed(),
            bytes_scanned: report.bytes_scanned,
            records_scanned: report.records_scanned,
            checkpoints_loaded: rebuild.checkpoints_loaded,
            last_segment_prefix_bytes: report.last_segment_prefix_bytes,
            segments_scanned: report.segments_scanned,
            torn_tail_bytes: report.torn_tail.as_ref().map_or(0, |t| t.bytes_dropped),
            torn_tail: report.torn_tail.clone(),
            salvaged: report.salvaged.clone(),
            salvage_removed: report.salvage_removed.clone(),
            removed_incomplete_segment: report.removed_incomplete_segment.clone(),
            removed_empty_files: report.removed_empty_files.clone(),
            empty_files_read_past: Vec::new(),
            finished_replacement: report.finished_replacement,
            discarded_replacement_files: report.discarded_replacement_files,
        };
        tracing::info!(
            dir = %dir.display(),
            segments = report.segments,
            executions = index.execution_count(),
            events = index.event_count(),
            checkpoints = rebuild.checkpoints_loaded,
            scanned_bytes = report.bytes_scanned,
            took_ms = recovery.duration.as_millis() as u64,
            "opened log"
        );
        let log = Log::assemble(dir, segments, index, checkpointer, recovery);
        *log.shared.consumed_prefix.lock() = consumed_prefix;
        log.shared.offloaded.restore(offloaded);
        log.finish_interrupted_offloads(finishing)?;
        if options.retention.is_enabled() {
            let worker = crate::retention::RetentionWorker::start(&log.shared, options.retention)
                .map_err(|source| {
                Error::Segment(seglog_segment::Error::Io {
                    op: "spawn the retention thread",
                    path: log.dir().to_path_buf(),
                    source,
                })
            })?;
            *log.shared.retention.lock() = Some(worker);
        }
        Ok(log)
    }
}

impl<F: FileSystem> Log<F> {
    /// A log serving `segments` and `index` (for the opens, writable or read-only).
    pub(crate) fn assemble(
        dir: PathBuf,
        segments: SegmentLog<F>,
        index: ExecutionIndex,
        checkpointer: Arc<Checkpointer>,
        recovery: RecoveryStats,
    ) -> Self {
        let counters = EngineCounters::new(&dir);
        Log {
            shared: Arc::new(Shared {
                dir,
                segments,
                index: RwLock::new(index),
                unpublished: seglog_segment::DurableQueue::default(),
                visible_tx: watch::Sender::new(0),
                watchers: crate::watchers::ExecutionWatchers::default(),
                closed: AtomicBool::new(false),
                close_gate: seglog_segment::CloseGate::default(),
                checkpointer,
                counters,
                recovery,
                compaction: parking_lot::Mutex::new(()),
                compaction_thread: parking_lot::Mutex::new(None),
                unlock_after_compaction: AtomicBool::new(false),
                erasing: parking_lot::Mutex::new(ahash::AHashSet::new()),
                erasing_active: AtomicBool::new(false),
                layout_epoch: std::sync::atomic::AtomicU64::new(0),
                read_ahead: crate::read_ahead::ReadAhead::new(),
                lsn_samples: crate::global::LsnSamples::default(),
                refresh: parking_lot::Mutex::new(()),
                retention: parking_lot::Mutex::new(None),
                #[cfg(test)]
                between_epoch_moves: parking_lot::Mutex::new(None),
                consumed_prefix: parking_lot::Mutex::new(None),
                offloaded: crate::offloaded::Offloaded::default(),
            }),
        }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The log's identity (docs/format.md §9): 16 random bytes made with the log and kept by
    /// its backups, restores and bucket manifests. Always `Some` for a log opened for
    /// writing; `None` for a read-only open of a log that has none yet (made by an older
    /// build and never opened for writing since) or whose `LOG_ID` file is damaged.
    pub fn log_id(&self) -> Option<seglog_segment::format::LogId> {
        self.shared.segments.log_id()
    }

    /// Checks that [`Self::dir`] still names the directory this log opened (it may have been
    /// renamed or removed since, and another log opened at the path). Components that write
    /// into the log's directory by path call it first; the log's own writes do.
    ///
    /// # Errors
    /// [`seglog_segment::Error::DirectoryMoved`], or an I/O error when the path cannot be
    /// examined.
    pub fn check_dir(&self) -> Result<()> {
        Ok(self.shared.segments.check_dir()?)
    }

    /// True on a running compaction's own thread (in its progress callback).
    fn on_compaction_thread(&self) -> bool {
        *self.shared.compaction_thread.lock() == Some(std::thread::current().id())
    }

    /// Holds the compaction lock of a writable log (`None` for a read-only one, whose view
    /// no compaction changes), for work that must not see segments switched under it.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when called from a running compaction's own thread (its
    /// progress callback): waiting for the lock there would never end.
    pub(crate) fn hold_off_compaction(&self) -> Result<Option<parking_lot::MutexGuard<'_, ()>>> {
        if self.shared.segments.is_read_only() {
            return Ok(None);
        }
        if self.on_compaction_thread() {
            return Err(Error::InvalidOptions(
                "cannot be called from a compaction's progress callback".into(),
            ));
        }
        Ok(Some(self.shared.compaction.lock()))
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Flushes everything appended, writes pending checkpoints, releases the directory lock.
    /// Later calls (appends, reads) fail with [`Error::Closed`]. A second close waits for
    /// the first and reports the flush's outcome: when any close returns Ok, everything
    /// appended before it is durable.
    ///
    /// # Errors
    /// A poisoned log reports its poisoning here (it is closed anyway). [`Error::Closed`]
    /// for a close that cannot wait for the running one: from a compaction's progress
    /// callback while another thread's close waits for that compaction.
    /// [`Error::InvalidOptions`] for a close from a waker the log runs (nothing is done: it
    /// may run inside a commit round that a close waits for).
    pub fn close(&self) -> Result<()> {
        if seglog_segment::inside_callback() {
            return Err(Error::InvalidOptions(
                "close cannot be called from a waker the log runs: \
                 it would wait for the commit round that runs it"
                    .into(),
            ));
        }
        // A running compaction writes in the directory: it finishes first. Unless this is
        // its own thread (a close from its progress callback): then it releases the lock
        // itself when it ends.
        let on_compaction_thread = self.on_compaction_thread();
        // One close at a time (review 143: a second returned Ok at once, before the first
        // had flushed). The segment layer keeps the flush's outcome for the later ones.
        let turn = match self.shared.close_gate.enter(!on_compaction_thread) {
            CloseTurn::First(turn) => turn,
            CloseTurn::Done(Some(())) => {
                return self.shared.segments.stop_writes().map_err(Error::from)
            }
            CloseTurn::Done(None) | CloseTurn::Busy => return Err(Error::Closed),
        };
        self.close_holding(turn, on_compaction_thread)
    }

    /// The close itself, by the holder of the close gate's turn.
    fn close_holding(
        &self,
        turn: seglog_segment::FirstClose<'_, ()>,
        on_compaction_thread: bool,
    ) -> Result<()> {
        self.shared.closed.store(true, Ordering::Release);
        // Retention runs compactions: it stops (a pass in progress ends) first.
        // (Taken out first: the mutex is not held while the thread is joined, since
        // `stats` takes it.)
        let retention = self.shared.retention.lock().take();
        if let Some(retention) = retention {
            retention.finish();
        }
        let _no_compaction = (!on_compaction_thread).then(|| self.shared.compaction.lock());
        let flushed = self.shared.segments.stop_writes();
        // The checkpoint thread writes files in the directory: it finishes before the lock
        // goes, or another process could open the log while it still writes.
        self.shared.checkpointer.finish();
        // Not from a compaction's own thread: its switch of segments may still be running.
        if flushed.is_ok() && !on_compaction_thread {
            self.write_prefix_checkpoint();
        }
        if on_compaction_thread {
            self.shared
                .unlock_after_compaction
                .store(true, Ordering::Release);
        } else {
            self.shared.segments.release_lock();
        }
        self.shared.read_ahead.forget(u64::MAX);
        self.shared.visible_tx.send_modify(|v| *v += 1);
        self.shared.watchers.notify_all();
        turn.finish(());
        flushed.map_err(Error::from)
    }

    /// [`Self::close`] for async callers: the final flush (an fdatasync) and the joins of
    /// the log's threads run off the runtime's worker threads (in place outside a tokio
    /// runtime). The close starts when this is *called*, not when the future is first
    /// polled.
    ///
    /// # Cancel safety
    /// Dropping the future, polled or not, does not stop the close, which runs to its end on
    /// a thread of its own: the log is closed either way (later calls fail with
    /// [`Error::Closed`]); only the flush's result is lost. A runtime's drop waits for that
    /// close once the blocking-pool task that joins it has started (microseconds after the
    /// call on a pool with a free thread); a runtime shut down before then drops the task
    /// unrun, and a process that exits right away may cut the close short. Await the future
    /// before exiting to know the close ended.
    ///
    /// # Errors
    /// As [`Self::close`].
    pub fn close_async(&self) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let log = self.clone();
        let runtime = tokio::runtime::Handle::try_current();
        // The close is claimed now, on the caller's thread: a close already under way is
        // waited for below without a thread (review 145: a second close waiting on a blocking
        // pool's thread starved the commit round that the first close waited for).
        let on_compaction_thread = log.on_compaction_thread();
        let started = if seglog_segment::inside_callback() || on_compaction_thread {
            // As `close` does it, at once: from a waker, a future that waited here would wait
            // for a close nobody started (review 146); from a compaction's progress callback,
            // for a close that waits for that compaction (review 147).
            Started::Ended(log.close())
        } else {
            match (log.shared.close_gate.claim(), runtime) {
                (true, Ok(runtime)) => ClaimedClose { log: log.clone() }.start(runtime),
                (true, Err(_)) => Started::Ended(ClaimedClose { log: log.clone() }.run()),
                (false, _) => Started::Elsewhere,
            }
        };
        async move {
            match started {
                Started::OnPool(closing) => match closing.await {
                    Ok(result) => result,
                    // The runtime is shutting down and cancelled the task (the close itself
                    // runs on), or it panicked: close here, which waits for that close.
                    Err(_) => log.close(),
                },
                Started::Ended(result) => result,
                Started::Elsewhere => {
                    log.shared.close_gate.ended().await;
                    log.close()
                }
            }
        }
    }

    /// Alias of [`Self::close`], for callers that speak of shutting down.
    ///
    /// # Errors
    /// As [`Self::close`].
    pub fn shutdown(&self) -> Result<()> {
        self.close()
    }

    /// After a clean close (every byte synced, the commit marker written), writes the
    /// checkpoint of the last segment's records (format.md §5.1), so that the next open reads
    /// it instead of the segment. Best effort: without it, the next open reads the segment.
    fn write_prefix_checkpoint(&self) {
        let segments = &self.shared.segments;
        if self.shared.checkpointer.mode() == CheckpointMode::Off
            || segments.is_read_only()
            || segments.poisoned().is_some()
        {
            return;
        }
        let Some(last) = segments.segments().pop() else {
            return;
        };
        if let Err(e) = segments.check_dir() {
            tracing::warn!(error = %e, "prefix checkpoint not written");
            return;
        }
        // The prefix checkpoint the open used, if the segment is still the same: only the
        // bytes after it are read.
        let base = self
            .shared
            .consumed_prefix
            .lock()
            .take()
            .filter(|(number, _)| *number == last.number);
        match seglog_index::checkpoint::write_prefix(
            segments.file_system(),
            &self.shared.dir,
            &last,
            base.as_ref().map(|(_, b)| &b[..]),
        ) {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(segment = last.number, error = %e, "checkpoint of the last segment not written");
            }
        }
    }

    /// True once a failed write or fsync poisoned the log (reopen to recover).
    pub fn is_poisoned(&self) -> bool {
        self.shared.segments.poisoned().is_some()
    }

    /// How many times the segment layout changed since open in a way a reader that listed
    /// or looked up segments before must notice: a compaction moved records, a rehydration
    /// moved a segment from the offloaded table to the local one. Readers holding positions,
    /// records read ahead, or listings compare it and read again when it moved.
    pub fn layout_epoch(&self) -> u64 {
        self.shared.layout_epoch.load(Ordering::Acquire)
    }

    /// True once the log was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Counters and latency figures since open.
    pub fn stats(&self) -> Stats {
        let w = self.shared.segments.stats();
        let mut s = Stats {
            commits: w.commits,
            fsyncs: w.syncs,
            fsync_mean_us: w.sync_nanos_total.checked_div(w.syncs).unwrap_or(0) / 1000,
            fsync_max_us: w.sync_nanos_max / 1000,
            fsync_us: w.sync_us,
            group_size: w.group_size,
            mean_group_size: if w.commits == 0 {
                0.0
            } else {
                w.records as f64 / w.commits as f64
            },
            largest_group: w.largest_group,
            bytes_written: w.bytes,
            recovery: self.shared.recovery.clone(),
            segments: self.shared.segments.segments().len(),
            checkpoints_written: self.shared.checkpointer.written(),
            poisoned: self.is_poisoned(),
            retention: self
                .shared
                .retention
                .lock()
                .as_ref()
                .map(|r| r.stats())
                .unwrap_or_default(),
            ..Stats::default()
        };
        {
            let st = self.shared.index.read();
            s.index_memory_bytes = st.memory_bytes();
            s.executions = st.execution_count();
            s.tenants = st.tenant_count();
            s.indexed_events = st.event_count();
        }
        self.shared.counters.fill(&mut s);
        #[cfg(feature = "metrics")]
        {
            let log = self.shared.dir.display().to_string();
            let gauge = |name: &'static str, value: f64| {
                metrics::gauge!(name, "log" => log.clone()).set(value);
            };
            gauge("seglog_index_memory_bytes", s.index_memory_bytes as f64);
            gauge("seglog_segments", s.segments as f64);
            gauge("seglog_fsync_mean_seconds", s.fsync_mean_us as f64 / 1e6);
            gauge("seglog_commit_group_mean", s.mean_group_size);
            gauge("seglog_recovery_seconds", s.recovery.duration.as_secs_f64());
        }
        s
    }

    /// The segments of the log, in order (for tools and tests).
    pub fn segments(&self) -> Vec<seglog_segment::SegmentInfo> {
        self.shared.segments.segments()
    }
}

/// A close claimed by [`Log::close_async`] for the thread that runs it. Dropped unrun (no
/// thread could be started for it), it gives the claim back.
struct ClaimedClose<F: FileSystem> {
    log: Log<F>,
}

impl<F: FileSystem> ClaimedClose<F> {
    fn run(self) -> Result<()> {
        // Run in place (outside a runtime), this may be a compaction's own thread, from its
        // progress callback: the close must not wait for that compaction (review 146).
        let on_compaction_thread = self.log.on_compaction_thread();
        // Finished, the drop below finds the gate closed and leaves it so.
        let turn = self.log.shared.close_gate.run_claimed();
        self.log.close_holding(turn, on_compaction_thread)
    }

    /// Runs the claimed close on a thread of its own, in `runtime`'s context (a seal listener
    /// in the drain's rounds may spawn tasks), and joins it from the blocking pool. The close
    /// is not run *on* the pool: from the claim on, every other close waits for this one, and
    /// a sync close holding the pool's last thread (a drop guard run with `spawn_blocking`)
    /// would wait for a task queued behind it (review 148). The join is: a runtime's drop
    /// waits for its blocking tasks, so a program that drops this future and exits still
    /// lets the close end (review 150). If no thread can be started, a plain close goes to
    /// the pool.
    fn start(self, runtime: tokio::runtime::Handle) -> Started {
        let log = self.log.clone();
        let context = runtime.clone();
        let job = move || {
            let _context = context.enter();
            self.run()
        };
        match std::thread::Builder::new()
            .name("seglog-close".into())
            .spawn(job)
        {
            Ok(closing) => Started::OnPool(runtime.spawn_blocking(move || {
                // The close's thread panicked: a close here reports what it left (the
                // gate's outcome, or `Closed` after a close that panicked half done).
                closing.join().unwrap_or_else(|_| log.close())
            })),
            // The job, claim and all, was dropped: the claim is given back.
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a thread for the close; closing on tokio's blocking pool");
                Started::OnPool(runtime.spawn_blocking(move || log.close()))
            }
        }
    }
}

impl<F: FileSystem> Drop for ClaimedClose<F> {
    fn drop(&mut self) {
        // A claim that never ran (its thread could not start) is given back; after `run`,
        // this finds the gate closed and leaves it so.
        self.log.shared.close_gate.release_claim();
    }
}

/// Where [`Log::close_async`]'s close runs.
enum Started {
    /// The claimed close, on its own thread joined from the blocking pool (or, when no
    /// thread could be started, a plain close on the pool).
    OnPool(tokio::task::JoinHandle<Result<()>>),
    Ended(Result<()>),
    /// Claimed by another call: wait for it.
    Elsewhere,
}

impl<F: FileSystem> Drop for Shared<F> {
    fn drop(&mut self) {
        if let Some(retention) = self.retention.get_mut().take() {
            retention.finish();
        }
        self.checkpointer.finish();
    }
}
