//! `sync` under `SyncMode::Never`: the explicit request for stable storage.
//!
//! In that mode a commit round acknowledges its records once written, with no fsync
//! (`durable_lsn` runs ahead of `synced_lsn`). `sync` still promises that what it returns for
//! survives a power cut, as RocksDB's `SyncWAL` and raft-engine's `sync` do whatever the
//! writes asked for; so once its records are written, it fsyncs the active segment itself.
//! Under `SyncMode::Always` the commit round it waited for already synced them.
//!
//! It does so in the writer's seat, like a round: no round runs meanwhile (so no seal
//! fsyncs the same file), and no other `sync`. That matters after a failure: Linux reports a
//! writeback error once per open file, so an fsync that follows a failed one through the
//! same handle returns Ok for pages that were never written. Holding the seat, the failing
//! fsync poisons the log before anybody else fsyncs, and the next one sees the poisoning
//! (review 70).

use super::group_commit::back_off;
use super::Inner;
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result, SyncMode};
use std::sync::Arc;
use std::time::Instant;

impl<F: FileSystem> Inner<F> {
    /// Makes every record through `lsn` stable, once every one of them is written (the
    /// caller waited for `durable_lsn` to reach it). A failed fsync poisons the log: what it
    /// covered is never trusted again (fsyncgate).
    pub(crate) fn sync_written_through(self: &Arc<Self>, lsn: u64) -> Result<()> {
        if self.opts.sync_mode == SyncMode::Always {
            return Ok(());
        }
        // The seat, unless someone else's fsync already covered `lsn`. Under this mode
        // rounds only write (a seal, rarely, also syncs), so the wait is short.
        let mut spins = 0;
        let claim = loop {
            {
                let mut st = self.commit.lock();
                st.check_usable_while_closing()?;
                if st.synced_lsn >= lsn {
                    return Ok(());
                }
                if st.writes_stopped {
                    return Err(Error::Closed);
                }
                if let Some(claim) = self.try_claim(&mut st) {
                    break claim;
                }
            }
            spins = back_off(spins);
        };
        // Records through `lsn` sit in the active segment or in earlier ones, which were
        // synced when they were sealed (before the next segment was created, so before it
        // can be the active one here).
        let Some((entry, _, _)) = self.active_entry_with_end() else {
            claim.release();
            return Ok(());
        };
        let started = Instant::now();
        if !crate::teeth::skipped(crate::teeth::SyncPoint::ExplicitSyncFsync) {
            // IMPORTANT: this fsync begins after every record through `lsn` was written.
            if let Err(e) = entry.file.sync_data() {
                let e = Error::io("sync_data", &entry.path, e);
                let cause = crate::error::PoisonCause::of(&e);
                claim.fail(e);
                return Err(Error::Poisoned { cause });
            }
        }
        self.stats.record_sync(started.elapsed());
        {
            let mut st = self.commit.lock();
            st.synced_lsn = st.synced_lsn.max(lsn);
        }
        claim.release();
        Ok(())
    }

    /// [`Self::sync_written_through`] from async code: on tokio's blocking pool when called
    /// from a task, in place otherwise (see `waiters::may_lead_in_place`).
    pub(crate) async fn sync_written_through_async(self: &Arc<Self>, lsn: u64) -> Result<()> {
        if self.opts.sync_mode == SyncMode::Always {
            return Ok(());
        }
        if super::waiters::may_lead_in_place() {
            return self.sync_written_through(lsn);
        }
        let inner = self.clone();
        tokio::task::spawn_blocking(move || inner.sync_written_through(lsn))
            .await
            .map_err(|e| Error::InvalidOptions(format!("the sync task did not finish: {e}")))?
    }
}
