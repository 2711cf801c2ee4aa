//! Review 108: attacks on the streaming store (`SeglogStreamStore`) that it withstood, kept as
//! regression tests: positions never reused after erasures and reopens, `get_after` windows
//! after compactions, pollers racing appends, rolls and compactions, odd ids and timestamps,
//! use after close. (The CLI finding of this review is in seglog-cli's `pipe.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::{
    ExecutionContext, ExecutionEvent, ExecutionEventType, ExecutionId, TenantId,
};
use enact_core::streaming::{EventLogEntry, EventStore, InMemoryEventStore};
use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Options};
use seglog_eventstore::SeglogStreamStore;
use std::collections::BTreeMap;

fn event(exec: &str, tenant: Option<&str>, n: u64) -> ExecutionEvent {
    let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
    c.tenant_id = tenant.map(TenantId::from_string);
    ExecutionEvent::new(ExecutionEventType::StepStart, c)
        .with_payload(serde_json::json!({ "n": n, "pad": "x".repeat(200) }))
}

fn n_of(e: &EventLogEntry) -> u64 {
    e.event.payload.as_ref().unwrap()["n"].as_u64().unwrap()
}

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(8 * 1024)
        .checkpoints(CheckpointMode::Inline)
}

fn compact(store: &SeglogStreamStore, plan: &seglog::compaction::Plan) {
    store
        .log()
        .compact_blocking(plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
}

/// A reader saw the newest event at position L; that execution is then erased (its tenant
/// dropped). Positions are "never reused", so every later append — also after a reopen —
/// must be numbered above L, or a poller whose cursor is L never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_the_newest_events_never_lets_a_position_be_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen_max = 0;
    {
        let store = SeglogStreamStore::open_with(dir.path(), opts())
            .await
            .unwrap();
        for i in 0..5 {
            store.append(event("keep", Some("a"), i)).await.unwrap();
        }
        for i in 0..5 {
            let e = store
                .append(event("gone", Some("b"), 100 + i))
                .await
                .unwrap();
            seen_max = seen_max.max(e.sequence);
        }
        assert_eq!(store.latest_sequence().await.unwrap(), seen_max);
        let view = store.log().compaction_view(false).unwrap();
        compact(&store, &policy::drop_tenant(&view, "b"));
        let latest = store.latest_sequence().await.unwrap();
        let e = store.append(event("keep", Some("a"), 5)).await.unwrap();
        assert!(
            e.sequence > seen_max,
            "after erasure: new event at {} <= {seen_max} already seen (latest_sequence {latest})",
            e.sequence
        );
        // erase again the newest, then reopen
        let e2 = store.append(event("gone2", Some("c"), 200)).await.unwrap();
        seen_max = seen_max.max(e2.sequence);
        let view = store.log().compaction_view(false).unwrap();
        compact(&store, &policy::drop_tenant(&view, "c"));
        store.close().unwrap();
    }
    {
        let store = SeglogStreamStore::open_with(dir.path(), opts())
            .await
            .unwrap();
        let e = store.append(event("keep", Some("a"), 6)).await.unwrap();
        assert!(
            e.sequence > seen_max,
            "after reopen: new event at {} <= {seen_max} already seen",
            e.sequence
        );
        let after = store.get_after(seen_max, 10).await.unwrap();
        assert_eq!(
            after.len(),
            1,
            "a poller at {seen_max} must see the new event"
        );
        store.close().unwrap();
    }
}

/// Every `get_after(after, limit)` window, for every `after` from 0 past the end and limits
/// around the boundaries, after merges, clustering and drops: must be the slice of the full
/// global list that starts after `after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_after_windows_after_compactions_are_slices_of_the_global_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open_with(dir.path(), opts())
        .await
        .unwrap();
    let mut expected: Vec<(String, u64)> = Vec::new();
    let mut n = 0;
    for round in 0..6 {
        for k in 0..30u64 {
            let exec = format!("e{}", (k * 7 + round) % 9);
            let tenant = format!("t{}", ((k * 7 + round) % 9) % 3);
            store.append(event(&exec, Some(&tenant), n)).await.unwrap();
            expected.push((exec, n));
            n += 1;
        }
        store.log().roll().await.unwrap();
        let view = store.log().compaction_view(false).unwrap();
        match round {
            1 => compact(&store, &policy::cluster_sealed_segments(&view)),
            2 => {
                compact(&store, &policy::drop_executions(&view, ["e4"]));
                expected.retain(|(e, _)| e != "e4");
            }
            3 => compact(
                &store,
                &policy::merge_small_segments(&view, 1 << 20, 1 << 20),
            ),
            4 => compact(&store, &policy::rewrite_all_sealed(&view)),
            _ => {}
        }
    }
    check_windows(&store, &expected, "live").await;
    store.close().unwrap();
    let store = SeglogStreamStore::open_with(dir.path(), opts())
        .await
        .unwrap();
    check_windows(&store, &expected, "reopened").await;
    store.close().unwrap();
}

