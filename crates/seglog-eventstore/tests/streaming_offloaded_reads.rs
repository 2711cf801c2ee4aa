//! The streaming store's reads on a log with offloaded segments (read through a
//! `SegmentSource`: a bucket, whose reads block the calling thread). An async read must not
//! block the runtime's thread meanwhile: on a single-threaded runtime, nothing else could
//! run until the bucket answered. (`get_after` does not read offloaded segments: global
//! reads refuse them, docs/scale-out.md.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use enact_core::kernel::{ExecutionContext, ExecutionEvent, ExecutionEventType};
use enact_core::kernel::{ExecutionId, TenantId};
use enact_core::streaming::EventStore;
use seglog::{
    CheckpointMode, Log, OffloadTarget, OffloadedSegment, Options, SegmentSource, SourceError,
};
use seglog_eventstore::SeglogStreamStore;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the bucket takes to answer each read.
const BUCKET_LATENCY: Duration = Duration::from_millis(300);
const EVENTS: u64 = 60;

/// A bucket in memory that answers slowly.
#[derive(Debug, Default)]
struct SlowBucket {
    objects: Mutex<HashMap<String, Bytes>>,
}

impl SegmentSource for SlowBucket {
    fn read_ranges(
        &self,
        segment: &OffloadedSegment,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, SourceError> {
        std::thread::sleep(BUCKET_LATENCY);
        let objects = self.objects.lock().unwrap();
        let bytes = objects
            .get(&segment.location)
            .ok_or_else(|| format!("no object {}", segment.location))?;
        Ok(ranges
            .iter()
            .map(|r| bytes.slice(r.start as usize..r.end as usize))
            .collect())
    }
}

fn event(n: u64) -> ExecutionEvent {
    let mut c = ExecutionContext::new(ExecutionId::from_string("run"));
    c.tenant_id = Some(TenantId::from_string("acme"));
    ExecutionEvent::new(ExecutionEventType::StepStart, c)
        .with_payload(serde_json::json!({"n": n, "text": "x".repeat(100)}))
}

/// A store whose execution "run" has most of its events in offloaded segments.
async fn store_with_offloaded_events(dir: &std::path::Path) -> SeglogStreamStore {
    let options = Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open(dir, options).await.unwrap();
    let store = SeglogStreamStore::from_log(log.clone());
    for n in 0..EVENTS {
        store.append(event(n)).await.unwrap();
    }
    let bucket = Arc::new(SlowBucket::default());
    let active = log.segments().last().unwrap().number;
    let sealed: Vec<_> = log
        .segments()
        .into_iter()
        .filter(|s| s.sealed && s.number < active)
        .collect();
    assert!(sealed.len() >= 2, "{sealed:?}");
    log.set_segment_source(bucket.clone());
    for s in sealed {
        let bytes = Bytes::from(std::fs::read(&s.path).unwrap());
        let target = OffloadTarget {
            location: format!("bucket/{}", s.number),
            len: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        bucket
            .objects
            .lock()
            .unwrap()
            .insert(target.location.clone(), bytes);
        log.offload_segment(s.number, &target).unwrap();
    }
    store
}

/// Ticks every 10 ms on the same runtime while `read` runs; returns the read's result and
/// how many ticks happened meanwhile.
async fn ticks_during<T>(read: impl std::future::Future<Output = T>) -> (T, u64) {
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // Let the ticker start.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let before = ticks.load(Ordering::Relaxed);
    let out = read.await;
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    (out, during)
}

#[tokio::test(flavor = "current_thread")]
async fn get_by_execution_over_offloaded_segments_leaves_the_runtime_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_offloaded_events(dir.path()).await;
    let (events, ticks) =
        ticks_during(store.get_by_execution(&ExecutionId::from_string("run"))).await;
    assert_eq!(events.unwrap().len() as u64, EVENTS);
    // The bucket took at least 300 ms: a runtime left running ticked ~30 times meanwhile.
    assert!(ticks >= 10, "the runtime ran {ticks} ticks during the read");
    store.close().unwrap();
}
