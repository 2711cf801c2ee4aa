//! Enact's runtime event log (`enact_core::streaming::EventLog`, inside a `StorageContext`)
//! on seglog: four agent executions of two tenants run concurrently and log through it,
//! while a UI-style poller follows the whole log with `get_after`, as an SSE endpoint would.
//! Then the store is reopened: same global sequences, and a poller resumes mid-log.
//!
//! `cargo run -p seglog-eventstore --example enact_event_log [DIR]` (a temp dir by default).
//!
//! The lines a runtime changes to switch from the JSONL store:
//! ```text
//! - let event_store = Arc::new(JsonlEventStore::new(base_dir.join("events")).await?);
//! + let event_store = Arc::new(SeglogStreamStore::open(base_dir.join("events")).await?);
//! ```

use enact_core::kernel::{ExecutionContext, ExecutionEvent, ExecutionEventType};
use enact_core::kernel::{ExecutionId, StepId, TenantId};
use enact_core::streaming::{EventLog, EventStore};
use enact_core::{InMemoryStateStore, StorageContext};
use seglog_eventstore::SeglogStreamStore;
use serde_json::json;
use std::sync::Arc;

/// The events one agent execution logs: start, a planning LLM call, two tool calls, an
/// artifact, the end.
fn agent_execution(run: usize) -> Vec<ExecutionEvent> {
    let exec = ExecutionId::from_string(format!("exec_{run:04}"));
    let tenant = TenantId::from_string(format!("tenant_{}", run % 2));
    let ctx = |step: Option<&StepId>| {
        let mut c = ExecutionContext::new(exec.clone()).with_tenant(tenant.clone(), None);
        c.step_id = step.cloned();
        c
    };
    let ev = |t, step: Option<&StepId>| ExecutionEvent::new(t, ctx(step));
    let plan = StepId::from_string(format!("step_{run:04}_plan"));
    let mut events = vec![
        ev(ExecutionEventType::ExecutionStart, None).with_payload(
            json!({"agent": "research-assistant", "request": format!("report #{run}")}),
        ),
        ev(ExecutionEventType::StepStart, Some(&plan)),
        ev(ExecutionEventType::LlmCallStart, Some(&plan))
            .with_payload(json!({"model": "enact-large"})),
        ev(ExecutionEventType::LlmCallEnd, Some(&plan))
            .with_duration(640 + run as u64)
            .with_payload(json!({"input_tokens": 1_200, "output_tokens": 310})),
        ev(ExecutionEventType::StepEnd, Some(&plan)).with_duration(700),
    ];
    for k in 0..2 {
        let step = StepId::from_string(format!("step_{run:04}_{k}"));
        events.push(ev(ExecutionEventType::StepStart, Some(&step)));
        events.push(
            ev(ExecutionEventType::ToolCallStart, Some(&step)).with_payload(
                json!({"tool": "web_search", "query": format!("report {run} part {k}")}),
            ),
        );
        events.push(
            ev(ExecutionEventType::ToolCallEnd, Some(&step))
                .with_duration(150)
                .with_payload(json!({"results": 5})),
        );
        events.push(ev(ExecutionEventType::StepEnd, Some(&step)).with_duration(170));
    }
    events.push(
        ev(ExecutionEventType::ArtifactCreated, None)
            .with_payload(json!({"artifact": format!("draft_{run:04}.md"), "bytes": 4_096})),
    );
    events.push(ev(ExecutionEventType::ExecutionEnd, None).with_duration(2_100));
    events
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let base_dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);

    let seglog = SeglogStreamStore::open(base_dir.join("events")).await?;
    let event_store: Arc<dyn EventStore> = Arc::new(seglog.clone());
    let storage = StorageContext {
        event_store,
        state_store: Arc::new(InMemoryStateStore::new()),
        base_dir: base_dir.clone(),
    };
    let runs = 4;
    let expected: usize = (0..runs).map(|r| agent_execution(r).len()).sum();

    // A UI-style poller: follows every execution in global order (durable events only).
    let log = storage.event_log();
    let poller = tokio::spawn(async move {
        let (mut cursor, mut seen) = (0, 0);
        while seen < expected {
            let batch = log.get_after(cursor, 16).await?;
            if batch.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                continue;
            }
            for entry in &batch {
                let c = &entry.event.context;
                println!(
                    "  poll #{:<4} {:<10} {:<10} {}",
                    entry.sequence,
                    c.execution_id.as_str(),
                    c.tenant_id.as_ref().map_or("-", |t| t.as_str()),
                    entry.event.event_type.as_str()
                );
            }
            seen += batch.len();
            cursor = batch.last().map_or(cursor, |e| e.sequence);
        }
        anyhow::Ok(cursor)
    });

    // The executions log concurrently, each event durable when `append` returns.
    let mut tasks = Vec::new();
    for run in 0..runs {
        let log = storage.event_log();
        tasks.push(tokio::spawn(async move {
            for event in agent_execution(run) {
                log.append(event).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let last_polled = poller.await??;
    let latest = storage.event_log().latest_sequence().await?;
    assert_eq!(last_polled, latest, "the poller saw the whole log");
    println!("{expected} events from {runs} executions; latest global sequence {latest}");
    seglog.close()?;

    // Reopen: the same global sequences; a poller resumes where it left off.
    let log = EventLog::new(Arc::new(
        SeglogStreamStore::open(base_dir.join("events")).await?,
    ));
    assert_eq!(log.latest_sequence().await?, latest);
    let one = log
        .get_by_execution(&ExecutionId::from_string("exec_0002"))
        .await?;
    println!("exec_0002 after reopen: {} events", one.len());
    for e in &one {
        println!("  #{:<4} {}", e.sequence, e.event.event_type.as_str());
    }
    let middle = one[one.len() / 2].sequence;
    let resumed = log.get_after(middle, 5).await?;
    println!(
        "resumed after #{middle}: {:?}",
        resumed.iter().map(|e| e.sequence).collect::<Vec<_>>()
    );
    assert!(resumed.iter().all(|e| e.sequence > middle));
    Ok(())
}
