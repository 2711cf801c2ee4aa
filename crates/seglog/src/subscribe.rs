//! Subscriptions: catch up on stored events, then follow new ones as they become durable.

use crate::log::Log;
use crate::read::Event;
use crate::{Error, Result};
use futures_core::Stream;
use seglog_segment::io::FileSystem;
use std::collections::VecDeque;
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
    /// Bumped when events of this execution become visible (or every subscriber is woken).
    visible: watch::Receiver<u64>,
    /// The segment layer's durable watermark: followed while cancelled or buffered appends
    /// wait to be published, since nothing else would wake us when they become durable.
    durable: seglog_segment::DurableWatch,
    done: bool,
    /// The creation LSN of the execution's incarnation this subscription follows, once it
    /// has seen the execution.
    incarnation: Option<u64>,
}

impl<F: FileSystem> Drop for Cursor<F> {
    fn drop(&mut self) {
        // Still holding `visible`: the execution's channel goes if it is the last receiver.
        self.log.shared.watchers.release(&self.execution);
    }
}

/// A live stream of a log's events or records: what [`Log::subscribe`] (items
/// [`Event`]) and [`Log::subscribe_global`] (items [`crate::LogRecord`]) return. A named
/// type, so that it can be stored in a struct; it is `Send` and `'static` (it holds its own
/// handle on the log) and `Unpin`.
///
/// Cancel safety: dropping it (or a `next()` future of it) loses nothing; a new
/// subscription from the last item's position continues without gap or duplicate.
pub struct Subscription<T> {
    stream: std::pin::Pin<Box<dyn Stream<Item = Result<T>> + Send + 'static>>,
    /// What the log's channels get in place of the caller's waker. Those channels are
    /// tokio's `watch`, whose wake-up loop a panicking waker ends: the wakers of every
    /// subscriber queued after it would be dropped unwoken, and those subscribers would wait
    /// for good on durable, visible events (review 55). Every receiver of those channels sits
    /// behind a `Subscription`, so this is also what keeps such a panic (in the caller's
    /// waker's wake or drop) out of the appender that publishes (`tests/panicking_subscriber.rs`,
    /// `tests/review56_subscriber_waker_drop.rs`).
    waker: seglog_segment::ShieldedWaker,
}

impl<T> Subscription<T> {
    pub(crate) fn new(stream: impl Stream<Item = Result<T>> + Send + 'static) -> Self {
        Subscription {
            stream: Box::pin(stream),
            waker: seglog_segment::ShieldedWaker::new("a subscriber's"),
        }
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<T>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<T>>> {
        let this = self.get_mut();
        let waker = this.waker.for_caller(cx.waker());
        this.stream
            .as_mut()
            .poll_next(&mut std::task::Context::from_waker(waker))
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl<F: FileSystem> Log<F> {
    /// A stream of `execution`'s events after `after_seq`: first those already stored, then
    /// each new one as it becomes durable, in order, with no gap or duplicate across the
    /// switch. It ends when the log is closed; an error is yielded once, then it ends. It
    /// follows one incarnation of the execution: if a compaction erases it, the next item is
    /// [`Error::Erased`] (a later execution of the same name is not its continuation).
    pub fn subscribe(&self, execution: &str, after_seq: u64) -> Subscription<Event> {
        let cursor = Cursor {
            log: self.clone(),
            execution: execution.to_owned(),
            last_seq: after_seq,
            buffered: VecDeque::new(),
            buffered_epoch: 0,
            visible: self.shared.watchers.watch(execution),
            durable: self.shared.segments.durable_watch(),
            done: false,
            incarnation: None,
        };
        Subscription::new(futures_util::stream::unfold(cursor, |mut c| async move {
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
                let read =
                    c.log
                        .read_chunk(&c.execution, c.last_seq.saturating_add(1), CATCH_UP_BATCH);
                // IMPORTANT: a subscription follows one incarnation of the execution. Once a
                // compaction has erased it, a later execution of the same name (maybe another
                // tenant's) is not its continuation: end with `Erased` (review 11).
                let read = read.and_then(|(events, now)| match (c.incarnation, now) {
                    (Some(followed), now) if now != Some(followed) => Err(Error::Erased {
                        execution: c.execution.clone(),
                    }),
                    (None, now) => {
                        c.incarnation = now;
                        Ok(events)
                    }
                    _ => Ok(events),
                });
                match read {
                    Ok(events) if !events.is_empty() => c.buffered.extend(events),
                    Ok(_) => {
                        let changed = if c.log.shared.unpublished.is_waiting() {
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
        }))
    }
}
