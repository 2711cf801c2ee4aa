//! Written zeros ahead of the tail: a background thread keeps up to
//! [`crate::SegmentOptions::zero_ahead_bytes`] of the active segment, past the tail, written
//! with zeros and synced.
//!
//! Why: segments are preallocated, and on ext4 and XFS preallocated space is *unwritten*. The
//! first write into an unwritten block changes the file's block map, so the commit round's
//! fdatasync must write that metadata too: an extra device write on every round. Blocks that
//! already hold written zeros make the fdatasync a pure data flush. Zeros read as the end of
//! data, so nothing in the format changes.
//!
//! Invariants (the commit lock guards `zeroed` and `zeroing`):
//! - The thread only zeroes a range that starts at or after the page-aligned tail as it was
//!   when it claimed the range (`zeroing`): no submitted record lies in it then.
//! - A commit round never writes into a claimed range, and never seals or rolls, while the
//!   claim stands: the leader waits for it (`round_collides`). Zeros therefore always land
//!   before the records that later go there, and never past a sealed segment's end.
//! - `close` waits for a claim to end, and no claim starts once the log is closed or
//!   poisoned: nothing is written after `close` returns.
//! - Zeros go only into space the file already has: a segment that could not be
//!   preallocated is never grown by them.
//! - Zeros are never written past the tail bound (`crate::tail_bound`): the thread moves it
//!   first, as a commit round does before its records.
//! - The thread writes and syncs through a handle of its own. A failed sync poisons the log:
//!   the failed writeback may have covered records (fsyncgate), and the log is never trusted
//!   after an fsync error. Any other failure (opening the handle, writing zeros) only ends
//!   zeroing.

use super::Inner;
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, SyncMode};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How much one step zeroes: big enough to be cheap per byte, small enough that a commit
/// round waiting for it (rare) waits little.
const CHUNK_BYTES: u64 = 256 << 10;

/// Rounds this large on average (bytes) go without zeros ahead: one block-map change per
/// round then costs less than writing, and syncing, every byte twice. (On a journaled ext4,
/// 16 writers of 256 KiB records made 0.69× raft-engine's MB/s with the zeros and 1.04×
/// without; rounds of a few KiB, the zeros' purpose, are far below this.)
const LARGE_ROUND_BYTES: u64 = 512 << 10;

/// Page size the ranges are aligned to.
const PAGE: u64 = 4096;

/// How long the thread sleeps when it has no work and nobody wakes it (a safety net: rounds
/// wake it when the tail nears the zeroed frontier).
const IDLE_PARK: Duration = Duration::from_millis(200);

/// Through where the tail segment is known to hold written zeros (or records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ZeroedSpace {
    pub segment: u64,
    pub through: u64,
}

/// A range being zeroed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ZeroClaim {
    pub segment: u64,
    pub start: u64,
    pub end: u64,
}

fn align_up(offset: u64) -> u64 {
    offset.div_ceil(PAGE) * PAGE
}

/// The range the next step zeroes, from `from` (the zeroed frontier, or the page-aligned
/// tail if that is further), for a window of `window` bytes past the page-aligned `tail`.
///
/// Whole steps only (a chunk, or half a window smaller than two), but for a segment's last
/// piece. The thread runs its steps back to back while the tail moves: without this it
/// chased the tail by the few KiB a round appends, one fdatasync each (hundreds a second),
/// and on ext4 each of those writes into unwritten space changed the block map, which a
/// commit round's fdatasync racing the zeroer's own then wrote too (an inode write).
fn next_claim(from: u64, tail: u64, window: u64, segment_size: u64) -> Option<(u64, u64)> {
    // A window shorter than a page is a page (only 0 turns zeroing off): zeroing is done in
    // whole pages, and a shorter window never holds one.
    let window = if window == 0 { 0 } else { window.max(PAGE) };
    let target = tail.saturating_add(window).min(segment_size);
    if from >= target {
        return None;
    }
    let step = CHUNK_BYTES.min(window / 2 / PAGE * PAGE).max(PAGE);
    let end = from.saturating_add(step).min(target);
    (end - from == step || end == segment_size).then_some((from, end))
}

