//! [`SegmentLog::open_read_only`]: a log opened by a reader that does not own it.
//!
//! No lock is taken and nothing is written: what is served is `read_view`'s durable part of
//! a consistent snapshot. Every entry point that would write (submit, sync, roll, segment
//! replacement, the close's commit marker) fails with [`Error::ReadOnly`] or does nothing.
//! [`SegmentLog::reload_read_only`] takes a new snapshot; [`SegmentLog::install_view`] swaps
//! it in, under whatever lock keeps the caller's own positions consistent with it.

use super::{Inner, LastHandle, SegmentLog};
use crate::io::FileSystem;
use crate::read_view::{self, ReadView};
use crate::recovery::RecoveryReport;
use crate::scan::RecoveryVisitor;
use crate::segment::SegmentInfo;
use crate::stats::WriterCounters;
use crate::sync::{AtomicU64, Mutex};
use crate::{Error, Result, SegmentOptions};
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

use super::group_commit::CommitState;

/// A newer read-only view of the directory, not yet served: hand it to
/// [`SegmentLog::install_view`].
#[must_use = "a reloaded view must be installed to be served"]
pub struct ReloadedView<F: FileSystem> {
    view: ReadView<F>,
    /// The directory it was loaded from, as the loading log opened it, and that log's
    /// identity: only a reader of that directory and that log may serve it.
    dir: crate::DirGuard,
    log_id: Option<crate::format::LogId>,
}

/// A reloaded view that [`SegmentLog::check_view`] accepted for its log: hand it to
/// [`SegmentLog::install_checked_view`].
#[must_use = "a checked view must be installed to be served"]
pub struct CheckedView<F: FileSystem>(ReloadedView<F>);

impl<F: FileSystem> ReloadedView<F> {
    /// The segments of the new view, in log order.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.view.segments.iter().map(|e| e.info()).collect()
    }

    /// What loading it found.
    pub fn report(&self) -> &RecoveryReport {
        &self.view.report
    }
}

