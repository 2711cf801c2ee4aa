//! Closing a log: no new appends, every submitted one drained (made durable or failed), then
//! a commit marker that vouches for the whole log, so that damage to the last records found
//! at the next open is told from a torn tail.

use super::Inner;
use crate::format::{encode_commit_marker, COMMIT_MARKER_LEN};
use crate::io::{FileSystem, SegmentFile};
use crate::{CloseTurn, Error, PoisonCause, Result};
use std::sync::Arc;

impl<F: FileSystem> Inner<F> {
    /// Stops appends and drains them; writes and syncs the commit marker. Leaves the
    /// directory lock alone. The first call does the work; a later one waits for it and
    /// reports its outcome (review 143: it returned Ok at once, before the drain). A call
    /// from code the log calls back (a seal listener, a waker) is refused with
    /// [`Error::InvalidOptions`]: it may run inside the very round a close waits for
    /// (review 144). A call from inside the running close fails with [`Error::Closed`].
    ///
    /// When it returns Ok, no commit round is running or can start: nothing writes to the
    /// log again in this process.
    pub(crate) fn stop_writes(self: &Arc<Self>) -> Result<()> {
        if crate::inside_callback() {
            return Err(close_in_callback());
        }
        let turn = match self.close_gate.enter(true) {
            CloseTurn::First(turn) => turn,
            CloseTurn::Done(Some(outcome)) => {
                return outcome.map_err(|cause| Error::Poisoned { cause })
            }
            CloseTurn::Done(None) => return Err(self.settle_after_a_panicked_close()),
            CloseTurn::Busy => return Err(Error::Closed),
        };
        let stopped = self.stop_writes_once();
        turn.finish(stopped.as_ref().map(|_| ()).map_err(PoisonCause::of));
        stopped
    }

    /// A close that panicked (say, in a seal listener of its drain's round) left its work
    /// half done, and nothing of it runs any more. So that a later close can give up the
    /// directory lock (review 145: none ever did), this one ends what could still write:
    /// the log is poisoned (its waiters get an error rather than a round that never comes),
    /// the background threads stop, and the leader's seat is taken for good once no round
    /// runs. Returns the poisoning.
    fn settle_after_a_panicked_close(self: &Arc<Self>) -> Error {
        self.poison(&Error::Poisoned {
            cause: PoisonCause::other("a close panicked before it finished"),
        });
        self.stop_background_writes();
        loop {
            {
                let mut st = self.commit.lock();
                if st.close_holds_seat {
                    break;
                }
                if st.rounds_idle() {
                    st.leader_active = true;
                    st.close_holds_seat = true;
                    st.writes_stopped = true;
                    break;
                }
            }
            crate::sync::thread::yield_now();
        }
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let st = self.commit.lock();
        match st.check_usable_while_closing() {
            Err(e) => e,
            Ok(()) => Error::Closed,
        }
    }

    fn stop_writes_once(self: &Arc<Self>) -> Result<()> {
        let last = {
            let mut st = self.commit.lock();
            // Submits fail from here on; rounds already queued still run.
            st.closed = true;
            st.next_lsn - 1
        };
        let drained = self.wait_durable(last);
        // Take the leader's seat for good: once it is ours, no round runs, and none starts.
        // (A round can still be finishing: the one that made `last` durable hands the seat
        // back only after it publishes.) A zeroing claim must end too: no claim starts once
        // the log is closed, and the zeros must not follow the commit marker. So must a drop
        // of sealed segments from the page cache (none starts once the log is closed).
        loop {
            {
                let mut st = self.commit.lock();
                if st.rounds_idle() && st.zeroing.is_none() && !st.preparing && !st.dropping {
                    st.leader_active = true;
                    st.close_holds_seat = true;
                    break;
                }
            }
            crate::sync::thread::yield_now();
        }
        self.discard_prepared();
        let marked = drained.and_then(|()| self.write_commit_marker());
        if let Err(e) = &marked {
            self.poison(e);
        }
        // Waits that began during the drain (a `sync` that read the marker's LSN, say) would
        // wait for a round that never comes: they look again, and end.
        let wakeups = {
            let mut st = self.commit.lock();
            st.writes_stopped = true;
            let all = st.waiters.len();
            let mut wakeups = super::waiters::Wakeups::acknowledge(&mut st, all);
            wakeups.end_relays(&mut st);
            wakeups
        };
        wakeups.wake();
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify_followers(|_| {});
        marked
    }