async fn check_windows(store: &SeglogStreamStore, expected: &[(String, u64)], pass: &str) {
    let all = store.get_after(0, usize::MAX).await.unwrap();
    let got: Vec<u64> = all.iter().map(n_of).collect();
    let want: Vec<u64> = expected.iter().map(|(_, n)| *n).collect();
    assert_eq!(got, want, "{pass}: global list differs");
    assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let max = all.last().unwrap().sequence;
    assert_eq!(store.latest_sequence().await.unwrap(), max);
    let seqs: Vec<u64> = all.iter().map(|e| e.sequence).collect();
    for after in 0..=max + 2 {
        let start = seqs.partition_point(|&s| s <= after);
        for limit in [0usize, 1, 2, 3, 7, 31, 64, 1000] {
            let got: Vec<u64> = store
                .get_after(after, limit)
                .await
                .unwrap()
                .iter()
                .map(|e| e.sequence)
                .collect();
            let want: Vec<u64> = seqs[start..].iter().take(limit).copied().collect();
            assert_eq!(got, want, "{pass}: get_after({after}, {limit})");
        }
    }
    let mut by_exec: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (e, n) in expected {
        by_exec.entry(e.clone()).or_default().push(*n);
    }
    for (e, ns) in &by_exec {
        let got: Vec<u64> = store
            .get_by_execution(&ExecutionId::from_string(e.as_str()))
            .await
            .unwrap()
            .iter()
            .map(n_of)
            .collect();
        assert_eq!(&got, ns, "{pass}: get_by_execution({e})");
    }
    assert!(store.get_after(u64::MAX, 10).await.unwrap().is_empty());
    assert!(store.get_after(u64::MAX - 1, 10).await.unwrap().is_empty());
}

/// `get_by_execution` of ids the store would never hold: InMemoryEventStore answers with no
/// events.
#[tokio::test]
async fn get_by_execution_of_odd_ids_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    let reference = InMemoryEventStore::new();
    store.append(event("x", Some("a"), 0)).await.unwrap();
    reference.append(event("x", Some("a"), 0)).await.unwrap();
    let mut diffs = Vec::new();
    for id in [
        String::new(),
        "y".repeat(256),
        "y".repeat(10_000),
        "\0".into(),
    ] {
        let r = reference
            .get_by_execution(&ExecutionId::from_string(id.as_str()))
            .await
            .map(|v| v.len());
        let s = store
            .get_by_execution(&ExecutionId::from_string(id.as_str()))
            .await
            .map(|v| v.len());
        if r.as_ref().ok() != s.as_ref().ok() {
            diffs.push(format!(
                "id of {} bytes: reference {r:?}, seglog {s:?}",
                id.len()
            ));
        }
    }
    assert!(diffs.is_empty(), "{diffs:#?}");
}

/// Timestamps at chrono's extremes (and a leap second): an acknowledged event must read back,
/// or a single bad event sticks every `get_after` reader at its position.
#[tokio::test]
async fn extreme_timestamps_read_back() {
    use chrono::{DateTime, NaiveDate, Utc};
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
        .unwrap()
        .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
        .unwrap()
        .and_utc();
    let stamps: Vec<DateTime<Utc>> = vec![
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        DateTime::<Utc>::from_timestamp(-62_167_219_200 - 1, 0).unwrap(), // year -1
        DateTime::<Utc>::from_timestamp(253_402_300_800, 0).unwrap(),     // year 10000
        leap,
    ];
    let mut acked = Vec::new();
    for (i, ts) in stamps.iter().enumerate() {
        let mut e = event("ts", Some("a"), i as u64);
        e.timestamp = *ts;
        if store.append(e).await.is_ok() {
            acked.push(*ts);
        }
    }
    store.append(event("other", Some("b"), 99)).await.unwrap();
    let all = store.get_after(0, 100).await;
    let by = store
        .get_by_execution(&ExecutionId::from_string("ts"))
        .await;
    let all = all.unwrap_or_else(|e| panic!("get_after failed after {} acked: {e:#}", acked.len()));
    let by = by.unwrap();
    let got: Vec<_> = by.iter().map(|e| e.event.timestamp).collect();
    assert_eq!(got, acked);
    assert_eq!(all.len(), acked.len() + 1);
}