/// Whether zeros ahead of the tail pay for themselves: rounds are small (see
/// [`LARGE_ROUND_BYTES`]).
fn zeros_pay(st: &super::group_commit::CommitState) -> bool {
    st.round_bytes_avg < LARGE_ROUND_BYTES
}

/// Why zeroing failed: only a failed sync concerns the records.
enum ZeroFailure {
    Sync(Error),
    Other(Error),
}

/// What one step of the thread did.
enum Step {
    Zeroed,
    Idle,
    Stop,
}

impl<F: FileSystem> Inner<F> {
    /// Starts the zeroing thread, when a log with these options on this file system keeps
    /// zeros ahead of its tail, prepares its next segment or drops sealed segments from the
    /// page cache (never under loom, which models the commit path alone).
    pub(crate) fn start_zeroing(self: &Arc<Self>) -> crate::Result<()> {
        let wanted = (self.opts.zero_ahead_bytes > 0
            || self.prepares_segments()
            || self.opts.cached_sealed_segments.is_some())
            && self.opts.preallocate
            && self.opts.sync_mode == SyncMode::Always
            && self.fs.zeroes_ahead();
        if !wanted || cfg!(seglog_loom) {
            return Ok(());
        }
        let weak = Arc::downgrade(self);
        let handle = std::thread::Builder::new()
            .name("seglog-zeroer".into())
            .spawn(move || zeroing_thread(&weak))
            .map_err(|e| Error::io("spawn", &self.dir, e))?;
        let _ = self.zeroer.set(handle.thread().clone());
        Ok(())
    }

    /// Called under the commit lock after a round: wakes the zeroing thread when the tail has
    /// come within half the window of the zeroed frontier.
    pub(crate) fn wants_zeros(&self, st: &super::group_commit::CommitState) -> bool {
        if self.zeroer.get().is_none() || st.zeroing.is_some() {
            return false;
        }
        self.prepare_wanted(st)
            || (self.opts.zero_ahead_bytes > 0
                && !st.zeros_failed
                && zeros_pay(st)
                && (st.zeroed.segment != st.tail_segment
                    || st.zeroed.through
                        < align_up(st.tail_offset).saturating_add(self.opts.zero_ahead_bytes / 2)))
    }

    /// Ends background zeroing for good (the last handle is gone): no claim starts, and the
    /// one running, if any, ends before this returns.
    pub(crate) fn stop_background_writes(&self) {
        loop {
            {
                let mut st = self.commit.lock();
                st.zeroing_stopped = true;
                if st.zeroing.is_none() && !st.preparing && !st.dropping {
                    break;
                }
            }
            crate::sync::thread::yield_now();
        }
        self.discard_prepared();
        self.wake_zeroer();
    }

    /// Wakes the zeroing thread, if there is one.
    pub(crate) fn wake_zeroer(&self) {
        if let Some(t) = self.zeroer.get() {
            t.unpark();
        }
    }

    /// One step: claim a range ahead of the tail, zero it, sync it, publish it.
    fn zero_step(&self, handle: &mut Option<(u64, std::path::PathBuf, F::File)>) -> Step {
        let claim = {
            let mut st = self.commit.lock();
            if st.closed || st.zeroing_stopped || st.poisoned.is_some() {
                return Step::Stop;
            }
            if st.zeros_failed || !zeros_pay(&st) {
                // Rounds write into unwritten space meanwhile; a round's wake-up brings the
                // zeros back once rounds are small again (`wants_zeros`).
                return Step::Idle;
            }
            let segment = st.tail_segment;
            let tail = align_up(st.tail_offset);
            let from = if st.zeroed.segment == segment {
                st.zeroed.through.max(tail)
            } else {
                tail
            };
            let Some((start, end)) = next_claim(
                from,
                tail,
                self.opts.zero_ahead_bytes,
                self.opts.segment_size_bytes,
            ) else {
                return Step::Idle;
            };
            let claim = ZeroClaim {
                segment,
                start,
                end,
            };
            st.zeroing = Some(claim);
            claim
        };
        let outcome = self.zero_range(handle, claim);
        let mut st = self.commit.lock();
        st.zeroing = None;
        match outcome {
            Ok(Some(zeroed)) => {
                self.stats.record_zeroed(zeroed);
                // Only forward: a segment made from a prepared file may be zeroed further.
                if st.zeroed.segment != claim.segment || st.zeroed.through < claim.end {
                    st.zeroed = ZeroedSpace {
                        segment: claim.segment,
                        through: claim.end,
                    };
                }
                Step::Zeroed
            }
            // The segment is not open yet (its round is still creating it): later.
            Ok(None) => Step::Idle,
            // IMPORTANT: a failed sync may have dropped dirty pages of records too (one
            // page cache for every handle): the log is not trusted after it (fsyncgate).
            Err(ZeroFailure::Sync(e)) => {
                drop(st);
                self.poison(&e);
                Step::Stop
            }
            // Opening the handle or writing zeros failed: no record is touched by that; zeroing
            // ends, the log goes on (commit fsyncs then also write the block map), and so does
            // the thread's other work (review 122: it used to end the thread).
            Err(ZeroFailure::Other(e)) => {
                tracing::warn!(error = %e, "cannot keep zeros ahead of the tail; appends continue without");
                st.zeros_failed = true;
                Step::Idle
            }
        }
    }

