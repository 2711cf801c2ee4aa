//! Per-execution wake-ups for subscribers: a subscription to one execution waits on a
//! channel of its own, which only publishes to that execution bump. (One channel for every
//! subscriber would wake all of them, to find nothing new, on every append.)

use ahash::AHashMap;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

/// The channels of the executions that have subscribers.
#[derive(Default)]
pub(crate) struct ExecutionWatchers {
    /// Entries in `by_execution`: publishers look at the map only when some exist.
    watched: AtomicUsize,
    by_execution: Mutex<AHashMap<Box<str>, watch::Sender<u64>>>,
}

impl ExecutionWatchers {
    /// A receiver bumped whenever events of `execution` become visible (or all are woken).
    pub(crate) fn watch(&self, execution: &str) -> watch::Receiver<u64> {
        let mut map = self.by_execution.lock();
        if let Some(tx) = map.get(execution) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        map.insert(execution.into(), tx);
        self.watched.store(map.len(), Ordering::Release);
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
            self.watched.store(map.len(), Ordering::Release);
        }
    }

    /// Wakes the subscribers of `execution`, if any.
    pub(crate) fn notify(&self, execution: &str) {
        if self.watched.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(tx) = self.by_execution.lock().get(execution) {
            tx.send_modify(|v| *v += 1);
        }
    }

    /// Wakes every subscriber (close, a refresh, appends left to be published later).
    pub(crate) fn notify_all(&self) {
        if self.watched.load(Ordering::Acquire) == 0 {
            return;
        }
        for tx in self.by_execution.lock().values() {
            tx.send_modify(|v| *v += 1);
        }
    }
}
