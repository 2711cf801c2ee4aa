//! Read-only opens: [`Log::open_read_only`] reads a log that another process (or another
//! `Log` in this one) has open for writing, and [`Log::refresh`] moves its view forward.
//!
//! What a read-only log guarantees (docs/design.md, "Read-only opens"):
//! - It takes no lock and writes nothing: no file of the directory is created, truncated,
//!   synced or removed (not the lock file, not a checkpoint, not an orphan, not a torn tail).
//! - It serves only what is durable: whole sealed segments, and of the last segment the
//!   records a later record or commit marker proves synced. So its view is always a prefix of
//!   what the writer acknowledged; the writer's newest commit group shows once the writer
//!   commits again or closes the log.
//! - Its view is one consistent state of the directory (segment layer, `snapshot`), read
//!   through handles it keeps open: a compaction by the writer never changes what it serves
//!   (the old files live on for it) until [`Log::refresh`] moves it, all at once, to the new
//!   state. Reads that looked records up before a refresh look them up again
//!   (`layout_epoch`), so a read never mixes two views.
//! - Appends, syncs and compactions fail with [`crate::Error::ReadOnly`].

use crate::checkpointer::Checkpointer;
use crate::log::Log;
use crate::stats::RecoveryStats;
use crate::{CheckpointMode, Result};
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::SegmentLog;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Log<StdFs> {
    /// Opens the log in `dir` for reading only, off the async runtime's threads (in place
    /// outside a tokio runtime). See
    /// [`Log::open_read_only_with_fs`].
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the work: it runs on tokio's blocking pool to its
    /// end, and the log it opened is dropped (a read-only open writes nothing).
    ///
    /// # Errors
    /// As [`Log::open_read_only_with_fs`].
    pub async fn open_read_only(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        crate::offload::run_blocking("open", move || Log::open_read_only_with_fs(StdFs, dir)).await
    }

    /// Opens the log in `dir` for reading only, blocking the calling thread. See
    /// [`Log::open_read_only_with_fs`].
    ///
    /// # Errors
    /// As [`Log::open_read_only_with_fs`].
    pub fn open_read_only_blocking(dir: impl Into<PathBuf>) -> Result<Self> {
        Log::open_read_only_with_fs(StdFs, dir)
    }
}

impl<F: FileSystem + Clone> Log<F> {
    /// Opens the log in `dir` on `fs` for reading only (blocking): safe on a log that a
    /// writer has open, in this process or another. It takes no lock, never writes (the
    /// directory is left byte for byte as it was), and serves what is durable as of the
    /// open; [`Self::refresh`] moves the view forward. Index checkpoints are used when valid,
    /// never written. Appends, syncs and compactions fail with [`crate::Error::ReadOnly`].
    /// Offloaded segments (docs/scale-out.md, "Read-through") are indexed from their
    /// checkpoints; reading their records needs a source ([`Self::set_segment_source`]),
    /// else [`crate::Error::Offloaded`].
    ///
    /// # Errors
    /// [`seglog_segment::Error::DirectoryChanging`] when no consistent state of the directory
    /// could be read (a compaction switching segments the whole time, or a crashed one that
    /// waits for the writer's next open), corruption in what is durable, I/O errors (a
    /// missing directory among them).
    pub fn open_read_only_with_fs(fs: F, dir: impl Into<PathBuf>) -> Result<Self> {
        let started = Instant::now();
        let dir = seglog_segment::absolute_dir(&fs, dir.into())?;
        // Offloaded segments enter the index from their checkpoints, between the files, as
        // the writer's open does; their stubs are read at the moment of the snapshot.
        let taken = crate::offloaded::reader_view::take(
            &fs,
            &dir,
            |visitor| SegmentLog::open_read_only(fs.clone(), dir.clone(), visitor),
            |(segments, report)| (segments.segments(), report.empty_files_read_past.clone()),
        )?;
        let ((segments, report), mut index, offloaded, rebuild) =
            (taken.view, taken.index, taken.offloaded, taken.rebuild);
        index.publish_all();
        index.shrink_to_fit();
        let recovery = RecoveryStats {
            duration: started.elapsed(),
            bytes_scanned: report.bytes_scanned,
            records_scanned: report.records_scanned,
            checkpoints_loaded: rebuild.checkpoints_loaded,
            segments_scanned: report.segments_scanned,
            empty_files_read_past: report.empty_files_read_past.clone(),
            ..RecoveryStats::default()
        };
        tracing::debug!(
            dir = %dir.display(),
            segments = report.segments,
            events = index.event_count(),
            "opened log read-only"
        );
        // Checkpoints off: a read-only log writes none.
        let checkpointer = Checkpointer::start(fs, segments.dir_guard(), CheckpointMode::Off);
        let log = Log::assemble(dir, segments, index, checkpointer, recovery);
        log.shared.offloaded.restore(offloaded);
        Ok(log)
    }

