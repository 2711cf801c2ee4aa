//! Review 103: retention by size (`Retention::max_log_bytes`, `policy::keep_log_under`) on a
//! log whose oldest executions live in offloaded segments (read-through).
//!
//! `keep_log_under` sums the *local* segments' bytes (`Log::segments`, the only ones in the
//! view) but divides by the durable events of *every* execution, offloaded ones included,
//! and spends its excess budget oldest first — on exactly the executions automatic
//! retention then refuses to drop (records in offloaded segments: skipped at step 1). Every
//! pass plans the same skipped executions, drops nothing, and the log stays over its limit
//! for good while local-only executions it could drop are never chosen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::offload::*;
use common::sizes::local_bytes;
use seglog::io::sim::SimFs;
use seglog::{Log, Retention};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fill(log: &Log<SimFs>, prefix: &str) {
    let payload = vec![b'x'; 150];
    for i in 0..10 {
        for _ in 0..20 {
            log.append_blocking(&format!("{prefix}-{i}"), "t0", &payload)
                .unwrap();
        }
    }
}

#[test]
fn size_retention_with_offloaded_oldest_executions_never_drops_anything() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    log.set_segment_source(source.clone());
    // Old executions, shipped and offloaded (read-through keeps the disk small).
    fill(&log, "old");
    log.roll_blocking().unwrap();
    let old_segments: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    // Newer executions, local only.
    fill(&log, "new");
    for s in &old_segments {
        let bytes = fs.read_file(&s.path).unwrap();
        source
            .objects
            .lock()
            .unwrap()
            .insert(location(s.number), Bytes::from(bytes));
        log.offload_segment(s.number, &target(&source, s.number))
            .unwrap();
    }
    assert!(old_segments.len() >= 3, "{}", old_segments.len());
    let local = local_bytes(&log);
    log.close().unwrap();

    // About a quarter of the local bytes over the limit: a few local executions' worth.
    let limit = local - local / 4;
    let retention = Retention::default()
        .max_log_bytes(limit)
        .interval(Duration::from_millis(30));
    let log = Log::open_with_fs(fs.clone(), "/log", opts().retention(retention)).unwrap();
    log.set_segment_source(source.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.stats().retention.passes < 8 {
        assert!(Instant::now() < deadline, "{:?}", log.stats().retention);
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = log.stats().retention;
    let new_kept = (0..10)
        .filter(|i| log.exists(&format!("new-{i}")).unwrap())
        .count();
    let old_kept = (0..10)
        .filter(|i| log.exists(&format!("old-{i}")).unwrap())
        .count();
    let now = local_bytes(&log);
    // What every pass plans: only offloaded executions, which retention then skips.
    let plan =
        seglog::compaction::policy::keep_log_under(&log.compaction_view(false).unwrap(), limit);
    assert!(
        now <= limit,
        "after {} retention passes the local log holds {now} bytes, limit {limit} (it held \
         {local}): dropped {} executions, kept {new_kept}/10 local-only and {old_kept}/10 \
         offloaded ones; {stats:?}; the pass's plan: {:?}",
        stats.passes,
        stats.executions_dropped,
        plan.drop_executions
    );
    log.close().unwrap();
}
