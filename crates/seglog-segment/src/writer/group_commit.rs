//! Group commit: many appenders, one fsync per group.
//!
//! An appender *submits* its record: under the commit lock it gets an LSN and a position and
//! its bytes join `pending`. Then it *waits* until `durable_lsn` (the synced-through
//! watermark) reaches its LSN. If no leader is active, the waiter becomes the leader: it takes
//! everything pending, writes it, fsyncs once, advances `durable_lsn` and wakes everyone.
//! Appends that arrive while that fsync is in flight pile up in `pending` and go out together
//! in the next round. A lone appender leads its own round at once: no timer, no handoff.
//!
//! Rounds follow each other without a hand-off: when a round's fsync returns and records are
//! already queued, the leader publishes the watermark and starts the next round at once
//! (for at most [`MAX_ROUNDS_PER_LEADER`] rounds, so that its own caller is not held up for
//! long; then it hands leadership to the oldest waiter). An idle log keeps the inline leader:
//! a lone appender pays one write and one fsync, nothing else.
//!
//! Waiting — blocking and async — and the fan-out of wake-ups are in the `waiters` module.
//!
//! Invariants:
//! - `synced_lsn` only moves forward, and only after an fsync that began after every record
//!   up to it was written returned Ok; it is what a new record's `durable_through_lsn`
//!   vouches for. `durable_lsn` (what waiters are acknowledged through) equals it under
//!   `SyncMode::Always`; under `SyncMode::Never` it runs ahead, once records are written.
//! - At most one leader at a time (`leader_active`); the commit lock is never held during I/O.
//! - Once `poisoned` is set it is never cleared: every waiter beyond `durable_lsn` and every
//!   later submit fails. A failed fsync is never retried (fsyncgate).

use super::waiters::{Waiter, Wakeups, WOKEN};
use super::Inner;
use crate::format::EncodedRecord;
use crate::io::{FileSystem, SegmentFile};
use crate::segment::{RecordPosition, SegmentEntry};
use crate::{Error, Result, SyncMode};
use std::sync::Arc;
use std::time::Instant;

/// Records waiting to be written to one segment, contiguous from `start_offset`.
pub(crate) struct PendingChunk {
    segment: u64,
    /// Set when this chunk is the first of a new segment, which the leader creates first:
    /// its first LSN and record salt.
    creates_segment: Option<(u64, u64)>,
    start_offset: u64,
    end_offset: u64,
    last_lsn: u64,
    parts: Vec<Vec<u8>>,
}

/// From this many bytes, a chunk of several records is written with one vectored write
/// rather than gathered into one buffer first: copying megabytes of large records twice
/// costs more than the kernel walking a list of slices, a few kilobytes of small ones less.
const VECTORED_WRITE_MIN_BYTES: u64 = 64 * 1024;

/// A chunk's records (`len` bytes in all) in one write at its start offset: a lone record
/// as it is, a group as one vectored write or gathered into `gathered` first.
fn write_chunk<F: SegmentFile>(
    file: &F,
    chunk: &PendingChunk,
    len: u64,
    gathered: &mut Vec<u8>,
) -> std::io::Result<()> {
    match chunk.parts.as_slice() {
        [only] => file.write_all_at(only, chunk.start_offset),
        parts if len >= VECTORED_WRITE_MIN_BYTES => {
            let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            file.write_all_vectored_at(&slices, chunk.start_offset)
        }
        parts => {
            gathered.clear();
            parts.iter().for_each(|p| gathered.extend_from_slice(p));
            file.write_all_at(gathered, chunk.start_offset)
        }
    }
}

/// The end of what a buffered round wrote without syncing: a segment, the offset its
/// written records end at, and their last LSN.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnsyncedTail {
    segment: u64,
    end: u64,
    last_lsn: u64,
}

/// What one round must do: write the chunks (in order), and make durable what an earlier
/// buffered round left unsynced.
struct RoundWork {
    chunks: Vec<PendingChunk>,
    unsynced: Option<UnsyncedTail>,
}

/// Whether a round ends with the commit fsync (and acknowledges what it wrote), or only
/// writes (a buffered round: the records wait for the next commit round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoundKind {
    Commit,
    WriteOnly,
}

impl PendingChunk {
    /// Whether this chunk starts a new segment (and so seals the one before).
    pub(crate) fn creates_segment(&self) -> bool {
        self.creates_segment.is_some()
    }

    /// Whether this chunk writes into `start..end` of `segment`.
    pub(crate) fn overlaps(&self, segment: u64, start: u64, end: u64) -> bool {
        self.segment == segment && self.start_offset < end && self.end_offset > start
    }
}

