//! A caller-given JSON value (`serde_json::Value`) nested far past `codec::MAX_NESTING`, deep
//! enough that encoding it (rmp-serde recurses per level) or dropping it (serde_json's `Value`
//! drops recursively) overflows a thread's stack. Both stores take such an event by value:
//! `append` must refuse it with an error and dispose of it without recursing, never abort the
//! process, and the store must go on working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::persistence::{EventStore as KernelEventStore, ExecutionEventData};
use enact_core::kernel::{
    ExecutionContext, ExecutionError, ExecutionEvent, ExecutionEventType, ExecutionId, TenantId,
};
use enact_core::streaming::EventStore;
use seglog_eventstore::{SeglogEventStore, SeglogStreamStore};
use serde_json::Value;

/// Far deeper than a 2 MiB stack survives a recursive encode or drop of, in a debug build.
const DEPTH: usize = 200_000;

/// `depth` nested arrays or objects, built without recursion.
fn nested(depth: usize, objects: bool) -> Value {
    let mut v = Value::Null;
    for _ in 0..depth {
        v = if objects {
            let mut map = serde_json::Map::new();
            map.insert("a".into(), v);
            Value::Object(map)
        } else {
            Value::Array(vec![v])
        };
    }
    v
}

fn streaming_event(exec: &str, payload: Option<Value>) -> ExecutionEvent {
    let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
    c.tenant_id = Some(TenantId::from_string("acme"));
    let mut e = ExecutionEvent::new(ExecutionEventType::StepStart, c);
    e.payload = payload;
    e
}

fn tool_call(input: Value) -> ExecutionEventData {
    ExecutionEventData::ToolCallStarted {
        step_id: None,
        tool_call_id: "call-1".into(),
        tool_name: "search".into(),
        input,
    }
}

/// Every kind of event that carries caller-given JSON, nested `DEPTH` levels.
fn deep_kernel_events() -> Vec<ExecutionEventData> {
    let mut error = ExecutionError::timeout("boom");
    error.details = Some(nested(DEPTH, false));
    vec![
        tool_call(nested(DEPTH, false)),
        ExecutionEventData::ToolCallCompleted {
            step_id: None,
            tool_call_id: "call-1".into(),
            output: nested(DEPTH, true),
        },
        ExecutionEventData::ExecutionStarted {
            parent: None,
            metadata: Some(nested(DEPTH, true)),
        },
        ExecutionEventData::Custom {
            event_type: "deep".into(),
            data: nested(DEPTH, false),
        },
        ExecutionEventData::ExecutionFailed { error },
    ]
}

#[tokio::test]
async fn streaming_append_refuses_a_stack_deep_payload_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    for objects in [false, true] {
        let refused = store
            .append(streaming_event("deep", Some(nested(DEPTH, objects))))
            .await;
        let message = format!("{:#}", refused.unwrap_err());
        assert!(message.contains("nest"), "{message}");
    }
    // Nothing was written, and the store goes on.
    let ok = store.append(streaming_event("deep", None)).await.unwrap();
    let all = store.get_after(0, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].sequence, ok.sequence);
    store.close().unwrap();
}

#[tokio::test]
async fn kernel_append_and_append_batch_refuse_stack_deep_json_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogEventStore::open(dir.path()).await.unwrap();
    let exec = ExecutionId::from_string("deep");
    let tenant = TenantId::from_string("acme");
    for event in deep_kernel_events() {
        let message = format!(
            "{:#}",
            store.append(&exec, &tenant, event).await.unwrap_err()
        );
        assert!(message.contains("nest"), "{message}");
    }
    // A batch with one deep event among shallow ones is refused whole.
    for deep in deep_kernel_events() {
        let batch = vec![tool_call(Value::Null), deep, tool_call(Value::Null)];
        let refused = store.append_batch(&exec, &tenant, batch).await;
        let message = format!("{:#}", refused.unwrap_err());
        assert!(message.contains("nest"), "{message}");
    }
    assert_eq!(
        store
            .append(&exec, &tenant, tool_call(Value::Null))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.load_events(&exec).await.unwrap().len(), 1);
    enact_core::kernel::persistence::StorageBackend::shutdown(&store)
        .await
        .unwrap();
}
