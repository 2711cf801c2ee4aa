//! Following the whole log: catch up on the durable records after a global position, then
//! yield each new one as it becomes durable, in global order.
//!
//! Invariant: no gap and no duplicate across the switch from catching up to following. The
//! cursor is the last position yielded; each read asks for records above it; and the
//! durable watermark's channel is marked seen *before* each read, so a commit that lands
//! after the read wakes the wait (the writer publishes a segment's durable end before it
//! sends the new watermark).

use crate::global::LogRecord;
use crate::log::Log;
use crate::Error;
use seglog_segment::io::FileSystem;
use std::collections::VecDeque;
use tokio::sync::watch;

/// How many records one catch-up read fetches.
const CATCH_UP_BATCH: usize = 1024;

struct GlobalCursor<F: FileSystem> {
    log: Log<F>,
    after_lsn: u64,
    buffered: VecDeque<LogRecord>,
    /// The `layout_epoch` before the read that filled `buffered`: when a compaction has
    /// moved records since, the buffer may hold records it erased, and is read again.
    buffered_epoch: u64,
    /// The segment layer's durable watermark: moves after every commit round.
    durable: seglog_segment::DurableWatch,
    /// Bumped by the engine when it closes (among other things).
    visible: watch::Receiver<u64>,
    done: bool,
}

impl<F: FileSystem> Log<F> {
    /// A stream of every execution's records after global position `after_lsn` (0: from
    /// the start), in global order: first those already durable, then each new one as it
    /// becomes durable. It ends when the log is closed; an error is yielded once, then it
    /// ends. Records dropped by a compaction before the stream reaches them are not
    /// yielded.
    pub fn subscribe_global(&self, after_lsn: u64) -> crate::Subscription<LogRecord> {
        let cursor = GlobalCursor {
            log: self.clone(),
            after_lsn,
            buffered: VecDeque::new(),
            buffered_epoch: 0,
            durable: self.shared.segments.durable_watch(),
            visible: self.shared.visible_tx.subscribe(),
            done: false,
        };
        crate::Subscription::new(futures_util::stream::unfold(cursor, |mut c| async move {
            loop {
                if c.done {
                    return None;
                }
                // IMPORTANT: once `compact` has returned, nothing it erased may be handed out
                // (reliability clause 6), read ahead or not.
                if c.log.layout_epoch() != c.buffered_epoch {
                    c.buffered.clear();
                }
                if let Some(record) = c.buffered.pop_front() {
                    c.after_lsn = record.lsn;
                    return Some((Ok(record), c));
                }
                // Seen before the read: a commit after it wakes the wait below.
                c.durable.borrow_and_update();
                c.visible.borrow_and_update();
                c.buffered_epoch = c.log.layout_epoch();
                match c.log.read_global(c.after_lsn, CATCH_UP_BATCH) {
                    Ok(records) if !records.is_empty() => c.buffered.extend(records),
                    Ok(_) => {
                        let changed = tokio::select! {
                            r = c.durable.changed() => r,
                            r = c.visible.changed() => r,
                        };
                        if changed.is_err() || c.log.is_closed() {
                            return None;
                        }
                    }
                    Err(Error::Closed) => return None,
                    Err(e) => {
                        c.done = true;
                        return Some((Err(e), c));
                    }
                }
            }
        }))
    }
}