/// Many appenders racing a poller that pages with `get_after(cursor, small limit)` over a log
/// that rolls every few events: the poller must see every acknowledged event, in order,
/// none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poller_racing_appends_across_rolls_skips_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SeglogStreamStore::open_with(dir.path(), Options::default().segment_size_bytes(4 * 1024))
            .await
            .unwrap(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut seen: Vec<u64> = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                let page = store.get_after(cursor, 3).await.unwrap();
                if page.is_empty() {
                    if finished {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                for e in &page {
                    assert!(e.sequence > cursor);
                    cursor = e.sequence;
                    seen.push(e.sequence);
                }
            }
            seen
        })
    };
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..150u64 {
                let e = store
                    .append(event(&format!("x{t}"), Some("a"), i))
                    .await
                    .unwrap();
                acked.push(e.sequence);
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked.sort_unstable();
    done.store(true, Ordering::Release);
    let seen = poller.await.unwrap();
    let all: Vec<u64> = store
        .get_after(0, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(all, acked, "global list vs acknowledged");
    let missing: Vec<u64> = acked
        .iter()
        .filter(|s| !seen.contains(s))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "poller skipped {} events: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

/// A poller paging through `get_after` while compactions (merge, cluster, rewrite) run: it
/// must see every event that no compaction dropped, exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poller_racing_compactions_skips_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SeglogStreamStore::open_with(dir.path(), opts())
            .await
            .unwrap(),
    );
    for i in 0..600u64 {
        store
            .append(event(&format!("x{}", i % 13), Some("a"), i))
            .await
            .unwrap();
    }
    let all: Vec<u64> = store
        .get_after(0, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let compactor = {
        let store = store.clone();
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let mut round = 0;
            while !done.load(Ordering::Acquire) {
                let log = store.log();
                let view = log.compaction_view(false).unwrap();
                let plan = match round % 3 {
                    0 => policy::cluster_sealed_segments(&view),
                    1 => policy::merge_small_segments(&view, 1 << 20, 1 << 20),
                    _ => policy::rewrite_all_sealed(&view),
                };
                log.compact_blocking(
                    &plan,
                    CompactOptions::default().target_segment_bytes(8 * 1024),
                    &mut |_, _| {},
                )
                .unwrap();
                round += 1;
            }
            round
        })
    };
    for pass in 0..40 {
        let mut cursor = 0;
        let mut seen = Vec::new();
        loop {
            let page = store.get_after(cursor, 1 + pass % 5).await.unwrap();
            if page.is_empty() {
                break;
            }
            for e in page {
                assert!(e.sequence > cursor);
                cursor = e.sequence;
                seen.push(e.sequence);
            }
        }
        assert_eq!(seen, all, "pass {pass}");
    }
    done.store(true, Ordering::Release);
    let rounds = compactor.await.unwrap();
    assert!(rounds > 0);
}

/// Concurrent appends to one execution (some naming the tenant, some joining it): its
/// events by execution must come in the global order, with strictly increasing sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_execution_appended_concurrently_reads_in_global_order() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SeglogStreamStore::open_with(dir.path(), Options::default().segment_size_bytes(16 * 1024))
            .await
            .unwrap(),
    );
    store.append(event("one", Some("a"), 0)).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..60u64 {
                let tenant = if (t + i) % 2 == 0 { Some("a") } else { None };
                let e = store
                    .append(event("one", tenant, 1000 * t + i))
                    .await
                    .unwrap();
                acked.push((e.sequence, n_of(&e)));
            }
            acked
        }));
    }
    let mut acked = vec![];
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked.sort_unstable();
    let by: Vec<(u64, u64)> = store
        .get_by_execution(&ExecutionId::from_string("one"))
        .await
        .unwrap()
        .iter()
        .map(|e| (e.sequence, n_of(e)))
        .collect();
    let global: Vec<(u64, u64)> = store
        .get_after(0, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.sequence, n_of(e)))
        .collect();
    assert_eq!(by, global, "by execution vs global order");
    assert!(by.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(&by[1..], &acked[..]);
}

/// Ids at seglog's limits, and every operation after `close` (on the store and a clone):
/// errors, never a panic or a hang; nothing refused is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_at_the_limits_and_use_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    let long = "e".repeat(255);
    let tenant = "t".repeat(255);
    let ok = store.append(event(&long, Some(&tenant), 1)).await.unwrap();
    assert!(store
        .append(event(&"e".repeat(256), Some("t"), 2))
        .await
        .is_err());
    assert!(store
        .append(event("x", Some(&"t".repeat(256)), 3))
        .await
        .is_err());
    assert!(store.append(event("", Some("t"), 4)).await.is_err());
    assert!(store.append(event("x", Some(""), 5)).await.is_err());
    assert!(store
        .append(event("x", Some("~no-tenant"), 6))
        .await
        .is_err());
    let all = store.get_after(0, 100).await.unwrap();
    assert_eq!(all.len(), 1, "refused appends wrote something");
    assert_eq!(all[0].sequence, ok.sequence);
    assert_eq!(
        store
            .get_by_execution(&ExecutionId::from_string(long.as_str()))
            .await
            .unwrap()
            .len(),
        1
    );
    let clone = store.clone();
    store.close().unwrap();
    for s in [&store, &clone] {
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            (
                s.append(event("y", Some("t"), 7)).await.is_err(),
                s.get_after(0, 10).await.is_err(),
                s.get_by_execution(&ExecutionId::from_string("x"))
                    .await
                    .is_err(),
                s.latest_sequence().await.is_err(),
            )
        })
        .await
        .expect("an operation after close hung");
        assert!(r.0, "append after close succeeded");
        let _ = r;
    }
    let reopened = SeglogStreamStore::open(dir.path()).await.unwrap();
    assert_eq!(reopened.get_after(0, 100).await.unwrap().len(), 1);
}