    /// Moves a read-only log's view to what is durable now: newer events, new segments, and
    /// the result of compactions the writer finished. The switch is atomic for readers: a
    /// read returns events of the old view or of the new one, never a mix. On a log opened
    /// for writing it does nothing (its view is always current).
    ///
    /// On an error the old view stays in place and keeps being served.
    ///
    /// # Errors
    /// [`crate::Error::Closed`]; as [`Self::open_read_only_with_fs`].
    pub fn refresh(&self) -> Result<()> {
        self.check_open()?;
        if !self.is_read_only() {
            return Ok(());
        }
        let _one_at_a_time = self.shared.refresh.lock();
        let fs = self.shared.segments.file_system();
        let segments = &self.shared.segments;
        let taken = crate::offloaded::reader_view::take(
            fs,
            &self.shared.dir,
            |visitor| segments.reload_read_only(visitor),
            |view| (view.segments(), view.report().empty_files_read_past.clone()),
        )?;
        let (view, mut index, offloaded) = (taken.view, taken.index, taken.offloaded);
        index.publish_all();
        index.shrink_to_fit();
        {
            let mut current = self.shared.index.write();
            // Before anything moves, and only here: the install below does not look at the
            // directory again, so a refusal leaves the old view whole (review 118).
            let view = self.shared.segments.check_view(view)?;
            *current = index;
            // IMPORTANT: a segment the writer offloaded or brought back since the last view
            // moves between the two tables; at no moment may it be in neither, with the
            // epoch unmoved for a reader that looked at both (review 33). So: the offloaded
            // table first takes the union of old and new (a segment may be in both, as
            // during an offload: readers name it once), the epoch moves, the new segments
            // are installed, the epoch moves again, and only then do segments leave the
            // offloaded table.
            self.shared.offloaded.restore(offloaded.clone());
            // IMPORTANT: the epoch moves before the new segments are installed. Readers take
            // their positions under the index lock but read the segments without it: one
            // that took old positions and then reads in the new table must find the epoch
            // moved when it checks after the read (the table's lock orders the two), or it
            // would return the failure (or a record of another file) as its answer.
            self.shared.layout_epoch.fetch_add(1, Ordering::AcqRel);
            self.shared.segments.install_checked_view(view);
            let epoch = self.shared.layout_epoch.fetch_add(1, Ordering::AcqRel) + 1;
            self.shared.read_ahead.forget(epoch);
            self.shared.offloaded.replace(offloaded);
            // The global order's samples name offsets in the old view's files: a writer's
            // later open may give a number to another file. They are rebuilt on next use.
            self.shared.lsn_samples.retain(&[]);
        }
        self.shared.visible_tx.send_modify(|v| *v += 1);
        self.shared.watchers.notify_all();
        Ok(())
    }
}

impl<F: FileSystem> Log<F> {
    /// True for a log opened with [`Log::open_read_only`] (or its variants).
    pub fn is_read_only(&self) -> bool {
        self.shared.segments.is_read_only()
    }
}