    /// Writes and syncs zeros over the claimed range; returns the bytes zeroed, or `None`
    /// when the segment is not open (yet).
    fn zero_range(
        &self,
        handle: &mut Option<(u64, std::path::PathBuf, F::File)>,
        claim: ZeroClaim,
    ) -> Result<Option<u64>, ZeroFailure> {
        let Some(entry) = self.segments.read().get(&claim.segment).cloned() else {
            return Ok(None);
        };
        if handle.as_ref().is_none_or(|(n, _, _)| *n != claim.segment) {
            // A handle of its own: its syncs report their own errors (and poison the log),
            // never taking one the commit round's fdatasync must see.
            // IMPORTANT: by path, as a roll creates a segment: if the directory was moved and
            // another log opened in its place, the path names that log's file, and zeros
            // there would overwrite its records (review 121: while rounds are large this
            // open may come long after the roll). So the directory is checked first, and the
            // file opened must be the segment's own: a move between the check and the open
            // (review 124) is caught there. Zeroing ends; the log goes on.
            self.check_dir().map_err(ZeroFailure::Other)?;
            let file = self
                .fs
                .open(&entry.path)
                .map_err(|e| ZeroFailure::Other(Error::io("open", &entry.path, e)))?;
            let stat = |e| ZeroFailure::Other(Error::io("stat", &entry.path, e));
            if file.identity().map_err(stat)? != entry.file.identity().map_err(stat)? {
                return Err(ZeroFailure::Other(self.moved()));
            }
            *handle = Some((claim.segment, entry.path.clone(), file));
        }
        let Some((_, path, file)) = handle.as_ref() else {
            return Ok(None);
        };
        // Only space the file already reserves: a segment that could not be preallocated
        // grows with its records, and growing it here could fail on a full disk (and poison
        // a log whose records still fit). Space past the end counts as done: nothing to zero.
        let len = file
            .len()
            .map_err(|e| ZeroFailure::Other(Error::io("stat", path, e)))?;
        let end = claim.end.min(len);
        if claim.start < end {
            // IMPORTANT: zeros are writes too. Past the tail bound they would sit where
            // recovery trusts that nothing was ever written, so it would neither read nor drop
            // their pages, and a failed writeback of them would stay cached under the next
            // session's records (review 41). The bound moves first; a failure there poisons
            // the log, as the commit round's own would.
            self.cover_with_tail_bound(&entry, end)
                .map_err(ZeroFailure::Sync)?;
            file.write_zeros(claim.start, end - claim.start)
                .map_err(|e| ZeroFailure::Other(Error::io("write zeros", path, e)))?;
            file.sync_data()
                .map_err(|e| ZeroFailure::Sync(Error::io("sync_data", path, e)))?;
        }
        Ok(Some(end.saturating_sub(claim.start)))
    }

