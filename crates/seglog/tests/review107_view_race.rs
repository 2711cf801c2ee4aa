//! Review 107: `Log::compaction_view` snapshots the segment table *before* it takes the
//! index's read lock (crates/seglog/src/compact.rs, `compaction_view`). A compaction that
//! finishes in between (its step 5 installs the new segments and relocates every record
//! under the index's write lock) leaves the view with the old segment numbers and the index
//! pointing at the new ones. Since 329936c `durable_bytes` counts nothing for a record in a
//! segment the view does not list, and `keep_log_under` skips every execution with a
//! record in such a segment as "offloaded": the oldest executions vanish from the view,
//! and retention by size drops the newest ones instead (the plan is valid: their
//! incarnations match), while the log's size in the view is the stale one.
//!
//! The window is step 5's hold of the index's write lock (relocating every record): a view
//! that snapshots the segments while it is held waits for the read lock and then pairs the
//! old segment table with the relocated index. On a 2-core machine it hits within ~14 views
//! (2 merges); should it never hit, the test passes without showing anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::sizes::{exact_bytes, local_bytes};
use seglog::compaction::{policy, IndexView, Plan};
use seglog::io::sim::SimFs;
use seglog::{CompactOptions, Log, Options};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Executions listed with a durable event but a record in a segment the view does not list
/// (this log offloads nothing).
fn unlisted(view: &IndexView) -> Vec<String> {
    let listed: HashSet<u64> = view.segments.iter().map(|s| s.number).collect();
    view.executions
        .iter()
        .filter(|e| e.durable_events > 0 && e.segments.iter().any(|s| !listed.contains(s)))
        .map(|e| e.id.clone())
        .collect()
}

/// Ten old executions of 10,000 small records each fill the sealed segments; ten newer
/// ones of 100 records each sit in the active segment. Another thread keeps merging the
/// sealed segments (`rewrite_all_sealed`: nothing dropped, every record relocated). Size
/// retention planned from `compaction_view`, with a limit half of `old-00` under the log's
/// size, must drop `old-00` and never a newer execution.
#[test]
fn size_retention_from_a_view_racing_a_compaction_drops_the_newest_executions() {
    let log = Log::open_with_fs(
        SimFs::new(),
        "/log",
        Options::default().segment_size_bytes(1 << 20),
    )
    .unwrap();
    let payload = vec![b'p'; 40];
    for i in 0..10 {
        for _ in 0..10_000 {
            log.append_batch_buffered(&format!("old-{i:02}"), "t", &[payload.as_slice()])
                .unwrap();
        }
    }
    log.sync_blocking().unwrap();
    log.roll_blocking().unwrap();
    for i in 0..10 {
        for _ in 0..100 {
            log.append_batch_buffered(&format!("new-{i:03}"), "t", &[payload.as_slice()])
                .unwrap();
        }
    }
    log.sync_blocking().unwrap();

    let one_old = exact_bytes(&log, &["old-00"]);
    let limit = local_bytes(&log) - one_old / 2;
    // A consistent view drops old-00 alone.
    let calm = policy::keep_log_under(&log.compaction_view(false).unwrap(), limit);
    assert_eq!(
        calm.drop_executions.iter().cloned().collect::<Vec<_>>(),
        vec!["old-00".to_string()]
    );

    let stop = Arc::new(AtomicBool::new(false));
    let merger = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut passes = 0u32;
            while !stop.load(Ordering::Acquire) && passes < 20 {
                let plan = policy::rewrite_all_sealed(&log.compaction_view(false).unwrap());
                log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
                    .unwrap();
                passes += 1;
            }
            passes
        })
    };
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut found: Option<(IndexView, Plan)> = None;
    let mut views = 0u64;
    while Instant::now() < deadline && !merger.is_finished() {
        let view = log.compaction_view(false).unwrap();
        views += 1;
        let plan = policy::keep_log_under(&view, limit);
        if plan.drop_executions.iter().any(|id| id.starts_with("new-")) {
            found = Some((view, plan));
            break;
        }
    }
    stop.store(true, Ordering::Release);
    let passes = merger.join().unwrap();
    let Some((view, plan)) = found else {
        log.close().unwrap();
        return; // the race never hit: nothing shown
    };
    // Carry the plan out: the newest executions are erased, the oldest all remain.
    let before = local_bytes(&log);
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let survivors: Vec<String> = (0..10)
        .map(|i| format!("old-{i:02}"))
        .chain((0..10).map(|i| format!("new-{i:03}")))
        .filter(|id| !log.read_range(id, 1, 1).unwrap().is_empty())
        .collect();
    let mut dropped: Vec<&String> = plan.drop_executions.iter().collect();
    dropped.sort();
    panic!(
        "after {views} views and {passes} merges: the view listed segments {:?} while {} \
         executions ({:?}) had records only in segments it did not list; keep_log_under({limit}) \
         on a log of {before} bytes (old-00 alone frees {one_old}) planned {dropped:?}; \
         carried out it erased {} executions ({} bytes) and left {survivors:?}",
        view.segments.iter().map(|s| s.number).collect::<Vec<_>>(),
        unlisted(&view).len(),
        unlisted(&view),
        report.executions_dropped,
        report.bytes_reclaimed,
    );
}
