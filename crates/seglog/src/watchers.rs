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
    /// Shared, so that a publisher bumps a channel *after* letting go of the map: a bump runs
    /// wakers, and a waker may drop or make a subscription (which takes the map's lock).
    by_execution: Mutex<AHashMap<Box<str>, Arc<watch::Sender<u64>>>>,
}

impl ExecutionWatchers {
    /// A receiver bumped whenever events of `execution` become visible (or all are woken).
    pub(crate) fn watch(&self, execution: &str) -> watch::Receiver<u64> {
        let mut map = self.by_execution.lock();
        if let Some(tx) = map.get(execution) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        map.insert(execution.into(), Arc::new(tx));
        self.watched.store(map.len(), Ordering::SeqCst);
        drop(map);
        // Pairs with the fence in `notify`: either the publisher sees this subscriber, or
        // the subscriber's first read (after this) sees the publisher's events.
        fence(Ordering::SeqCst);
        rx
    }

    /// Called by a subscription that is going away, while it still holds its receiver:
    /// drops the execution's channel when that receiver is the last. (Under the map's lock,
    /// as `watch` is, so that no new subscriber gets a receiver of a channel being dropped.)
    pub(crate) fn release(&self, execution: &str) {
        let mut map = self.by_execution.lock();
        if map
            .get(execution)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
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
        let tx = self.by_execution.lock().get(execution).cloned();
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
        let all: Vec<Arc<watch::Sender<u64>>> =
            self.by_execution.lock().values().cloned().collect();
        for tx in all {
            tx.send_modify(|v| *v += 1);
        }
    }
}