/// State behind the commit lock.
pub(crate) struct CommitState {
    pub next_lsn: u64,
    pub durable_lsn: u64,
    /// Every record up to here is on stable storage (an fsync returned Ok after it was
    /// written): what new records vouch for.
    pub synced_lsn: u64,
    pub leader_active: bool,
    /// Commit rounds written whose fsync result is not published yet: at most two, and then
    /// the second began while the first's fsync was in flight (see `overlap`).
    pub syncing: u8,
    /// Rounds that have begun their fsync, and rounds published, ever: a round's ticket is
    /// the first count when it begins; it publishes when the second reaches it (in order).
    sync_tickets: u64,
    published_rounds: u64,
    pub poisoned: Option<crate::error::PoisonCause>,
    /// Set when `close` begins: no new submits.
    pub closed: bool,
    /// Set when `close` has drained the log and holds the leader's seat for good: no round
    /// runs again, so a wait beyond `durable_lsn` ends with `Closed`.
    pub writes_stopped: bool,
    /// A close took the leader's seat for good: no round runs or starts again.
    pub close_holds_seat: bool,
    /// Where the next submitted record goes, and that segment's record salt.
    pub tail_segment: u64,
    pub tail_salt: u64,
    pub tail_offset: u64,
    pub next_segment_number: u64,
    pending: Vec<PendingChunk>,
    /// Records in `pending`.
    pending_records: usize,
    /// Records of the last round that took from `pending`: while a round's fsync is in
    /// flight, the newest such round (`may_overlap` weighs a second round against it).
    last_round_records: usize,
    /// Bytes the rounds take, as a moving average (each round weighs a quarter): whether
    /// zeros ahead of the tail pay (`zeroing` module).
    pub round_bytes_avg: u64,
    /// Rounds that have taken records from `pending`, ever, and the last LSN submitted when
    /// the latest did: which round a waiter expects to acknowledge it (its bell's bucket).
    rounds_taken: u64,
    last_taken_lsn: u64,
    /// Where records written by a buffered round (`write_queued_if_large`) end: written to
    /// the file, not yet synced, not yet readable. The next commit round syncs them.
    unsynced: Option<UnsyncedTail>,
    /// Where the tail segment holds written zeros, and the range being zeroed now
    /// (`zeroing` module).
    pub zeroed: super::zeroing::ZeroedSpace,
    pub zeroing: Option<super::zeroing::ZeroClaim>,
    /// Set when the last handle is dropped: no zeroing claim starts any more.
    pub zeroing_stopped: bool,
    /// Writing zeros ahead failed (not a sync): no more zeros ahead in this session.
    pub zeros_failed: bool,
    /// Segments sealed by this writer's rolls and still in the page cache, oldest first
    /// (`drop_behind`).
    pub rolled: std::collections::VecDeque<u64>,
    /// Sealed segments are being dropped from the page cache (`drop_behind`); `close`
    /// waits for it.
    pub dropping: bool,
    /// A step of preparing the next segment runs (`prepare`); `close` waits for it.
    pub preparing: bool,
    /// The tail segment during which preparing failed: not tried again until the next.
    pub prepare_failed_in: Option<u64>,
    /// How far the prepared file holds synced zeros (0 when there is none).
    pub prepared_through: u64,
    /// Blocked waiters in LSN order.
    pub(super) waiters: std::collections::VecDeque<Arc<Waiter>>,
    /// The last acknowledged group that relies on a root future to relay wake-ups: swept
    /// by the next acknowledgement, or when a leader stops (`waiters` module).
    pub(super) relayed_group: Option<super::waiters::AckedGroup>,
}

impl CommitState {
    pub fn new(
        next_lsn: u64,
        (tail_segment, tail_salt): (u64, u64),
        tail_offset: u64,
        next_segment_number: u64,
    ) -> Self {
        CommitState {
            next_lsn,
            durable_lsn: next_lsn - 1,
            synced_lsn: next_lsn - 1,
            leader_active: false,
            syncing: 0,
            sync_tickets: 0,
            published_rounds: 0,
            poisoned: None,
            closed: false,
            writes_stopped: false,
            close_holds_seat: false,
            tail_segment,
            tail_salt,
            tail_offset,
            next_segment_number,
            pending: Vec::new(),
            pending_records: 0,
            last_round_records: 0,
            round_bytes_avg: 0,
            rounds_taken: 0,
            last_taken_lsn: next_lsn - 1,
            unsynced: None,
            zeroed: super::zeroing::ZeroedSpace::default(),
            zeroing: None,
            zeroing_stopped: false,
            zeros_failed: false,
            rolled: std::collections::VecDeque::new(),
            dropping: false,
            preparing: false,
            prepare_failed_in: None,
            prepared_through: 0,
            waiters: std::collections::VecDeque::new(),
            relayed_group: None,
        }
    }

