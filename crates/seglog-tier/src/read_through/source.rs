//! [`BucketSource`]: the `seglog::SegmentSource` that reads offloaded segments from the
//! bucket with ranged GETs, through a block cache.
//!
//! Reads of a `seglog::Log` are synchronous; GETs are async. The source owns a small tokio
//! runtime of its own (two worker threads): a read spawns its GETs there and waits for them
//! on a channel, with a timeout. It never enters the caller's runtime (`block_on` inside a
//! tokio worker panics or deadlocks), so it works from any thread; but it **blocks the
//! calling thread**, which async callers must not be (see `Log::read_range_with_tenant_async`).
//!
//! A read's ranges are mapped to blocks (`block_bytes`, default 64 KiB); cached blocks are
//! taken from the cache, the missing ones are coalesced into runs of adjacent blocks (at
//! most `MAX_RUN_BLOCKS` per GET) and all runs are fetched in parallel. A GET must return
//! exactly the range asked (its length is checked before its body is read); the engine
//! checks every record read from the bytes (checksum, LSN), and tells the source to forget
//! an object whose bytes failed.

use super::cache::{BlockCache, BlockKey};
use crate::error::{Error, Result};
use bytes::{Bytes, BytesMut};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use seglog::{OffloadedSegment, SegmentSource, SourceError};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most adjacent blocks fetched by one GET.
const MAX_RUN_BLOCKS: u64 = 16;

/// Counters of a [`BucketSource`] since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadThroughStats {
    /// Ranged GETs sent to the bucket.
    pub range_gets: u64,
    /// Bytes those GETs returned.
    pub bytes_fetched: u64,
    /// Blocks found in the cache.
    pub cache_hits: u64,
    /// Blocks that had to be fetched.
    pub cache_misses: u64,
    /// Bytes held by the cache now.
    pub cached_bytes: u64,
}

#[derive(Default)]
struct Counters {
    range_gets: AtomicU64,
    bytes_fetched: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

/// Reads offloaded segments from the bucket (ranged GETs), caching fixed-size blocks.
pub struct BucketSource {
    store: Arc<dyn ObjectStore>,
    runtime: Option<tokio::runtime::Runtime>,
    cache: parking_lot::Mutex<BlockCache>,
    block_bytes: u64,
    fetch_timeout: Duration,
    counters: Counters,
}

impl std::fmt::Debug for BucketSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketSource")
            .field("block_bytes", &self.block_bytes)
            .finish_non_exhaustive()
    }
}

