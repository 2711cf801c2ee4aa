//! Per-execution wake-ups for subscribers: a subscription to one execution waits on a
//! channel of its own, which only publishes to that execution bump. (One channel for every
//! subscriber would wake all of them, to find nothing new, on every append.)

use ahash::AHashMap;
use parking_lot::Mutex;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// The channels of the executions that have subscribers.
#[derive(Default)]
pub(crate) struct ExecutionWatchers {
    /// Entries in `by_execution`: publishers look at the map only when some exist.
    watched: AtomicUsize,
    by_execution: Mutex<AHashMap<Box<str>, Watched>>,
}

/// One execution's channel and its subscriptions.
struct Watched {
    /// Shared, so that a publisher bumps the channel *after* letting go of the map: a bump
    /// runs wakers, and a waker may drop or make a subscription (which takes the map's lock).
    tx: Arc<watch::Sender<u64>>,
    /// Subscriptions that called [`ExecutionWatchers::watch`] and not yet
    /// [`ExecutionWatchers::release`]. Counted under the map's lock, not read off the
    /// channel's receiver count: two subscriptions released at once each still hold their
    /// receiver while they look, and each would leave the entry to the other.
    subscriptions: usize,
}

impl ExecutionWatchers {
    /// A receiver bumped whenever events of `execution` become visible (or all are woken).
    pub(crate) fn watch(&self, execution: &str) -> watch::Receiver<u64> {
        let mut map = self.by_execution.lock();
        if let Some(w) = map.get_mut(execution) {
            w.subscriptions += 1;
            return w.tx.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        map.insert(
            execution.into(),
            Watched {
                tx: Arc::new(tx),
                subscriptions: 1,
            },
        );
        self.watched.store(map.len(), Ordering::SeqCst);
        drop(map);
        // Pairs with the fence in `notify`: either the publisher sees this subscriber, or
        // the subscriber's first read (after this) sees the publisher's events.
        fence(Ordering::SeqCst);
        rx
    }

    /// Called once by each subscription that [`Self::watch`] served, as it goes away: drops
    /// the execution's channel when it was the last. (Under the map's lock, as `watch` is, so
    /// that no new subscriber gets a receiver of a channel being dropped.)
    pub(crate) fn release(&self, execution: &str) {
        let mut map = self.by_execution.lock();
        let Some(w) = map.get_mut(execution) else {
            return;
        };
        w.subscriptions = w.subscriptions.saturating_sub(1);
        if w.subscriptions == 0 {
            map.remove(execution);
            self.watched.store(map.len(), Ordering::SeqCst);
        }
    }

    /// Wakes the subscribers of `execution`, if any.
    pub(crate) fn notify(&self, execution: &str) {
        // Pairs with the fence in `watch` (the events were published just before this).
        fence(Ordering::SeqCst);
        if self.watched.load(Ordering::SeqCst) == 0 {
            return;
        }
        let tx = self
            .by_execution
            .lock()
            .get(execution)
            .map(|w| w.tx.clone());
        if let Some(tx) = tx {
            tx.send_modify(|v| *v += 1);
        }
    }

    /// Wakes every subscriber (close, a refresh, appends left to be published later).
    pub(crate) fn notify_all(&self) {
        fence(Ordering::SeqCst);
        if self.watched.load(Ordering::SeqCst) == 0 {
            return;
        }
        let all: Vec<Arc<watch::Sender<u64>>> = self
            .by_execution
            .lock()
            .values()
            .map(|w| w.tx.clone())
            .collect();
        for tx in all {
            tx.send_modify(|v| *v += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two subscriptions of one execution going away at once: each releases while both
    /// still hold their receivers. The channel must still go once both are gone (it used to
    /// stay: each saw the other's receiver and left the entry to it).
    #[test]
    fn concurrent_releases_drop_the_channel() {
        let w = ExecutionWatchers::default();
        let (a, b) = (w.watch("e"), w.watch("e"));
        w.release("e");
        w.release("e");
        drop((a, b));
        assert!(w.by_execution.lock().is_empty());
        assert_eq!(w.watched.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_channel_stays_while_a_subscription_does() {
        let w = ExecutionWatchers::default();
        let (a, b) = (w.watch("e"), w.watch("e"));
        w.release("e");
        drop(a);
        assert_eq!(w.watched.load(Ordering::SeqCst), 1);
        w.notify("e");
        assert!(b.has_changed().unwrap_or(false));
        w.release("e");
        assert_eq!(w.watched.load(Ordering::SeqCst), 0);
    }
}