    pub(crate) fn check_usable(&self) -> Result<()> {
        if let Some(cause) = &self.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Like [`Self::check_usable`], for the closing path itself: only poisoning counts.
    pub(crate) fn check_usable_while_closing(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// True when no round runs: nobody holds the writer's seat and no fsync is in flight.
    pub(crate) fn rounds_idle(&self) -> bool {
        !self.leader_active && self.syncing == 0
    }

    /// True when a round has something to do: records queued, or written but not synced.
    fn has_round_work(&self) -> bool {
        !self.pending.is_empty() || self.unsynced.is_some()
    }

    /// Bytes queued for the next round.
    fn pending_bytes(&self) -> u64 {
        self.pending
            .iter()
            .map(|c| c.end_offset - c.start_offset)
            .sum()
    }

    /// The number of the round expected to write `lsn` (counted as rounds take their
    /// records): the next to take when `lsn` is still queued, else the latest. A guess that
    /// only groups waiters (a round may take fewer records, or `lsn` be in an earlier round
    /// still syncing): a waiter is woken by whoever acknowledges it, whatever its round.
    pub(super) fn round_expected_for(&self, lsn: u64) -> u64 {
        if lsn > self.last_taken_lsn {
            self.rounds_taken
        } else {
            self.rounds_taken.saturating_sub(1)
        }
    }

    /// `Some(result)` once the wait for `lsn` is over.
    pub fn wait_outcome(&self, lsn: u64) -> Option<Result<()>> {
        if self.durable_lsn >= lsn {
            return Some(Ok(()));
        }
        // Nothing would ever make it durable: without this, the waiter would lead empty
        // rounds forever.
        if lsn >= self.next_lsn {
            return Some(Err(Error::NotSubmitted {
                lsn,
                next_lsn: self.next_lsn,
            }));
        }
        if let Some(cause) = &self.poisoned {
            return Some(Err(Error::Poisoned {
                cause: cause.clone(),
            }));
        }
        if self.writes_stopped {
            return Some(Err(Error::Closed));
        }
        None
    }
}

/// What one commit round wrote.
pub(crate) struct Round {
    /// The last LSN written; acknowledged once the round ends.
    last_lsn: u64,
    /// The LSN an fsync of this round made durable everything through, if any.
    synced_lsn: Option<u64>,
    /// What a write-only round left unsynced.
    unsynced: Option<UnsyncedTail>,
}

/// A commit round written whose fsync is still to come: the segment it ended in, where its
/// records end there, and what it acknowledges once synced.
pub(crate) struct WrittenRound<F: FileSystem> {
    entry: Arc<SegmentEntry<F>>,
    end: u64,
    round: Round,
}

/// What a round's writes left to do.
enum Written<F: FileSystem> {
    /// Nothing: the round is complete (a write-only round, or no fsync in this mode).
    Done(Round),
    /// The commit fsync.
    NeedsSync(WrittenRound<F>),
}

/// Result of a submit: the record's LSN and where it will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The record's LSN.
    pub lsn: u64,
    /// Where the record is written.
    pub position: RecordPosition,
}

/// The right to lead commit rounds: while `seat` is set, the writer's seat (only its holder
/// takes queued records and writes them); then, during a round's fsync, its ticket. Dropping
/// it unused (say, a blocking task that never ran) hands the seat back, so waiters are never
/// stranded.
pub(crate) struct LeaderClaim<F: FileSystem> {
    inner: Arc<Inner<F>>,
    phase: Phase,
}

/// Where a [`LeaderClaim`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Holds the writer's seat.
    Seat,
    /// Has given the seat back and waits for the fsync of the round with this ticket.
    Syncing { ticket: u64, holds_seat: bool },
    /// Done: nothing to hand back.
    Finished,
}

impl<F: FileSystem> Drop for LeaderClaim<F> {
    fn drop(&mut self) {
        // Only a panic inside a round (say, in a seal listener) leaves a claim unfinished in
        // a round; records it took may or may not be written, and nobody will finish the
        // round. Poison, so that every waiter gets an error instead of waiting forever. An
        // unused claim (a blocking task that never ran) just hands the seat back.
        let panicked = || Error::Poisoned {
            cause: crate::error::PoisonCause::other("a commit round panicked"),
        };
        match self.phase {
            Phase::Finished => {}
            Phase::Seat if std::thread::panicking() => {
                self.inner.finish_round(Some(Err(panicked())));
            }
            Phase::Seat => self.inner.finish_round(None),
            Phase::Syncing { ticket, holds_seat } => {
                let (wakeups, _) = self
                    .inner
                    .publish(ticket, holds_seat, Err(panicked()), false);
                wakeups.wake();
            }
        }
    }
}

