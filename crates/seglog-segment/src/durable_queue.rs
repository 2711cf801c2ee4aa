//! Items that wait for the durable watermark: the appends nobody waits on (buffered, or whose
//! waiter went away), published to readers once their LSN is durable.
//!
//! Readers look at a flag before they take the lock (most of the time nothing waits), and a
//! subscriber that finds nothing waiting follows only publishes, not the durable watermark.
//! So whoever makes the queue non-empty must say so ([`DurableQueue::push`] returns true),
//! and its caller wakes those subscribers: from then on they follow the watermark too.

use crate::sync::{AtomicBool, Mutex};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

/// An item and the LSN it waits for, lowest LSN first out of the heap.
struct Entry<T> {
    lsn: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.lsn == other.lsn
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.lsn.cmp(&self.lsn)
    }
}

/// A queue of items, each waiting for one LSN to become durable.
pub struct DurableQueue<T> {
    queue: Mutex<BinaryHeap<Entry<T>>>,
    /// Whether the queue holds anything, as of the last change (read without the lock).
    waiting: AtomicBool,
}

impl<T> Default for DurableQueue<T> {
    fn default() -> Self {
        DurableQueue {
            queue: Mutex::new(BinaryHeap::new()),
            waiting: AtomicBool::new(false),
        }
    }
}

impl<T> DurableQueue<T> {
    /// Queues `item` until `lsn` is durable. Returns true when nothing was waiting before:
    /// the caller then tells whoever follows only publishes to follow the watermark too.
    pub fn push(&self, lsn: u64, item: T) -> bool {
        let mut queue = self.queue.lock();
        let was_empty = queue.is_empty();
        queue.push(Entry { lsn, item });
        // IMPORTANT: under the lock, as a drain sets it, so that the flag always tells what
        // the queue held at its last change. Set after the lock, a drain could set it in
        // between, and this push would find it set and report nothing (review 69;
        // tests/loom_durable_queue.rs).
        self.waiting.store(true, Ordering::Release);
        was_empty
    }

    /// Whether anything waits: a hint read without the lock.
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }

    /// Takes the items whose LSN is at most `durable`, lowest LSN first, and calls `publish`
    /// on each before the queue lets go of it: once a `take_through` returns — or once
    /// [`Self::is_waiting`] reads false — every item taken through `durable`, by it or by a
    /// concurrent one, has been published (a `sync` reads its own writes; review 95,
    /// tests/loom_durable_queue.rs). `publish` runs under the queue's lock: keep it short and
    /// lock-free (an atomic), and wake anyone afterwards, from the returned items.
    pub fn take_through(&self, durable: u64, mut publish: impl FnMut(&T)) -> Vec<T> {
        if !self.is_waiting() {
            return Vec::new();
        }
        let mut due = Vec::new();
        let mut queue = self.queue.lock();
        while queue.peek().is_some_and(|e| e.lsn <= durable) {
            if let Some(entry) = queue.pop() {
                publish(&entry.item);
                due.push(entry.item);
            }
        }
        // After the publishes: a reader that sees false sees them too.
        self.waiting.store(!queue.is_empty(), Ordering::Release);
        due
    }
}

#[cfg(all(test, not(seglog_loom)))]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_lsn_order_once_durable() {
        let q = DurableQueue::default();
        assert!(q.push(7, "c"));
        assert!(!q.push(3, "a"));
        assert!(!q.push(5, "b"));
        let mut published = Vec::new();
        assert!(q.take_through(2, |i| published.push(*i)).is_empty());
        assert_eq!(q.take_through(5, |i| published.push(*i)), ["a", "b"]);
        assert!(q.is_waiting());
        assert_eq!(q.take_through(u64::MAX, |i| published.push(*i)), ["c"]);
        assert_eq!(published, ["a", "b", "c"]);
        assert!(!q.is_waiting());
        assert!(q.push(9, "d"), "a push into an emptied queue reports it");
    }
}
