// The EventStore conformance cases, shared by the test binaries that run them against a
// store (`include!`d: each defines `type Store`, `async fn open(dir: &Path) -> Store` and
// `const REQUIRES_NETWORK: bool`, what the store's `StorageBackend` must report):
// `eventstore_conformance.rs` (a local log), `eventstore_conformance_tiered.rs` (a log that
// ships every sealed segment and keeps none locally: every read of a sealed segment goes to
// the bucket, in memory and on moto's S3 server), `eventstore_conformance_bucket.rs` (a store
// opened with `SeglogEventStore::open_from_bucket` in `Durability::Remote`).

use enact_core::kernel::persistence::{
    EventStore, ExecutionEventData, StorageBackend, StoredEvent,
};
use enact_core::kernel::{
    ExecutionError, ExecutionErrorCategory, ExecutionId, ParentLink, ParentType, StepId,
    StepSourceType, StepType, TenantId,
};
use seglog_eventstore::SeglogEventStore;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn exec(s: &str) -> ExecutionId {
    ExecutionId::from_string(s)
}

fn tenant(s: &str) -> TenantId {
    TenantId::from_string(s)
}

/// One of every variant, with awkward payloads.
fn every_variant() -> Vec<ExecutionEventData> {
    let step = StepId::from_string("step_1");
    let error = ExecutionError::new(ExecutionErrorCategory::ToolError, "tool exploded ✗")
        .with_code("E42")
        .with_details(json!({"stack": ["a", "b"], "retry": null, "ratio": 0.25}));
    let nested = json!({
        "unicode": "héllo wörld — 日本語 🚀",
        "float": 1.5e-300, "neg": -0.0, "big": 1.7976931348623157e308, "int": -9_007_199_254_740_993i64,
        "null": null, "bool": true,
        "list": [1, "two", {"three": [3.0, null]}],
        "map": {"z": {"y": {"x": {"deep": "value"}}}, "a": []},
    });
    vec![
        ExecutionEventData::ExecutionStarted {
            parent: Some(ParentLink::new("msg_1", ParentType::UserMessage)),
            metadata: Some(nested.clone()),
        },
        ExecutionEventData::ExecutionStarted {
            parent: None,
            metadata: None,
        },
        ExecutionEventData::StepStarted {
            step_id: step.clone(),
            parent_step_id: Some(StepId::from_string("step_0")),
            step_type: StepType::LlmNode,
            name: "plan".into(),
        },
        ExecutionEventData::StepCompleted {
            step_id: step.clone(),
            output: Some("done".into()),
            duration_ms: 12,
        },
        ExecutionEventData::StepFailed {
            step_id: step.clone(),
            error: error.clone(),
        },
        ExecutionEventData::ExecutionPaused {
            reason: "waiting for approval".into(),
        },
        ExecutionEventData::ExecutionResumed,
        ExecutionEventData::ExecutionCompleted {
            output: None,
            duration_ms: u64::MAX,
        },
        ExecutionEventData::ExecutionFailed { error },
        ExecutionEventData::ExecutionCancelled {
            reason: "user".into(),
        },
        ExecutionEventData::ArtifactStored {
            artifact_id: "artifact_1".into(),
            step_id: step.clone(),
            content_hash: "sha256:abc".into(),
            size_bytes: 1 << 40,
        },
        ExecutionEventData::StepDiscovered {
            step_id: StepId::from_string("step_2"),
            discovered_by: Some(step.clone()),
            source_type: StepSourceType::LlmOutput,
            reason: "found more work".into(),
            depth: 3,
        },
        ExecutionEventData::ToolCallStarted {
            step_id: Some(step.clone()),
            tool_call_id: "call_1".into(),
            tool_name: "search".into(),
            input: nested.clone(),
        },
        ExecutionEventData::ToolCallCompleted {
            step_id: None,
            tool_call_id: "call_1".into(),
            output: json!(["r1", "r2"]),
        },
        ExecutionEventData::CheckpointSaved {
            step_id: None,
            checkpoint_id: "ckpt_1".into(),
            state_hash: "h".into(),
        },
        ExecutionEventData::GoalEvaluated {
            step_id: Some(step),
            goal_id: "goal_1".into(),
            status: "progressing".into(),
            score: Some(0.1 + 0.2),
            reason: None,
        },
        ExecutionEventData::Custom {
            event_type: "big".into(),
            data: json!({"blob": "x".repeat(3 << 20)}),
        },
        ExecutionEventData::Custom {
            event_type: "empty".into(),
            data: json!({}),
        },
    ]
}

