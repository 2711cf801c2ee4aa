//! [`Log::backup`]: a consistent, durable copy of a live log, taken while it keeps running.
//!
//! The copy is the segments the log serves (sealed ones hard-linked, the last one copied up
//! to its durable end; `SegmentLog::backup_segments`), plus the index checkpoints of the
//! sealed ones, so that opening the copy is as fast as opening the log. What must hold:
//! - Every event acknowledged before `backup` was called is in the copy, and the copy opens
//!   with `Log::open` and verifies clean: it is the log as it was at one durable point.
//! - No compaction switches segments meanwhile: a writable log holds its compaction lock for
//!   the whole backup. A read-only log refreshes first, so that an erasure that returned
//!   before the backup started is not undone by an old view; its kept handles then keep the
//!   view whole whatever the writer does.
//! - Erased data never comes back through a backup taken after the erasure returned: the
//!   segments that held it are gone, and so are their checkpoints (removed before
//!   `compact` returned); a checkpoint is copied only under the name of a segment of the copy.
//! - Durable when it returns: every copied file was fdatasynced, then the destination
//!   directory is fsynced, and its parent when the destination was created.

use crate::log::Log;
use crate::{Error, Result};
use seglog_segment::io::FileSystem;
use seglog_segment::{link_or_copy, prepare_destination};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What [`Log::backup`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// Segment files in the copy.
    pub segments: usize,
    /// Of those, hard-linked to the log's own files (sealed segments on the same file system).
    pub segments_linked: usize,
    /// Index checkpoints in the copy.
    pub checkpoints: usize,
    /// Of those, offloaded segments downloaded through the segment source (the copy holds
    /// them as local segments).
    pub segments_downloaded: usize,
    /// Bytes copied or downloaded (linked files not counted).
    pub bytes_copied: u64,
    /// LSN of the last record in the copy.
    pub last_lsn: u64,
    /// Wall time.
    pub duration: Duration,
}