/// One step of waiting for another round's fsync to end (rare, at most one fsync long):
/// a few yields, then short sleeps, so that on few cores the wait does not take the CPU
/// from the threads it waits for. Returns the steps taken so far.
pub(super) fn back_off(spins: u32) -> u32 {
    if cfg!(seglog_loom) || spins < 4 {
        crate::sync::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
    spins.saturating_add(1)
}

/// Rounds one leader runs back to back before it hands leadership on (its own caller waits
/// for the last of them).
pub(crate) const MAX_ROUNDS_PER_LEADER: usize = 8;

impl<F: FileSystem> LeaderClaim<F> {
    /// Runs commit rounds: write everything pending, fsync once, publish, wake the waiters
    /// the round made durable; then, while records are queued (and at most
    /// [`MAX_ROUNDS_PER_LEADER`] times), the next round at once. Leadership then goes to the
    /// oldest waiter if records are queued.
    ///
    /// During a round's fsync the writer's seat is free: once enough records are queued
    /// ([`crate::SegmentOptions::overlap_min_records`]) another appender writes and syncs the
    /// next round while this fsync is in flight. Rounds publish in order, whichever fsync
    /// returns first.
    pub fn lead(mut self) {
        let inner = self.inner.clone();
        let mut rounds = 0;
        loop {
            let Some(work) = inner.take_round_work() else {
                self.phase = Phase::Finished;
                inner.finish_round(None);
                return;
            };
            // Until the phase changes, a panic in here poisons the log (see `Drop`).
            let written = inner.write_round(work, RoundKind::Commit);
            rounds += 1;
            let keep_leading = rounds < MAX_ROUNDS_PER_LEADER;
            let written = match written {
                Err(e) => {
                    self.phase = Phase::Finished;
                    inner.finish_round(Some(Err(e)));
                    return;
                }
                Ok(Written::Done(round)) => {
                    let (wakeups, still_leading) = inner.advance(round, keep_leading);
                    if !still_leading {
                        self.phase = Phase::Finished;
                    }
                    wakeups.wake();
                    if !still_leading {
                        return;
                    }
                    continue;
                }
                Ok(Written::NeedsSync(written)) => written,
            };
            let (ticket, holds_seat, wakeups) = inner.begin_sync(written.entry.can_overlap());
            self.phase = Phase::Syncing { ticket, holds_seat };
            wakeups.wake();
            let synced = inner.sync_round(&written, ticket);
            inner.wait_for_turn(ticket);
            self.phase = Phase::Finished;
            let (wakeups, leads_again) =
                inner.publish(ticket, holds_seat, synced.map(|()| written), keep_leading);
            wakeups.wake();
            if !leads_again {
                return;
            }
            self.phase = Phase::Seat;
        }
    }
}

impl<F: FileSystem> LeaderClaim<F> {
    /// Runs one buffered round: writes everything queued, without the commit fsync. Nothing
    /// becomes durable (except a segment sealed on the way, which sealing syncs); the next
    /// commit round syncs it. Waiters that arrived meanwhile get the next round.
    fn write_only(mut self) -> Result<()> {
        let inner = self.inner.clone();
        let Some(work) = inner.take_round_work() else {
            self.release();
            return Ok(());
        };
        // Until the phase changes, a panic in here poisons the log (see `Drop`).
        let result = inner.write_round(work, RoundKind::WriteOnly);
        self.phase = Phase::Finished;
        match result {
            Ok(Written::Done(round)) => {
                inner.advance(round, false).0.wake();
                Ok(())
            }
            Ok(Written::NeedsSync(_)) => {
                let e = Error::InvalidOptions("a write-only round asked for an fsync".into());
                let cause = crate::error::PoisonCause::of(&e);
                inner.finish_round(Some(Err(e)));
                Err(Error::Poisoned { cause })
            }
            Err(e) => {
                let cause = crate::error::PoisonCause::of(&e);
                inner.finish_round(Some(Err(e)));
                Err(Error::Poisoned { cause })
            }
        }
    }

    /// Gives the seat back unused: the next round goes to a waiter, if work is queued.
    pub(crate) fn release(mut self) {
        self.phase = Phase::Finished;
        self.inner.finish_round(None);
    }

    /// Gives the seat back after a failure of work done in it outside a round (an explicit
    /// sync): the log is poisoned first, as by a failed round.
    pub(super) fn fail(mut self, error: Error) {
        self.phase = Phase::Finished;
        self.inner.finish_round(Some(Err(error)));
    }
}

impl<F: FileSystem> Inner<F> {
    /// Assigns the record its LSN and position and queues it. Writes nothing.
    pub(crate) fn submit(&self, record: EncodedRecord) -> Result<Appended> {
        self.check_record_size(&record)?;
        let mut st = self.commit.lock();
        self.queue_record(&mut st, record)
    }

    /// [`Error::TooLarge`] for a record over the configured maximum.
    pub(super) fn check_record_size(&self, record: &EncodedRecord) -> Result<()> {
        let len = record.len() as u64;
        if len > u64::from(self.opts.max_record_size_bytes) {
            return Err(Error::TooLarge {
                size: len,
                max: u64::from(self.opts.max_record_size_bytes),
            });
        }
        Ok(())
    }

    /// The body of [`Self::submit`], under the commit lock (`st`).
    pub(super) fn queue_record(
        &self,
        st: &mut CommitState,
        record: EncodedRecord,
    ) -> Result<Appended> {
        let len = record.len() as u64;
        st.check_usable()?;
        if st.next_lsn >= crate::format::LSN_LIMIT - 2 {
            return Err(Error::InvalidRecord("the log has used up its LSNs"));
        }
        let mut creates_segment = None;
        if st.tail_offset + len > self.opts.segment_size_bytes {
            let salt =
                crate::format::random_salt().map_err(|e| Error::io("getrandom", &self.dir, e))?;
            st.tail_segment = st.next_segment_number;
            st.tail_salt = salt;
            st.next_segment_number += 1;
            st.tail_offset = crate::format::SEGMENT_HEADER_LEN as u64;
            creates_segment = Some((st.next_lsn, salt));
        }
        let lsn = st.next_lsn;
        st.next_lsn += 1;
        let position = RecordPosition {
            segment: st.tail_segment,
            offset: st.tail_offset,
        };
        st.tail_offset += len;
        let bytes = record.seal(st.tail_salt, lsn, st.synced_lsn);
        let end_offset = st.tail_offset;
        st.pending_records += 1;
        match st.pending.last_mut() {
            Some(chunk) if chunk.segment == position.segment => {
                chunk.parts.push(bytes);
                chunk.end_offset = end_offset;
                chunk.last_lsn = lsn;
            }
            _ => st.pending.push(PendingChunk {
                segment: position.segment,
                creates_segment,
                start_offset: position.offset,
                end_offset,
                last_lsn: lsn,
                parts: vec![bytes],
            }),
        }
        Ok(Appended { lsn, position })
    }

    /// Queues a roll: the active segment is sealed and a new one created by the next commit
    /// round, with no record needed. The roll takes an LSN of its own (no record carries it)
    /// so that waiting for that LSN waits for the round. Returns that LSN and the number of
    /// the segment that will be sealed. When the tail segment holds no record there is
    /// nothing to roll: returns the last LSN submitted (waiting for it seals every segment
    /// before the tail) and `None`.
    pub(crate) fn submit_roll(&self) -> Result<(u64, Option<u64>)> {
        let salt =
            crate::format::random_salt().map_err(|e| Error::io("getrandom", &self.dir, e))?;
        let mut st = self.commit.lock();
        st.check_usable()?;
        if st.tail_offset <= crate::format::SEGMENT_HEADER_LEN as u64 {
            return Ok((st.next_lsn - 1, None));
        }
        let sealed = st.tail_segment;
        st.tail_salt = salt;
        let lsn = st.next_lsn;
        st.next_lsn += 1;
        st.tail_segment = st.next_segment_number;
        st.next_segment_number += 1;
        st.tail_offset = crate::format::SEGMENT_HEADER_LEN as u64;
        let (segment, offset) = (st.tail_segment, st.tail_offset);
        st.pending.push(PendingChunk {
            segment,
            // The new segment starts after the roll's LSN: its last LSN reads `first - 1`
            // until a record arrives, as for any empty segment.
            creates_segment: Some((lsn + 1, salt)),
            start_offset: offset,
            end_offset: offset,
            last_lsn: lsn,
            parts: Vec::new(),
        });
        Ok((lsn, Some(sealed)))
    }

    /// Takes everything queued for a round (and what a buffered round left unsynced), once
    /// nothing stands in its way: a zeroing claim it would write into (see the `zeroing`
    /// module; the wait is rare and short: one chunk's write and sync), or, for a round that
    /// rolls, another round's fsync in flight (sealing publishes the old segment whole, and
    /// must not overtake an earlier round's result). `None` when there is nothing to do.
    fn take_round_work(&self) -> Option<RoundWork> {
        let mut spins = 0;
        loop {
            {
                let mut st = self.commit.lock();
                // IMPORTANT: after a failed fsync (of a round that was in flight when this
                // one took the seat) nothing more is written: a seal would publish, and a
                // new segment make durable, records after a round that may be lost.
                if !st.has_round_work() || st.poisoned.is_some() {
                    return None;
                }
                let rolls_early =
                    st.syncing > 0 && st.pending.iter().any(PendingChunk::creates_segment);
                if !rolls_early && !Self::round_collides(st.zeroing, &st.pending) {
                    st.last_round_records = std::mem::take(&mut st.pending_records);
                    st.round_bytes_avg = st
                        .round_bytes_avg
                        .saturating_mul(3)
                        .saturating_add(st.pending_bytes())
                        / 4;
                    st.rounds_taken += 1;
                    st.last_taken_lsn = st.next_lsn - 1;
                    return Some(RoundWork {
                        chunks: std::mem::take(&mut st.pending),
                        unsynced: st.unsynced.take(),
                    });
                }
                if rolls_early {
                    drop(st);
                    spins = back_off(spins);
                    continue;
                }
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// For buffered appends: when more than `buffered_write_bytes` are queued and no round
    /// is running, writes the queue now, on this thread, without the commit fsync.
    pub(crate) fn write_queued_if_large(self: &Arc<Self>) -> Result<()> {
        let claim = {
            let mut st = self.commit.lock();
            st.check_usable()?;
            if st.pending_bytes() < self.opts.buffered_write_bytes.max(1) || st.syncing > 0 {
                return Ok(());
            }
            self.try_claim(&mut st)
        };
        match claim {
            Some(claim) => claim.write_only(),
            // The running round's leader takes the queue when its round ends.
            None => Ok(()),
        }
    }

    /// The last LSN submitted so far.
    pub(crate) fn last_submitted_lsn(&self) -> u64 {
        self.commit.lock().next_lsn - 1
    }

    /// Tells the followers of the durable watermark (`durable_watch`) that it moved (or that
    /// the log changed state). Their wakers are their callers' code, woken (and maybe
    /// dropped) here on a leader's thread: a panic in one stays here, so that it fails no
    /// round (see [`crate::CallerWaker`]).
    pub(crate) fn notify_followers(&self, modify: impl FnOnce(&mut u64)) {
        crate::caller_waker::contain("a durable-watermark follower's", "woken", || {
            self.durable_tx.send_modify(modify)
        });
    }

    /// Poisons the log from outside a commit round (a failed step of a segment replacement):
    /// every waiter and every later submit fails until the log is reopened.
    pub(crate) fn poison(&self, cause: &Error) {
        use std::sync::atomic::Ordering;
        tracing::error!(error = %cause, "the log is poisoned until reopened");
        let woken: Vec<Arc<Waiter>> = {
            let mut st = self.commit.lock();
            st.poisoned
                .get_or_insert_with(|| crate::error::PoisonCause::of(cause));
            st.waiters.drain(..).collect()
        };
        self.stats.record_poisoned();
        for w in woken {
            w.state.store(WOKEN, Ordering::Release);
            w.wake();
        }
        self.notify_followers(|_| {});
    }

    /// Claims the writer's seat if nobody holds it, and, while a round's fsync is in flight,
    /// only when enough records are queued to be worth a second fsync beside it (and never a
    /// third). The caller holds the commit lock.
    pub(crate) fn try_claim(self: &Arc<Self>, st: &mut CommitState) -> Option<LeaderClaim<F>> {
        if st.leader_active {
            return None;
        }
        if st.syncing > 0 && !self.may_overlap(st) {
            return None;
        }
        st.leader_active = true;
        Some(LeaderClaim {
            inner: self.clone(),
            phase: Phase::Seat,
        })
    }

    /// Whether a round may begin now beside the one whose fsync is in flight: when the
    /// records queued are `overlap_min_records` or more, or at least as many as that round
    /// carries and a quarter of `overlap_min_records`. A second fsync costs CPU (on a 2-vCPU
    /// VM, rounds of a few records beside large ones cost W3 a fifth of its throughput); it is
    /// worth it once its round is large, or as large as the one it overlaps: then the writers
    /// split into two groups of about the same size, each waiting about one round (16
    /// writers never queue 32 records, but two rounds of 8 overlap).
    fn may_overlap(&self, st: &CommitState) -> bool {
        let min = self.opts.overlap_min_records;
        if min == 0 || st.syncing >= 2 {
            return false;
        }
        let queued = st.pending_records;
        queued >= min || queued >= (min / 4).max(1).max(st.last_round_records)
    }

    /// After a round's writes, under the commit lock: takes a ticket for its fsync and, when
    /// the segment allows it (`overlap`), gives the writer's seat back for the fsync, asking
    /// a waiter to write the next round if enough records are already queued. Returns the
    /// ticket, whether the seat is still held, and whom to wake.
    fn begin_sync(self: &Arc<Self>, overlap: bool) -> (u64, bool, Wakeups) {
        let mut st = self.commit.lock();
        let ticket = st.sync_tickets;
        st.sync_tickets += 1;
        if st.syncing > 0 {
            self.stats.record_overlapped_round();
        }
        st.syncing += 1;
        let mut wakeups = Wakeups::default();
        if !overlap || self.opts.overlap_min_records == 0 {
            return (ticket, true, wakeups);
        }
        st.leader_active = false;
        if st.poisoned.is_none() && self.may_overlap(&st) {
            wakeups.hand_leadership(&mut st);
        }
        (ticket, false, wakeups)
    }

    /// The commit fsync of a written round, through the handle its ticket picks: rounds
    /// alternate between the segment's two, so two overlapping rounds never share one.
    fn sync_round(&self, written: &WrittenRound<F>, ticket: u64) -> Result<()> {
        let sync_started = Instant::now();
        let second = if ticket % 2 == 1 {
            written.entry.overlap_file()
        } else {
            None
        };
        let handle = second.as_deref().unwrap_or(&written.entry.file);
        // IMPORTANT: this fsync began after every write of this round and of every earlier
        // round (and buffered round) returned, so when it returns Ok every record up to the
        // round's last LSN is on stable storage.
        handle
            .sync_data()
            .map_err(|e| Error::io("sync_data", &written.entry.path, e))?;
        self.stats.record_sync(sync_started.elapsed());
        Ok(())
    }

    /// Waits until every round with an earlier ticket has published (or the log is
    /// poisoned): results are published in ticket order.
    fn wait_for_turn(&self, ticket: u64) {
        let mut spins = 0;
        loop {
            {
                let st = self.commit.lock();
                if st.published_rounds >= ticket || st.poisoned.is_some() {
                    return;
                }
            }
            spins = back_off(spins);
        }
    }

    /// Publishes the fsync result of round `ticket` (its turn has come): the new watermark
    /// and the waiters it acknowledges, or poisoning. A result after poisoning acknowledges
    /// nothing, even a successful one. Then decides who writes next: this thread again (the
    /// second value) when `keep_leading`, records are queued and the seat is free (or still
    /// its own); else a waiter, when records are queued and nobody holds the seat.
    fn publish(
        &self,
        ticket: u64,
        holds_seat: bool,
        synced: Result<WrittenRound<F>>,
        keep_leading: bool,
    ) -> (Wakeups, bool) {
        let (durable, wakeups, leads_again) = {
            let mut st = self.commit.lock();
            st.syncing = st.syncing.saturating_sub(1);
            st.published_rounds = st.published_rounds.max(ticket + 1);
            match synced {
                Ok(written) if st.poisoned.is_none() => {
                    written
                        .entry
                        .publish_durable(written.end, written.round.last_lsn);
                    self.raise_watermark(&mut st, &written.round);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "fsync failed; the log is poisoned until reopened");
                    st.poisoned
                        .get_or_insert_with(|| crate::error::PoisonCause::of(&e));
                    self.stats.record_poisoned();
                }
            }
            let done = if st.poisoned.is_some() {
                st.waiters.len()
            } else {
                st.waiters.partition_point(|w| w.lsn <= st.durable_lsn)
            };
            let mut wakeups = Wakeups::acknowledge(&mut st, done);
            if self.wants_zeros(&st) {
                self.wake_zeroer();
            }
            // Records queued may start a round now if no other fsync is in flight, or if they
            // are enough to overlap it; otherwise the round in flight takes them when it
            // publishes.
            let seat_free = holds_seat || !st.leader_active;
            let may_start = st.has_round_work()
                && st.poisoned.is_none()
                && (st.syncing == 0 || self.may_overlap(&st));
            let leads_again = seat_free && may_start && keep_leading;
            if leads_again {
                st.leader_active = true;
            } else {
                // This thread leads no more rounds: it sweeps the last group now.
                wakeups.end_relays(&mut st);
                if seat_free {
                    st.leader_active = false;
                    if may_start {
                        wakeups.hand_leadership(&mut st);
                    }
                }
            }
            (st.durable_lsn, wakeups, leads_again)
        };
        self.notify_followers(|v| *v = (*v).max(durable));
        (wakeups, leads_again)
    }

    /// The writes of one round; a commit round's fsync is left to the caller
    /// ([`Written::NeedsSync`]).
    fn write_round(&self, work: RoundWork, kind: RoundKind) -> Result<Written<F>> {
        let chunks = &work.chunks;
        let mut gathered = Vec::new();
        // The segment last written to, where its written records end, and their last LSN.
        // A buffered round's unwritten-to-disk records come first: they are the log's tail.
        let mut touched: Option<(Arc<SegmentEntry<F>>, u64, u64)> = match work.unsynced {
            Some(u) => Some((self.entry(u.segment)?, u.end, u.last_lsn)),
            None => None,
        };
        let mut records = 0usize;
        let mut written = 0u64;
        let mut sealed_through = None;
        for chunk in chunks {
            if let Some((first_lsn, salt)) = chunk.creates_segment {
                let previous = match touched.take() {
                    Some(t) => Some(t),
                    None => self.active_entry_with_end(),
                };
                if let Some((prev, end, last_lsn)) = previous {
                    // Sealing fsyncs the segment: everything up to its last LSN is synced.
                    self.seal_segment(&prev, end, last_lsn)?;
                    sealed_through = Some(last_lsn);
                }
                self.create_segment(chunk.segment, first_lsn, salt)?;
            }
            let entry = self.entry(chunk.segment)?;
            let len: u64 = chunk.parts.iter().map(|p| p.len() as u64).sum();
            records += chunk.parts.len();
            written += len;
            if len > 0 {
                self.cover_with_tail_bound(&entry, chunk.end_offset)?;
                write_chunk(&entry.file, chunk, len, &mut gathered)
                    .map_err(|e| Error::io("write", &entry.path, e))?;
            }
            touched = Some((entry, chunk.end_offset, chunk.last_lsn));
        }
        let Some((entry, end, last_lsn)) = touched else {
            return Err(Error::InvalidOptions("empty commit round".into()));
        };
        if kind == RoundKind::WriteOnly && self.opts.sync_mode == SyncMode::Always {
            // Written, not synced: not readable, not acknowledged, vouched for by no record.
            self.stats.record_buffered_round(written);
            return Ok(Written::Done(Round {
                last_lsn: sealed_through.unwrap_or(0),
                synced_lsn: sealed_through,
                unsynced: Some(UnsyncedTail {
                    segment: entry.number(),
                    end,
                    last_lsn,
                }),
            }));
        }
        if records > 0 {
            self.stats.record_commit(records, written);
        }
        if self.opts.sync_mode == SyncMode::Always {
            let round = Round {
                last_lsn,
                synced_lsn: Some(last_lsn),
                unsynced: None,
            };
            if !crate::teeth::skipped(crate::teeth::SyncPoint::CommitFsync) {
                return Ok(Written::NeedsSync(WrittenRound { entry, end, round }));
            }
            entry.publish_durable(end, last_lsn);
            return Ok(Written::Done(round));
        }
        entry.publish_durable(end, last_lsn);
        Ok(Written::Done(Round {
            last_lsn,
            synced_lsn: sealed_through,
            unsynced: None,
        }))
    }

    /// Before bytes of `entry` up to `end` are written: the tail bound made durable past
    /// them (see `crate::tail_bound`), when this writer keeps one.
    pub(super) fn cover_with_tail_bound(&self, entry: &SegmentEntry<F>, end: u64) -> Result<()> {
        if !self.prepares_segments() {
            return Ok(());
        }
        self.tail_lease
            .lock()
            .ensure(&self.dir, entry.number(), entry.header.record_salt(), end)
    }

    /// The active segment with its durable end, for sealing it when a new one is needed.
    pub(super) fn active_entry_with_end(&self) -> Option<(Arc<SegmentEntry<F>>, u64, u64)> {
        let segments = self.segments.read();
        let entry = segments
            .values()
            .filter(|e| !e.info().sealed)
            .max_by_key(|e| e.header.first_lsn)?
            .clone();
        let info = entry.info();
        Some((entry, info.data_end, info.last_lsn))
    }

    fn entry(&self, number: u64) -> Result<Arc<SegmentEntry<F>>> {
        self.segments
            .read()
            .get(&number)
            .cloned()
            .ok_or(Error::NoSuchRecord {
                segment: number,
                offset: 0,
            })
    }

    /// Raises the durable watermark (and the synced one) to what `round` made durable, and
    /// mirrors it in the atomic a woken waiter reads. Under the commit lock (`st`).
    fn raise_watermark(&self, st: &mut CommitState, round: &Round) {
        st.durable_lsn = st.durable_lsn.max(round.last_lsn);
        if let Some(synced) = round.synced_lsn {
            st.synced_lsn = st.synced_lsn.max(synced);
        }
        self.durable_lsn
            .store(st.durable_lsn, std::sync::atomic::Ordering::Release);
    }

    /// After a successful round: publishes its LSN as durable and takes the waiters it
    /// acknowledged out of the queue, marked woken, to be woken ([`Wakeups`]). If records are
    /// queued, the leader keeps leading when `keep_leading` (the second value is then true);
    /// otherwise leadership goes back, to a waiter if records are queued.
    fn advance(&self, round: Round, keep_leading: bool) -> (Wakeups, bool) {
        let (durable, wakeups, still_leading) = {
            let mut st = self.commit.lock();
            self.raise_watermark(&mut st, &round);
            st.unsynced = round.unsynced;
            let done = st.waiters.partition_point(|w| w.lsn <= st.durable_lsn);
            let mut wakeups = Wakeups::acknowledge(&mut st, done);
            if self.wants_zeros(&st) {
                self.wake_zeroer();
            }
            let still_leading = keep_leading && st.has_round_work();
            if !still_leading {
                wakeups.end_relays(&mut st);
                st.leader_active = false;
                if st.has_round_work() {
                    wakeups.hand_leadership(&mut st);
                }
            }
            (st.durable_lsn, wakeups, still_leading)
        };
        self.notify_followers(|v| *v = (*v).max(durable));
        (wakeups, still_leading)
    }

    /// Ends a round: publish the new watermark or poison, hand back leadership, and wake the
    /// waiters it concerns.
    fn finish_round(&self, outcome: Option<Result<u64>>) {
        use std::sync::atomic::Ordering;
        let mut to_wake: Vec<Arc<Waiter>> = Vec::new();
        let durable = {
            let mut st = self.commit.lock();
            match outcome {
                Some(Ok(lsn)) => {
                    st.durable_lsn = st.durable_lsn.max(lsn);
                    self.durable_lsn
                        .store(st.durable_lsn, std::sync::atomic::Ordering::Release);
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "write or fsync failed; the log is poisoned until reopened");
                    st.poisoned
                        .get_or_insert_with(|| crate::error::PoisonCause::of(&e));
                    self.stats.record_poisoned();
                }
                None => {}
            }
            st.leader_active = false;
            // Everyone whose LSN is now durable — or everyone, once poisoned — looks again.
            let done = if st.poisoned.is_some() {
                st.waiters.len()
            } else {
                st.waiters.partition_point(|w| w.lsn <= st.durable_lsn)
            };
            for w in st.waiters.drain(..done) {
                w.state.store(WOKEN, Ordering::Release);
                to_wake.push(w);
            }
            // Records are queued (or written, unsynced) and nobody leads: hand the next round
            // on.
            let mut wakeups = Wakeups::default();
            wakeups.end_relays(&mut st);
            if st.has_round_work() && st.poisoned.is_none() {
                wakeups.hand_leadership(&mut st);
            }
            (st.durable_lsn, wakeups)
        };
        let (durable, wakeups) = durable;
        for w in to_wake {
            w.wake();
        }
        wakeups.wake();
        self.notify_followers(|v| *v = (*v).max(durable));
    }
}