fn as_json(e: &ExecutionEventData) -> serde_json::Value {
    serde_json::to_value(e).unwrap()
}

fn summary(events: &[StoredEvent]) -> Vec<(u64, String, String, serde_json::Value, i64)> {
    events
        .iter()
        .map(|e| {
            (
                e.sequence,
                e.execution_id.as_str().to_string(),
                e.tenant_id.as_str().to_string(),
                as_json(&e.event),
                e.timestamp.timestamp_nanos_opt().unwrap(),
            )
        })
        .collect()
}

/// Runs `check` on a fresh store after `write`, then again after shutdown and reopen.
async fn fresh_and_reopened<W, C>(write: W, check: C)
where
    W: AsyncFnOnce(&Store),
    C: AsyncFn(&Store),
{
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write(&store).await;
    check(&store).await;
    store.shutdown().await.unwrap();
    let store = open(dir.path()).await;
    check(&store).await;
    store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variant_round_trips_with_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (e, t) = (exec("exec_all"), tenant("tenant_a"));
    let before = chrono::Utc::now();
    let variants = every_variant();
    let (singles, batch) = variants.split_at(9);
    for v in singles {
        store.append(&e, &t, v.clone()).await.unwrap();
    }
    assert_eq!(
        store.append_batch(&e, &t, batch.to_vec()).await.unwrap(),
        10
    );
    let after = chrono::Utc::now();
    let loaded = store.load_events(&e).await.unwrap();
    assert_eq!(loaded.len(), variants.len());
    for (i, (got, want)) in loaded.iter().zip(&variants).enumerate() {
        assert_eq!(got.sequence, i as u64 + 1);
        assert_eq!(got.execution_id, e);
        assert_eq!(got.tenant_id, t);
        assert_eq!(as_json(&got.event), as_json(want), "variant {i}");
        assert!(
            got.timestamp >= before && got.timestamp <= after,
            "timestamp taken at append"
        );
    }
    assert!(loaded.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    let fresh = summary(&loaded);
    store.shutdown().await.unwrap();
    let store = open(dir.path()).await;
    assert_eq!(
        summary(&store.load_events(&e).await.unwrap()),
        fresh,
        "identical after reopen, timestamps too"
    );
}

#[tokio::test]
async fn sequences_are_dense_from_one_and_counts_agree_with_the_default() {
    fresh_and_reopened(
        async |s| {
            let (e, t) = (exec("e"), tenant("t"));
            for i in 0..10u64 {
                assert_eq!(
                    s.append(
                        &e,
                        &t,
                        ExecutionEventData::ExecutionPaused {
                            reason: i.to_string()
                        }
                    )
                    .await
                    .unwrap(),
                    i + 1
                );
            }
            let batch = vec![ExecutionEventData::ExecutionResumed; 5];
            assert_eq!(s.append_batch(&e, &t, batch).await.unwrap(), 11);
        },
        async |s| {
            let e = exec("e");
            assert_eq!(s.get_latest_sequence(&e).await.unwrap(), Some(15));
            // The trait's default count is latest sequence; our override must agree.
            assert_eq!(s.count_events(&e).await.unwrap(), 15);
            assert!(s.execution_exists(&e).await.unwrap());
            let seqs: Vec<u64> = s
                .load_events(&e)
                .await
                .unwrap()
                .iter()
                .map(|x| x.sequence)
                .collect();
            assert_eq!(seqs, (1..=15).collect::<Vec<_>>());
            let after: Vec<u64> = s
                .load_events_after(&e, 12)
                .await
                .unwrap()
                .iter()
                .map(|x| x.sequence)
                .collect();
            assert_eq!(after, vec![13, 14, 15], "strictly after");
            assert!(s.load_events_after(&e, 15).await.unwrap().is_empty());
            assert_eq!(s.load_events_after(&e, 0).await.unwrap().len(), 15);
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_execution_gives_empty_results_not_errors() {
    fresh_and_reopened(
        async |_| {},
        async |s| {
            let e = exec("nobody");
            assert!(s.load_events(&e).await.unwrap().is_empty());
            assert!(s.load_events_after(&e, 3).await.unwrap().is_empty());
            assert_eq!(s.get_latest_sequence(&e).await.unwrap(), None);
            assert!(!s.execution_exists(&e).await.unwrap());
            assert_eq!(s.count_events(&e).await.unwrap(), 0);
            assert!(s
                .list_executions(&tenant("nobody"), 10, 0)
                .await
                .unwrap()
                .is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn empty_batch_is_a_clear_error_and_creates_nothing() {
    fresh_and_reopened(
        async |s| {
            let err = s
                .append_batch(&exec("e"), &tenant("t"), vec![])
                .await
                .unwrap_err();
            assert!(err.to_string().contains("at least one event"), "{err}");
        },
        async |s| {
            assert!(!s.execution_exists(&exec("e")).await.unwrap());
            assert!(s
                .list_executions(&tenant("t"), 10, 0)
                .await
                .unwrap()
                .is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn list_executions_is_newest_first_paginated_and_per_tenant() {
    fresh_and_reopened(
        async |s| {
            for i in 0..7 {
                s.append(
                    &exec(&format!("a{i}")),
                    &tenant("ta"),
                    ExecutionEventData::ExecutionResumed,
                )
                .await
                .unwrap();
                s.append(
                    &exec(&format!("b{i}")),
                    &tenant("tb"),
                    ExecutionEventData::ExecutionResumed,
                )
                .await
                .unwrap();
            }
            // More events in an old execution do not make it newer.
            s.append(
                &exec("a0"),
                &tenant("ta"),
                ExecutionEventData::ExecutionResumed,
            )
            .await
            .unwrap();
        },
        async |s| {
            let ids =
                |v: Vec<ExecutionId>| v.iter().map(|e| e.as_str().to_string()).collect::<Vec<_>>();
            let all: Vec<String> = (0..7).rev().map(|i| format!("a{i}")).collect();
            assert_eq!(
                ids(s.list_executions(&tenant("ta"), 100, 0).await.unwrap()),
                all
            );
            assert_eq!(
                ids(s.list_executions(&tenant("ta"), 3, 2).await.unwrap()),
                all[2..5].to_vec()
            );
            assert!(s
                .list_executions(&tenant("ta"), 0, 0)
                .await
                .unwrap()
                .is_empty());
            assert!(s
                .list_executions(&tenant("ta"), 5, 7)
                .await
                .unwrap()
                .is_empty());
            assert_eq!(
                ids(s
                    .list_executions(&tenant("ta"), usize::MAX, 6)
                    .await
                    .unwrap()),
                vec!["a0"]
            );
            let b = ids(s.list_executions(&tenant("tb"), 100, 0).await.unwrap());
            assert_eq!(b.len(), 7);
            assert!(
                b.iter().all(|x| x.starts_with('b')),
                "another tenant's executions leaked: {b:?}"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn an_execution_is_bound_to_its_first_tenant() {
    fresh_and_reopened(
        async |s| {
            s.append(
                &exec("e"),
                &tenant("owner-tenant"),
                ExecutionEventData::ExecutionResumed,
            )
            .await
            .unwrap();
            for attempt in [
                s.append(
                    &exec("e"),
                    &tenant("intruder-tenant"),
                    ExecutionEventData::ExecutionResumed,
                )
                .await,
                s.append_batch(
                    &exec("e"),
                    &tenant("intruder-tenant"),
                    vec![ExecutionEventData::ExecutionResumed],
                )
                .await,
            ] {
                let msg = format!("{:#}", attempt.unwrap_err());
                assert!(
                    !msg.contains("owner-tenant") && !msg.contains("intruder-tenant"),
                    "error names a tenant: {msg}"
                );
                assert!(msg.contains("another tenant"), "{msg}");
            }
        },
        async |s| {
            assert_eq!(s.count_events(&exec("e")).await.unwrap(), 1);
            let events = s.load_events(&exec("e")).await.unwrap();
            assert_eq!(events[0].tenant_id, tenant("owner-tenant"));
            assert!(s
                .list_executions(&tenant("intruder-tenant"), 10, 0)
                .await
                .unwrap()
                .is_empty());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_get_unique_dense_sequences_and_contiguous_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(open(dir.path()).await);
    let mut tasks = Vec::new();
    for task in 0..32u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..12u64 {
                let e = exec(&format!("shared-{}", (task + k) % 6));
                let ev = |part: u64| ExecutionEventData::Custom {
                    event_type: "step".into(),
                    data: json!({"task": task, "k": k, "part": part}),
                };
                if k % 3 == 0 {
                    store
                        .append_batch(&e, &tenant("t"), vec![ev(0), ev(1), ev(2)])
                        .await
                        .unwrap();
                } else {
                    store.append(&e, &tenant("t"), ev(0)).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for i in 0..6 {
        let events = store
            .load_events(&exec(&format!("shared-{i}")))
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(n, e)| e.sequence == n as u64 + 1),
            "holes or duplicates"
        );
        for (n, e) in events.iter().enumerate() {
            let ExecutionEventData::Custom { data, .. } = &e.event else {
                panic!("wrong variant")
            };
            if data["part"] == 0 && data["k"].as_u64().unwrap() % 3 == 0 {
                // A batch: its three parts are consecutive.
                for part in 1..3usize {
                    let ExecutionEventData::Custom { data: next, .. } = &events[n + part].event
                    else {
                        panic!()
                    };
                    assert_eq!(
                        (&next["task"], &next["k"], next["part"].as_u64()),
                        (&data["task"], &data["k"], Some(part as u64))
                    );
                }
            }
        }
        total += events.len();
    }
    assert_eq!(total, 32 * (8 + 4 * 3));
}

#[tokio::test]
async fn storage_backend_reports_itself_and_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    assert_eq!(store.name(), "seglog");
    assert_eq!(store.requires_network(), REQUIRES_NETWORK);
    assert_eq!(store.supports_air_gapped(), !REQUIRES_NETWORK);
    store.health_check().await.unwrap();
    store
        .append(
            &exec("e"),
            &tenant("t"),
            ExecutionEventData::ExecutionResumed,
        )
        .await
        .unwrap();
    store.shutdown().await.unwrap();
    assert!(store.health_check().await.is_err());
    // Later calls fail cleanly.
    assert!(store
        .append(
            &exec("e"),
            &tenant("t"),
            ExecutionEventData::ExecutionResumed
        )
        .await
        .is_err());
    assert!(store.load_events(&exec("e")).await.is_err());
    assert!(store.list_executions(&tenant("t"), 1, 0).await.is_err());
    store.shutdown().await.unwrap();
    // Everything appended before shutdown is there.
    let store = open(dir.path()).await;
    assert_eq!(store.count_events(&exec("e")).await.unwrap(), 1);
}

#[tokio::test]
async fn health_check_fails_when_the_log_is_poisoned() {
    use seglog::io::sim::{Fault, FaultKind, Op, SimFs};
    let fs = SimFs::new();
    let log = seglog::Log::open_with_fs(
        fs.clone(),
        "/log",
        seglog::Options::default().segment_size_bytes(1 << 20),
    )
    .unwrap();
    let store = SeglogEventStore::from_log(log);
    store
        .append(
            &exec("e"),
            &tenant("t"),
            ExecutionEventData::ExecutionResumed,
        )
        .await
        .unwrap();
    store.health_check().await.unwrap();
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: 1,
        kind: FaultKind::Eio,
        persistent: true,
    });
    let err = store
        .append(
            &exec("e"),
            &tenant("t"),
            ExecutionEventData::ExecutionResumed,
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("poisoned"), "{err:#}");
    assert!(store.health_check().await.is_err());
    // Reads of durable data still work; the failed event is not visible.
    assert_eq!(store.count_events(&exec("e")).await.unwrap(), 1);
}

#[tokio::test]
async fn undecodable_payloads_are_clear_errors_naming_execution_and_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .append(
            &exec("e"),
            &tenant("t"),
            ExecutionEventData::ExecutionResumed,
        )
        .await
        .unwrap();
    // Bytes that are not MessagePack of an event, under the MessagePack tag.
    store
        .log()
        .append_encoded(
            "e",
            "t",
            None,
            seglog_eventstore::codec::ENCODING_MSGPACK_NAMED,
            &[b"\xc1garbage"],
        )
        .await
        .unwrap();
    let msg = format!("{:#}", store.load_events(&exec("e")).await.unwrap_err());
    assert!(msg.contains("event 2") && msg.contains("\"e\""), "{msg}");
    // An encoding from a newer version.
    store
        .log()
        .append_encoded("f", "t", None, 9, &[b"future"])
        .await
        .unwrap();
    let msg = format!(
        "{:#}",
        store.load_events_after(&exec("f"), 0).await.unwrap_err()
    );
    assert!(
        msg.contains("encoding 9") && msg.contains("event 1") && msg.contains("\"f\""),
        "{msg}"
    );
    // The readable prefix is still readable.
    assert_eq!(
        store.get_latest_sequence(&exec("e")).await.unwrap(),
        Some(2)
    );
}