impl<F: FileSystem + Clone> Log<F> {
    /// Writes a consistent copy of the log into `dest` (blocking), while appends and reads go
    /// on: every event acknowledged before the call is in it, and it opens with
    /// [`Log::open`] as a log of its own. `dest` must not exist or be an empty directory; it
    /// is locked as a log's writer locks its directory until the copy is whole, so a second
    /// backup into it (or a [`Log::open`] of it) meanwhile is refused.
    /// Sealed segments are hard-linked where `dest` is on the same file system (so the copy
    /// costs little space and time), copied otherwise; the active segment is copied up to
    /// its durable end. The copy is durable when this returns.
    ///
    /// A linked file is shared with the log: neither the log nor the copy ever writes it
    /// again. A [`crate::RecoveryMode::Salvage`] open (or [`crate::repair_dir`]) cuts a
    /// damaged segment by copy and rename, never in place, so the other name keeps its bytes.
    ///
    /// Compactions of a writable log wait until the backup is done. On a read-only log the
    /// view is refreshed first.
    ///
    /// # Errors
    /// [`seglog_segment::Error::DestinationNotEmpty`], [`Error::Closed`], I/O errors; as
    /// [`Log::refresh`] for a read-only log; [`Error::InvalidOptions`] from a compaction's
    /// progress callback. A failed backup may leave files in `dest`.
    pub fn backup_blocking(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        let started = Instant::now();
        let dest = dest.as_ref();
        self.check_open()?;
        // A backup of local files would miss the offloaded segments' records: they are
        // downloaded, which needs the source.
        if !self.shared.offloaded.has_source() {
            self.refuse_offloaded("a backup (no segment source is set to download it)")?;
        }
        let fs = self.shared.segments.file_system();
        // Held to the end: no other backup or writer in `dest` meanwhile.
        let _dest_lock = prepare_destination(fs, dest)?;
        // IMPORTANT: no compaction may switch segments while they are linked and copied (a
        // read-only log cannot hold the writer's lock; its handles keep its view whole).
        if self.is_read_only() {
            self.refresh()?;
        }
        // IMPORTANT: and no refresh may move a read-only log's segments between its local and
        // offloaded tables while each is listed (review 34: a segment the writer brought
        // back, refreshed in between, was in neither list).
        let _no_refresh = self.shared.refresh.lock();
        let _no_compaction = self.hold_off_compaction()?;
        self.check_open()?;
        // Checkpoints are linked by path: from another log's directory if this one's has
        // moved. Checked before and again once everything is linked (below), so a move at
        // any moment in between fails the backup.
        self.shared.segments.check_dir()?;
        let segments = self.shared.segments.backup_segments(dest)?;
        let mut report = BackupReport {
            segments: segments.segments.len(),
            segments_linked: segments.linked,
            bytes_copied: segments.bytes_copied,
            last_lsn: segments.segments.last().map_or(0, |s| s.last_lsn),
            ..BackupReport::default()
        };
        let count = segments.segments.len();
        for info in segments.segments.iter().take(count.saturating_sub(1)) {
            let name = seglog_index::checkpoint::checkpoint_file_name(info.first_lsn);
            // A checkpoint is only an optimisation: one that does not describe its segment
            // is ignored (and removed) by the copy's first open.
            if link_or_copy(fs, &self.shared.dir.join(&name), &dest.join(&name))?.is_some() {
                report.checkpoints += 1;
            }
        }
        // Offloaded segments (listed after the local ones were copied: a segment offloaded
        // meanwhile is in the copy already) come down whole, checked against their stubs.
        let copied: std::collections::BTreeSet<u64> =
            segments.segments.iter().map(|s| s.number).collect();
        for segment in self.shared.offloaded.list() {
            if copied.contains(&segment.number) {
                continue;
            }
            let source = self.shared.offloaded.source(segment.number)?;
            let name = seglog_segment::format::segment_file_name(segment.first_lsn);
            report.bytes_copied += crate::offloaded::download_checked(
                fs,
                source.as_ref(),
                &segment,
                &dest.join(name),
                "a backup (the source failed: see the log)",
            )?;
            report.segments += 1;
            report.segments_downloaded += 1;
            // IMPORTANT: its checkpoint is the only record of it a log opened without the
            // bytes would have; copied too, so the copy opens as fast as the log.
            let name = seglog_index::checkpoint::checkpoint_file_name(segment.first_lsn);
            if link_or_copy(fs, &self.shared.dir.join(&name), &dest.join(&name))?.is_some() {
                report.checkpoints += 1;
            }
        }
        // The copy is the same log: it keeps the identity (a bucket the log ships to accepts
        // it). Written from the one the log holds, not linked: the copy gets a file of its
        // own, whole even if the log's is damaged later (review 45).
        if let Some(id) = self.log_id() {
            seglog_segment::log_id::write(fs, dest, id)?;
        }
        self.shared.segments.check_dir()?;
        // IMPORTANT: last, once every file is in place and every copy synced: the names
        // become durable together, so a power cut leaves no name of a file not yet whole.
        fs.sync_dir(dest).map_err(|e| {
            Error::from(seglog_segment::Error::Io {
                op: "sync_dir",
                path: dest.to_path_buf(),
                source: e,
            })
        })?;
        report.duration = started.elapsed();
        tracing::info!(
            dest = %dest.display(),
            segments = report.segments,
            linked = report.segments_linked,
            bytes_copied = report.bytes_copied,
            "backup done"
        );
        Ok(report)
    }

    /// [`Self::backup_blocking`] off the async runtime's threads (in place outside a tokio
    /// runtime).
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the work: it runs on tokio's blocking pool to its
    /// end, so `dest` may be written after the future is gone; do not trust a backup
    /// whose report you did not get.
    ///
    /// # Errors
    /// As [`Self::backup_blocking`].
    pub async fn backup(&self, dest: impl Into<PathBuf>) -> Result<BackupReport> {
        let log = self.clone();
        let dest = dest.into();
        crate::offload::run_blocking("backup", move || log.backup_blocking(dest)).await
    }
}