impl<F: FileSystem> SegmentLog<F> {
    /// Opens the log in `dir` for reading only: takes no lock and never writes (no file is
    /// created, truncated, synced or removed), so it is safe on a log that a writer in
    /// another process has open. Serves what is proven durable (see `read_view`); call
    /// [`Self::reload_read_only`] to see newer data. `visitor` sees every record served.
    ///
    /// # Errors
    /// [`Error::DirectoryChanging`] when the directory kept changing, corruption in what is
    /// proven durable, I/O errors (a missing directory among them).
    pub fn open_read_only(
        fs: F,
        dir: impl Into<PathBuf>,
        visitor: &mut dyn RecoveryVisitor,
    ) -> Result<(Self, RecoveryReport)> {
        let dir = super::absolute_dir(&fs, dir.into())?;
        let view = read_view::load(&fs, &dir, visitor)?;
        // After the load, so that a missing directory is reported as the load reports it.
        let dir_guard = crate::DirGuard::capture(&fs, &dir)?;
        // A reader does without: a damaged identity must not keep tools from the records.
        let log_id = crate::log_id::read(&fs, &dir).unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), error = %e, "the log's identity is unreadable");
            None
        });
        let report = view.report.clone();
        let next_segment_number = view.segments.iter().map(|e| e.number()).max().unwrap_or(0) + 1;
        let tail = view
            .segments
            .last()
            .map_or((0, 0), |e| (e.number(), e.header.record_salt()));
        let tail_offset = view.segments.last().map_or(0, |e| e.data_end());
        let segments = view
            .segments
            .iter()
            .map(|e| (e.number(), e.clone()))
            .collect();
        let inner = Arc::new(Inner {
            fs,
            dir,
            opts: SegmentOptions {
                preallocate: false,
                zero_ahead_bytes: 0,
                ..SegmentOptions::default()
            },
            commit: Mutex::new(CommitState::new(
                view.last_lsn + 1,
                tail,
                tail_offset,
                next_segment_number,
            )),
            bell: Arc::default(),
            durable_tx: watch::Sender::new(view.last_lsn),
            durable_lsn: AtomicU64::new(view.last_lsn),
            segments: RwLock::new(segments),
            closed: AtomicBool::new(false),
            close_gate: crate::CloseGate::default(),
            dir_lock: parking_lot::Mutex::new(None),
            departure: parking_lot::Mutex::new(None),
            stats: WriterCounters::default(),
            seal_listener: RwLock::new(None),
            replace_lock: parking_lot::Mutex::new(()),
            zeroer: std::sync::OnceLock::new(),
            round_runner: Default::default(),
            prepared: parking_lot::Mutex::new(None),
            tail_lease: parking_lot::Mutex::new(crate::tail_bound::TailLease::new(None)),
            read_only: true,
            dir_guard,
            log_id,
        });
        let handles = Arc::new(LastHandle {
            inner: inner.clone(),
        });
        Ok((
            SegmentLog {
                inner,
                _handles: handles,
            },
            report,
        ))
    }

    /// True for a log opened with [`Self::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Takes a new snapshot of the directory of a read-only log and reads what of it is
    /// durable, without changing what is served; `visitor` sees every record of the new view.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] on a log opened for writing (its view is always current);
    /// [`Error::Closed`]; as [`Self::open_read_only`].
    pub fn reload_read_only(&self, visitor: &mut dyn RecoveryVisitor) -> Result<ReloadedView<F>> {
        self.check_open()?;
        if !self.inner.read_only {
            return Err(Error::InvalidOptions(
                "reload_read_only: the log is open for writing".into(),
            ));
        }
        // Before and after: a path that names another log now, or did for part of the load,
        // must not serve that log's records as this one's.
        self.inner.check_dir()?;
        let view = read_view::load(&self.inner.fs, &self.inner.dir, visitor)?;
        self.inner.check_dir()?;
        Ok(ReloadedView {
            view,
            dir: self.inner.dir_guard.clone(),
            log_id: self.inner.log_id,
        })
    }

    /// Serves `view` from now on. Records already read keep their bytes; positions taken
    /// from the previous view may fail to read (or, where a writer reused a segment number
    /// across its reopens, name another record: callers check what they read).
    ///
    /// # Errors
    /// As [`Self::check_view`], changing nothing.
    pub fn install_view(&self, view: ReloadedView<F>) -> Result<()> {
        let checked = self.check_view(view)?;
        self.install_checked_view(checked);
        Ok(())
    }

    /// Serves a view [`Self::check_view`] accepted, without checking again: a caller that
    /// changes state of its own around the install checks first, and then cannot fail
    /// halfway (review 118: a second look at the directory could).
    pub fn install_checked_view(&self, checked: CheckedView<F>) {
        let ReadView {
            segments, last_lsn, ..
        } = checked.0.view;
        *self.inner.segments.write() = segments.into_iter().map(|e| (e.number(), e)).collect();
        {
            // The commit state answers waits (`wait_outcome`): it must say what the view
            // serves, or a wait for a record the view holds would be told it was never
            // submitted (and one the view no longer holds that it is durable).
            let mut st = self.inner.commit.lock();
            st.next_lsn = last_lsn + 1;
            st.durable_lsn = last_lsn;
            st.synced_lsn = last_lsn;
            self.inner.durable_lsn.store(last_lsn, Ordering::Release);
        }
        self.inner.notify_followers(|v| *v = last_lsn);
    }

    /// `view`, once this log may serve it: only a read-only log of the directory it was
    /// loaded from may (the directory itself, whatever path names it now).
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] on a log open for writing (a view would replace its writer's
    /// files and rewind its LSNs) and for a view of another directory or log;
    /// [`Error::DirectoryMoved`] when this log's path no longer names its directory.
    pub fn check_view(&self, view: ReloadedView<F>) -> Result<CheckedView<F>> {
        if !self.inner.read_only {
            return Err(Error::InvalidOptions(
                "install_view: the log is open for writing".into(),
            ));
        }
        // By identity: a directory moved away and replaced by another log's keeps the path.
        // And the identity names this log's directory only while the path still does (a
        // removed directory's inode number is given to the next one made, review 117), and
        // where both logs know their ids, they must agree.
        let other_log = matches!((view.log_id, self.inner.log_id), (Some(a), Some(b)) if a != b);
        if !view.dir.same_directory(&self.inner.dir_guard) || other_log {
            return Err(Error::InvalidOptions(format!(
                "install_view: the view is of the log {} opened, not of this log ({})",
                view.dir.dir().display(),
                self.inner.dir.display()
            )));
        }
        self.inner.check_dir()?;
        Ok(CheckedView(view))
    }

    /// [`Error::ReadOnly`] on a read-only log.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}
