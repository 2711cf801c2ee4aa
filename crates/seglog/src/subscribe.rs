//! Subscriptions: catch up on stored events, then follow new ones as they become durable.

use crate::log::Log;
use crate::read::Event;
use crate::{Error, Result};
use futures_core::Stream;
use seglog_segment::io::FileSystem;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

/// How many events one catch-up read fetches.
const CATCH_UP_BATCH: usize = 1024;

struct Cursor<F: FileSystem> {
    log: Log<F>,
    execution: String,
    last_seq: u64,
    buffered: VecDeque<Event>,
    /// The `layout_epoch` before the read that filled `buffered` (see `subscribe_global`).
    buffered_epoch: u64,
    visible: watch::Receiver<u64>,
    /// The segment layer's durable watermark: followed while cancelled or buffered appends
    /// wait to be published, since nothing else would wake us when they become durable.
    durable: watch::Receiver<u64>,
    done: bool,
}

impl<F: FileSystem> Log<F> {
    /// A stream of `execution`'s events after `after_seq`: first those already stored, then
    /// each new one as it becomes durable, in order, with no gap or duplicate across the
    /// switch. It ends when the log is closed; an error is yielded once, then it ends.
    pub fn subscribe(
        &self,
        execution: &str,
        after_seq: u64,
    ) -> impl Stream<Item = Result<Event>> + Send + 'static {
        let cursor = Cursor {
            log: self.clone(),
            execution: execution.to_owned(),
            last_seq: after_seq,
            buffered: VecDeque::new(),
            buffered_epoch: 0,
            visible: self.shared.visible_tx.subscribe(),
            durable: self.shared.segments.durable_watch(),
            done: false,
        };
        futures_util::stream::unfold(cursor, |mut c| async move {
            loop {
                if c.done {
                    return None;
                }
                // IMPORTANT: once `compact` has returned, nothing it erased may be handed out
                // (reliability clause 6), read ahead or not.
                if c.log.layout_epoch() != c.buffered_epoch {
                    c.buffered.clear();
                }
                if let Some(event) = c.buffered.pop_front() {
                    c.last_seq = event.seq;
                    return Some((Ok(event), c));
                }
                // Mark the current version seen *before* reading, so a publish that lands
                // after the read wakes the wait below.
                c.visible.borrow_and_update();
                c.durable.borrow_and_update();
                c.buffered_epoch = c.log.layout_epoch();
                match c
                    .log
                    .read_range(&c.execution, c.last_seq.saturating_add(1), CATCH_UP_BATCH)
                {
                    Ok(events) if !events.is_empty() => c.buffered.extend(events),
                    Ok(_) => {
                        let changed = if c.log.shared.has_unpublished.load(Ordering::Acquire) {
                            tokio::select! {
                                r = c.visible.changed() => r,
                                r = c.durable.changed() => r,
                            }
                        } else {
                            c.visible.changed().await
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
        })
    }
}