    /// True when a round that takes `pending` must wait for the claim to end: it writes
    /// into the claimed range, or it rolls (sealing cuts the segment being zeroed).
    pub(crate) fn round_collides(
        claim: Option<ZeroClaim>,
        pending: &[super::group_commit::PendingChunk],
    ) -> bool {
        let Some(z) = claim else {
            return false;
        };
        pending
            .iter()
            .any(|c| c.creates_segment() || c.overlaps(z.segment, z.start, z.end))
    }
}

fn zeroing_thread<F: FileSystem>(log: &Weak<Inner<F>>) {
    let mut handle = None;
    loop {
        let Some(inner) = log.upgrade() else {
            return;
        };
        // First: the memory it frees is what the zeros and the next rounds write into.
        inner.drop_cache_behind();
        match inner.zero_step(&mut handle) {
            Step::Zeroed => {}
            // The active segment's window is zeroed: prepare the next segment.
            Step::Idle => match inner.prepare_step(false) {
                super::prepare::PrepareStep::Worked => {}
                super::prepare::PrepareStep::Idle | super::prepare::PrepareStep::Busy => {
                    drop(inner);
                    std::thread::park_timeout(IDLE_PARK);
                }
                super::prepare::PrepareStep::Stop => return,
            },
            Step::Stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{next_claim, CHUNK_BYTES, PAGE};

    const WINDOW: u64 = 2 << 20;
    const SEGMENT: u64 = 128 << 20;

    /// The zeroer runs its steps back to back while appends move the tail: a step must not
    /// chase the tail by the few KiB a round appends. Each step is one fdatasync, and on ext4
    /// each write into unwritten space splits an extent, leaving the inode's block map dirty
    /// until the zeroer's sync: a commit fdatasync that runs meanwhile writes the inode too
    /// (seen in W3: ~430 zeroing syncs a second of ~37 KiB, and a fifth of the commit
    /// fdatasyncs writing the inode).
    #[test]
    fn steps_zero_whole_chunks_never_the_few_kib_the_tail_moved() {
        let tail = 40 * PAGE;
        // The window was filled a step ago; the tail has moved by 3 pages since.
        assert_eq!(
            next_claim(tail + WINDOW - 3 * PAGE, tail, WINDOW, SEGMENT),
            None
        );
        // A whole chunk missing: one chunk.
        let from = tail + WINDOW - CHUNK_BYTES;
        assert_eq!(
            next_claim(from, tail, WINDOW, SEGMENT),
            Some((from, from + CHUNK_BYTES))
        );
        // A fresh segment: chunks from the tail.
        assert_eq!(
            next_claim(tail, tail, WINDOW, SEGMENT),
            Some((tail, tail + CHUNK_BYTES))
        );
        // The segment's last piece, shorter than a chunk, is zeroed.
        let last = SEGMENT - 3 * PAGE;
        assert_eq!(
            next_claim(last, SEGMENT - WINDOW, WINDOW, SEGMENT),
            Some((last, SEGMENT))
        );
        // Nothing past the window or the segment.
        assert_eq!(next_claim(tail + WINDOW, tail, WINDOW, SEGMENT), None);
        assert_eq!(next_claim(SEGMENT, SEGMENT - PAGE, WINDOW, SEGMENT), None);
        // A window smaller than two chunks zeroes in steps of half of it.
        let small = 64 << 10;
        assert_eq!(next_claim(tail + small - PAGE, tail, small, SEGMENT), None);
        assert_eq!(
            next_claim(tail, tail, small, SEGMENT),
            Some((tail, tail + small / 2))
        );
        // No window: nothing (the thread only prepares the next segment then).
        assert_eq!(next_claim(tail, tail, 0, SEGMENT), None);
        // A window shorter than a page is a page: it used to zero nothing at all, while the
        // options promise that only 0 turns zeroing off.
        assert_eq!(
            next_claim(tail, tail, 1000, SEGMENT),
            Some((tail, tail + PAGE))
        );
        assert_eq!(next_claim(tail + PAGE, tail, 1000, SEGMENT), None);
        // The largest window neither overflows nor stops at the page before the end.
        assert_eq!(
            next_claim(SEGMENT - PAGE, SEGMENT - 2 * PAGE, u64::MAX, SEGMENT),
            Some((SEGMENT - PAGE, SEGMENT))
        );
    }
}