impl Drop for BucketSource {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which is refused inside another runtime:
        // let them go in the background instead.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl BucketSource {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        cache_bytes: u64,
        block_bytes: u64,
        fetch_timeout: Duration,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("seglog-read-through")
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                op: "start the read-through runtime",
                path: std::path::PathBuf::new(),
                source: e,
            })?;
        Ok(BucketSource {
            store,
            runtime: Some(runtime),
            cache: parking_lot::Mutex::new(BlockCache::new(cache_bytes)),
            block_bytes: block_bytes.max(1),
            fetch_timeout,
            counters: Counters::default(),
        })
    }

    pub(crate) fn stats(&self) -> ReadThroughStats {
        let c = &self.counters;
        ReadThroughStats {
            range_gets: c.range_gets.load(Ordering::Relaxed),
            bytes_fetched: c.bytes_fetched.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cache_misses: c.cache_misses.load(Ordering::Relaxed),
            cached_bytes: self.cache.lock().held_bytes(),
        }
    }

    /// Fetches `runs` (byte ranges of `key`) in parallel on the source's runtime and waits.
    fn fetch_runs(&self, key: &Path, runs: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Task("runtime gone".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, run) in runs.iter().enumerate() {
            let (store, key, run, tx) = (self.store.clone(), key.clone(), run.clone(), tx.clone());
            runtime.spawn(async move {
                let _ = tx.send((i, get_exact(store.as_ref(), &key, run).await));
            });
        }
        drop(tx);
        self.counters
            .range_gets
            .fetch_add(runs.len() as u64, Ordering::Relaxed);
        let deadline = std::time::Instant::now() + self.fetch_timeout;
        let mut out: Vec<Option<Bytes>> = vec![None; runs.len()];
        for _ in 0..runs.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (i, got) = rx.recv_timeout(left).map_err(|_| {
                Error::Task(format!(
                    "ranged GETs of {key} did not finish within {:?}",
                    self.fetch_timeout
                ))
            })?;
            let bytes = got?;
            self.counters
                .bytes_fetched
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(bytes);
            }
        }
        out.into_iter()
            .map(|b| b.ok_or_else(|| Error::Task(format!("a ranged GET of {key} went missing"))))
            .collect()
    }

    fn read(&self, segment: &OffloadedSegment, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let key = Path::from(segment.location.as_str());
        let object: Arc<str> = Arc::from(segment.location.as_str());
        let end = segment.data_end;
        let bs = self.block_bytes;
        for r in ranges {
            if r.start >= r.end || r.end > end {
                return Err(Error::corruption(
                    &key,
                    format!("range {r:?} outside the segment's {end} bytes"),
                ));
            }
        }
        // The blocks the ranges need, from the cache or the bucket.
        let mut needed: Vec<u64> = ranges
            .iter()
            .flat_map(|r| r.start / bs..=(r.end - 1) / bs)
            .collect();
        needed.sort_unstable();
        needed.dedup();
        let mut blocks: std::collections::HashMap<u64, Bytes> = Default::default();
        let mut missing = Vec::new();
        {
            let mut cache = self.cache.lock();
            for &b in &needed {
                match cache.get(&(object.clone(), b)) {
                    Some(bytes) => {
                        blocks.insert(b, bytes);
                    }
                    None => missing.push(b),
                }
            }
        }
        self.counters
            .cache_hits
            .fetch_add(blocks.len() as u64, Ordering::Relaxed);
        self.counters
            .cache_misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        // Adjacent missing blocks go in one GET (up to MAX_RUN_BLOCKS).
        let mut runs: Vec<(u64, u64)> = Vec::new(); // (first block, count)
        for &b in &missing {
            match runs.last_mut() {
                Some((first, count)) if *first + *count == b && *count < MAX_RUN_BLOCKS => {
                    *count += 1
                }
                _ => runs.push((b, 1)),
            }
        }
        let byte_runs: Vec<Range<u64>> = runs
            .iter()
            .map(|&(first, count)| first * bs..((first + count) * bs).min(end))
            .collect();
        if !byte_runs.is_empty() {
            let fetched = self.fetch_runs(&key, &byte_runs)?;
            let mut cache = self.cache.lock();
            for (&(first, count), bytes) in runs.iter().zip(fetched) {
                for i in 0..count {
                    let from = (i * bs) as usize;
                    let to = (((i + 1) * bs) as usize).min(bytes.len());
                    let block = bytes.slice(from..to);
                    let key: BlockKey = (object.clone(), first + i);
                    cache.insert(key, block.clone());
                    blocks.insert(first + i, block);
                }
            }
        }
        ranges
            .iter()
            .map(|r| {
                assemble(&blocks, bs, r)
                    .ok_or_else(|| Error::corruption(&key, "a block is missing"))
            })
            .collect()
    }
}

/// The bytes of `range` from `blocks` (a slice of one block when it fits in one).
fn assemble(
    blocks: &std::collections::HashMap<u64, Bytes>,
    bs: u64,
    r: &Range<u64>,
) -> Option<Bytes> {
    let (first, last) = (r.start / bs, (r.end - 1) / bs);
    if first == last {
        let b = blocks.get(&first)?;
        return b
            .get((r.start - first * bs) as usize..(r.end - first * bs) as usize)
            .map(|_| b.slice((r.start - first * bs) as usize..(r.end - first * bs) as usize));
    }
    let mut out = BytesMut::with_capacity((r.end - r.start) as usize);
    for i in first..=last {
        let b = blocks.get(&i)?;
        let from = r.start.max(i * bs) - i * bs;
        let to = r.end.min((i + 1) * bs) - i * bs;
        out.extend_from_slice(b.get(from as usize..to as usize)?);
    }
    Some(out.freeze())
}

/// GETs exactly `range` of `key`: a response for another range, or of another length, is
/// refused (before its body is read, when the store says which range it sends).
async fn get_exact(store: &dyn ObjectStore, key: &Path, range: Range<u64>) -> Result<Bytes> {
    let opts = GetOptions {
        range: Some(GetRange::Bounded(range.clone())),
        ..GetOptions::default()
    };
    let result = store
        .get_opts(key, opts)
        .await
        .map_err(|e| Error::store("get", key, e))?;
    if result.range != range {
        return Err(Error::corruption(
            key,
            format!(
                "asked for bytes {range:?}, the store sent {:?}",
                result.range
            ),
        ));
    }
    let bytes = crate::objects::read_body(result, key, range.end - range.start).await?;
    if bytes.len() as u64 != range.end - range.start {
        return Err(Error::corruption(
            key,
            format!("asked for bytes {range:?}, got {} bytes", bytes.len()),
        ));
    }
    Ok(bytes)
}

impl SegmentSource for BucketSource {
    fn read_ranges(
        &self,
        segment: &OffloadedSegment,
        ranges: &[Range<u64>],
    ) -> std::result::Result<Vec<Bytes>, SourceError> {
        self.read(segment, ranges)
            .map_err(|e| Box::new(e) as SourceError)
    }

    fn forget(&self, segment: &OffloadedSegment) {
        self.cache.lock().forget_object(&segment.location);
    }
}
