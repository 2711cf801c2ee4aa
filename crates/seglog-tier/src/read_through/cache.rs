//! A bounded LRU cache of fixed-size blocks of offloaded segments, keyed by the segment's
//! **object key** and the block's index: keys name the segment's number, salt and the
//! uploader's epoch and are never overwritten, so a block can only ever be given back for
//! the very object it was read from (never another segment's, another tenant's, or another
//! version's bytes under a reused segment number).
//!
//! What must hold: the cached bytes never exceed the capacity (a block larger than the
//! capacity is not cached); a lookup never returns a block of another key.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// (object key, block index).
pub(crate) type BlockKey = (Arc<str>, u64);

pub(crate) struct BlockCache {
    capacity_bytes: u64,
    held_bytes: u64,
    tick: u64,
    blocks: HashMap<BlockKey, (Bytes, u64)>,
    /// Last use → key: the least recently used block comes first.
    by_use: BTreeMap<u64, BlockKey>,
}

impl BlockCache {
    pub fn new(capacity_bytes: u64) -> Self {
        BlockCache {
            capacity_bytes,
            held_bytes: 0,
            tick: 0,
            blocks: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// The block, marked as just used.
    pub fn get(&mut self, key: &BlockKey) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        let (bytes, used) = self.blocks.get_mut(key)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, key.clone());
        Some(bytes.clone())
    }

    /// Caches `bytes` as `key`, evicting the least recently used blocks to make room.
    pub fn insert(&mut self, key: BlockKey, bytes: Bytes) {
        let len = bytes.len() as u64;
        if len > self.capacity_bytes {
            return;
        }
        self.remove(&key);
        while self.held_bytes + len > self.capacity_bytes {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((b, _)) = self.blocks.remove(&oldest) {
                self.held_bytes -= b.len() as u64;
            }
        }
        self.tick += 1;
        self.by_use.insert(self.tick, key.clone());
        self.blocks.insert(key, (bytes, self.tick));
        self.held_bytes += len;
    }

    fn remove(&mut self, key: &BlockKey) {
        if let Some((b, used)) = self.blocks.remove(key) {
            self.by_use.remove(&used);
            self.held_bytes -= b.len() as u64;
        }
    }

    /// Drops every block of `object` (after its bytes failed a check).
    pub fn forget_object(&mut self, object: &str) {
        let doomed: Vec<BlockKey> = self
            .blocks
            .keys()
            .filter(|(k, _)| &**k == object)
            .cloned()
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(k: &str, i: u64) -> BlockKey {
        (Arc::from(k), i)
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_evicts_the_least_recently_used() {
        let mut c = BlockCache::new(10);
        c.insert(key("a", 0), Bytes::from_static(b"aaaa"));
        c.insert(key("b", 0), Bytes::from_static(b"bbbb"));
        assert!(c.get(&key("a", 0)).is_some()); // a is now newer than b
        c.insert(key("c", 0), Bytes::from_static(b"cccc"));
        assert!(c.held_bytes() <= 10);
        assert!(
            c.get(&key("b", 0)).is_none(),
            "b was the least recently used"
        );
        assert_eq!(&c.get(&key("a", 0)).unwrap()[..], b"aaaa");
        c.insert(key("big", 0), Bytes::from(vec![0u8; 11]));
        assert!(c.get(&key("big", 0)).is_none(), "larger than the capacity");
    }

    #[test]
    fn blocks_of_one_object_are_never_returned_for_another() {
        let mut c = BlockCache::new(1 << 20);
        c.insert(key("segments/1-e1.seg", 0), Bytes::from_static(b"one"));
        assert!(c.get(&key("segments/1-e2.seg", 0)).is_none());
        c.forget_object("segments/1-e1.seg");
        assert!(c.get(&key("segments/1-e1.seg", 0)).is_none());
        assert_eq!(c.held_bytes(), 0);
    }
}
