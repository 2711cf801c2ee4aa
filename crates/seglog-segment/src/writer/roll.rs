//! Creating a segment and sealing the one before it.
//!
//! Both happen on the commit leader's thread, between writes, never under a lock that
//! appenders or readers wait on.

use super::Inner;
use crate::format::{segment_file_name, SegmentHeader};
use crate::io::{FileSystem, SegmentFile};
use crate::segment::SegmentEntry;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn now_unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl<F: FileSystem> Inner<F> {
    /// Ok while the log's path still names the directory it opened (`crate::DirGuard`).
    pub(crate) fn check_dir(&self) -> Result<()> {
        self.dir_guard.check(&self.fs)
    }

    /// Creates segment `number` starting at `first_lsn`, its records salted with `salt`, and
    /// makes it durable, name included.
    pub(crate) fn create_segment(
        &self,
        number: u64,
        first_lsn: u64,
        salt: u64,
    ) -> Result<Arc<SegmentEntry<F>>> {
        // IMPORTANT: by path, the new segment goes wherever the path points now: into
        // another log's directory if this one was renamed and another opened in its place.
        self.check_dir()?;
        let path = self.dir.join(segment_file_name(first_lsn));
        let header = SegmentHeader {
            segment_number: number,
            first_lsn,
            created_unix_nanos: now_unix_nanos(),
            salt,
            compacted: false,
            clustered: false,
        };
        // The slot stays locked until the file has its new name: the zeroing thread must not
        // take the name for a new prepared file meanwhile. A step running now (one chunk of
        // zeros) is waited for rather than creating a second file: that would need a second
        // segment's worth of space while the prepared file holds one.
        let mut slot = self.prepares_segments().then(|| self.prepared.lock());
        let installed = match slot.as_mut().and_then(|s| s.take()) {
            Some(prepared) => self.install_prepared(prepared, &header.encode(), &path)?,
            None => None,
        };
        let (file, overlap_file) = match installed {
            Some(super::prepare::Installed {
                file,
                overlap_file,
                zeroed_through,
            }) => {
                // Before the segment is in the table, so the zeroing thread never claims a
                // window of it that is zeroed already.
                let mut st = self.commit.lock();
                st.prepared_through = 0;
                if st.zeroed.segment != number || st.zeroed.through < zeroed_through {
                    st.zeroed = super::zeroing::ZeroedSpace {
                        segment: number,
                        through: zeroed_through,
                    };
                }
                (file, overlap_file)
            }
            None => self.create_segment_file(&path, &header)?,
        };
        drop(slot);
        tracing::debug!(segment = number, first_lsn, path = %path.display(), "created segment");
        let entry: Arc<SegmentEntry<F>> = Arc::new(SegmentEntry::new(
            header,
            path,
            file,
            crate::format::SEGMENT_HEADER_LEN as u64,
            first_lsn - 1,
        ));
        if let Some(file) = overlap_file {
            entry.set_overlap_file(file);
        }
        if self.opts.preallocate {
            entry.set_live_view(
                entry
                    .file
                    .map_live(self.opts.segment_size_bytes)
                    .map_err(|e| Error::io("map", &entry.path, e))?,
            );
        }
        self.segments.write().insert(number, entry.clone());
        Ok(entry)
    }

    /// Creates the file of a new segment with `header` and makes it durable, name included.
    fn create_segment_file(
        &self,
        path: &std::path::Path,
        header: &SegmentHeader,
    ) -> Result<(F::File, Option<F::File>)> {
        let file = self
            .fs
            .create_new(path)
            .map_err(|e| Error::io("create", path, e))?;
        self.check_created_here(path, &file)?;
        // Opened before anything is written, so that it hears of every failed writeback.
        let overlap_file = self.open_overlap_file(path, &file)?;
        file.write_all_at(&header.encode(), 0)
            .map_err(|e| Error::io("write", path, e))?;
        if self.opts.preallocate {
            file.allocate(self.opts.segment_size_bytes)
                .map_err(|e| Error::io("allocate", path, e))?;
        }
        // IMPORTANT: the header (and the preallocated size) must be durable before any record
        // in this file is acknowledged, or recovery could not read the records' salt.
        if !crate::teeth::skipped(crate::teeth::SyncPoint::NewSegmentFsync) {
            file.sync_data()
                .map_err(|e| Error::io("sync_data", path, e))?;
        }
        // IMPORTANT: and so must the directory entry: without this fsync a power cut can make
        // the whole file, with every acknowledged record in it, disappear.
        if !crate::teeth::skipped(crate::teeth::SyncPoint::NewSegmentDirFsync) {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("sync_dir", &self.dir, e))?;
        }
        // By path too: after a move, the fsync went to whatever directory the path names.
        self.check_dir()?;
        Ok((file, overlap_file))
    }

    /// Ok when `file`, just created at `path`, went into this log's directory.
    ///
    /// `create_segment` checked the directory before it named the file by path; a move in
    /// between (another log opened at the old path) put the file into that log's directory,
    /// where every record acknowledged from now on would be lost to this log. The file is
    /// taken out of that directory again when the path still names it.
    fn check_created_here(&self, path: &std::path::Path, file: &F::File) -> Result<()> {
        let Err(e) = self.check_dir() else {
            return Ok(());
        };
        let ours = matches!(
            (self.fs.identity(path), file.identity()),
            (Ok(named), Ok(own)) if named == own
        );
        if ours {
            if let Err(re) = self.fs.remove(path) {
                tracing::warn!(path = %path.display(), error = %re, "cannot remove a segment file created in another directory");
            }
        }
        Err(e)
    }

    /// The second handle of the active segment whose own handle is `own`, for overlapping
    /// commit rounds (`group_commit`); `None` when rounds never overlap in this log, or when
    /// it cannot be opened (say, at the descriptor limit: then rounds in that segment simply
    /// do not overlap).
    ///
    /// # Errors
    /// [`Error::DirectoryMoved`] when the path names another file than `own`.
    pub(crate) fn open_overlap_file(
        &self,
        path: &std::path::Path,
        own: &F::File,
    ) -> Result<Option<F::File>> {
        if self.opts.overlap_min_records == 0 || self.opts.sync_mode != crate::SyncMode::Always {
            return Ok(None);
        }
        let file = match self.fs.open(path) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open a second handle of the active segment; commit rounds will not overlap in it");
                return Ok(None);
            }
        };
        // IMPORTANT: by path, the open takes whatever file the path names now: another
        // log's segment of the same name if this directory was moved and another log opened
        // in its place. Rounds synced through that handle would acknowledge records whose
        // bytes were never synced; and the move means the roll's other steps by path (the
        // directory fsync) went astray too.
        match (file.identity(), own.identity()) {
            (Ok(opened), Ok(own)) if opened == own => Ok(Some(file)),
            (Ok(_), Ok(_)) => Err(self.check_dir().err().unwrap_or_else(|| self.moved())),
            // Which file it is cannot be told: without a second handle, rounds in this
            // segment simply do not overlap (review 126).
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot tell whether the second handle is the active segment's own file; commit rounds will not overlap in it");
                Ok(None)
            }
        }
    }

    /// The error of a change refused because the log's path names another directory or
    /// file than the log's own.
    pub(crate) fn moved(&self) -> Error {
        self.dir_guard.moved()
    }

    /// Seals `entry`: cuts its preallocated tail at `data_end` and makes it durable.
    pub(crate) fn seal_segment(
        &self,
        entry: &SegmentEntry<F>,
        data_end: u64,
        last_lsn: u64,
    ) -> Result<()> {
        let len = entry
            .file
            .len()
            .map_err(|e| Error::io("stat", &entry.path, e))?;
        if len > data_end {
            entry
                .file
                .set_len(data_end)
                .map_err(|e| Error::io("set_len", &entry.path, e))?;
        }
        // IMPORTANT: a sealed segment is whole and durable before the next segment exists;
        // recovery relies on it to call any damage in a sealed segment corruption.
        if !crate::teeth::skipped(crate::teeth::SyncPoint::SealFsync) {
            entry
                .file
                .sync_data()
                .map_err(|e| Error::io("sync_data", &entry.path, e))?;
        }
        entry.publish_durable(data_end, last_lsn);
        entry.drop_overlap_file();
        let view = entry
            .file
            .map()
            .map_err(|e| Error::io("map", &entry.path, e))?;
        entry.seal(Some(view.clone()));
        if self.opts.cached_sealed_segments.is_some() && self.zeroer.get().is_some() {
            // Synced above: its pages are clean, and it may leave the page cache later.
            // After `seal`: a drop replaces the map sealing keeps (review 123).
            self.commit.lock().rolled.push_back(entry.number());
            self.wake_zeroer();
        }
        tracing::info!(
            segment = entry.number(),
            bytes = data_end,
            last_lsn,
            "sealed segment"
        );
        if let Some(listener) = self.seal_listener.read().as_ref() {
            crate::caller_waker::calling_back(|| {
                listener(
                    &entry.info(),
                    &view.slice(..(data_end as usize).min(view.len())),
                )
            });
        }
        Ok(())
    }
}
