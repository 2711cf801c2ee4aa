//! Review 100: a crafted record nested just under the decoder's limit (256 levels), read on
//! a default 2 MiB thread stack in a debug build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::{
    ExecutionContext, ExecutionEvent, ExecutionEventType, ExecutionId, TenantId,
};
use enact_core::streaming::EventStore;
use seglog_eventstore::codec::ENCODING_EXECUTION_EVENT_MSGPACK;
use seglog_eventstore::SeglogStreamStore;

fn event(exec: &str, tenant: &str, payload: Option<serde_json::Value>) -> ExecutionEvent {
    let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
    c.tenant_id = Some(TenantId::from_string(tenant));
    let mut e = ExecutionEvent::new(ExecutionEventType::StepStart, c);
    e.payload = payload;
    e
}

async fn crafted(levels: usize, map: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    let encoded = seglog_eventstore::codec::encode_execution_event(&event(
        "crafted",
        "acme",
        Some(serde_json::json!("HOLE")),
    ))
    .unwrap();
    let hole = encoded.windows(5).position(|w| w == b"\xa4HOLE").unwrap();
    let mut bytes = encoded[..hole].to_vec();
    for _ in 0..levels {
        if map {
            bytes.extend([0x81, 0xa1, b'a']);
        } else {
            bytes.push(0x91);
        }
    }
    bytes.push(0xc0);
    bytes.extend(&encoded[hole + 5..]);
    store
        .log()
        .append_encoded(
            "crafted",
            "acme",
            None,
            ENCODING_EXECUTION_EVENT_MSGPACK,
            &[bytes],
        )
        .await
        .unwrap();
    // Under the decoder's cap the record must read back whole, on an ordinary stack, through
    // both read paths: the nesting limit must not cost a valid (if odd) record.
    let after = store.get_after(0, 10).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(depth(after[0].event.payload.as_ref().unwrap()), levels);
    let by_execution = store
        .get_by_execution(&ExecutionId::from_string("crafted"))
        .await
        .unwrap();
    assert_eq!(by_execution.len(), 1);
    store.close().unwrap();
}

/// How many arrays or maps enclose the innermost value (iterative: the value is deep).
fn depth(value: &serde_json::Value) -> usize {
    let mut levels = 0;
    let mut current = value;
    loop {
        current = match current {
            serde_json::Value::Array(items) if items.len() == 1 => &items[0],
            serde_json::Value::Object(map) if map.len() == 1 => map.values().next().unwrap(),
            _ => return levels,
        };
        levels += 1;
    }
}

#[tokio::test]
async fn arrays_just_under_the_limit() {
    crafted(250, false).await;
}

#[tokio::test]
async fn maps_just_under_the_limit() {
    crafted(250, true).await;
}