    /// Makes the active segment durable and appends a commit marker that vouches for every
    /// record before it, then syncs it. The caller holds the leader's seat.
    fn write_commit_marker(&self) -> Result<()> {
        let (segment, synced, next_lsn) = {
            let st = self.commit.lock();
            st.check_usable_while_closing()?;
            (st.tail_segment, st.synced_lsn, st.next_lsn)
        };
        let Some(entry) = self.segments.read().get(&segment).cloned() else {
            return Ok(());
        };
        let sync = || {
            entry
                .file
                .sync_data()
                .map_err(|e| Error::io("sync_data", &entry.path, e))
        };
        let last = next_lsn - 1;
        // IMPORTANT: the marker vouches for everything before it, so everything before it is
        // synced first (under `SyncMode::Never` nothing of the active segment may be yet; and
        // `close` promises that sync in every mode).
        if synced < last {
            sync()?;
            self.commit.lock().synced_lsn = last;
        }
        if entry.header.salt == 0 {
            // A segment of format version 1 or 2 (the log was created by an older build):
            // those versions know no commit marker, so none goes into it.
            return Ok(());
        }
        let (salt, offset, lsn) = {
            let mut st = self.commit.lock();
            let lsn = st.next_lsn;
            st.next_lsn += 1;
            let offset = st.tail_offset;
            st.tail_offset += COMMIT_MARKER_LEN as u64;
            (st.tail_salt, offset, lsn)
        };
        let marker = encode_commit_marker(salt, lsn, last);
        self.cover_with_tail_bound(&entry, offset + COMMIT_MARKER_LEN as u64)?;
        entry
            .file
            .write_all_at(&marker, offset)
            .map_err(|e| Error::io("write", &entry.path, e))?;
        sync()?;
        {
            let mut st = self.commit.lock();
            st.durable_lsn = st.durable_lsn.max(lsn);
            self.durable_lsn
                .store(st.durable_lsn, std::sync::atomic::Ordering::Release);
        }
        self.trim_after(&entry, offset + COMMIT_MARKER_LEN as u64);
        Ok(())
    }

    /// Cuts the closed active segment's space after `end` (its commit marker's end).
    ///
    /// Why: that space holds zeros written ahead of the tail, or, for a segment made from a
    /// prepared file, zeros up to the segment's end; the next open checks that nothing but
    /// zeros follows the end of data, and would read all of them (tens of MiB, on a cold
    /// cache a device read each MiB). Cut, it reads none. Not synced and not fatal: the cut
    /// is of zeros only, so a power cut that undoes it, or a failed cut, leaves what was
    /// there before. The next writer's open reserves the space again.
    fn trim_after(&self, entry: &crate::segment::SegmentEntry<F>, end: u64) {
        match entry.file.len() {
            Ok(len) if len > end => {
                if let Err(e) = entry.file.set_len(end) {
                    tracing::warn!(path = %entry.path.display(), error = %e, "cannot cut the zeros after the closed log's end");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(path = %entry.path.display(), error = %e, "cannot stat the closed log's last segment")
            }
        }
    }
}

/// A close from code the log calls back: it would wait for the round running that code.
pub(crate) fn close_in_callback() -> Error {
    Error::InvalidOptions(
        "close cannot be called from a seal listener or a waker the log runs: \
         it would wait for the commit round that runs it"
            .into(),
    )
}
