//! Review 97: a tenant's event payload (`ExecutionEvent::payload`, a `serde_json::Value`)
//! nested deeply. `append` encoded it at any depth and acknowledged it, while the decoder
//! refuses more than 1,024 levels (and in a debug build overflows a 2 MiB thread stack
//! before that): the acknowledged event never read back, and since `get_after` decodes its
//! whole window, every reader of the global stream was stuck at it — other tenants' later
//! events with it. Now an event nested deeper than `codec::MAX_NESTING` is refused at append
//! (nothing written), every event JSON text can hold reads back, and a crafted record nested
//! deeper than the decoder's limit is an error, never an abort.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::persistence::{EventStore as KernelEventStore, ExecutionEventData};
use enact_core::kernel::{
    ExecutionContext, ExecutionEvent, ExecutionEventType, ExecutionId, TenantId,
};
use enact_core::streaming::EventStore;
use seglog_eventstore::codec::{ENCODING_EXECUTION_EVENT_MSGPACK, MAX_NESTING};
use seglog_eventstore::{SeglogEventStore, SeglogStreamStore};

fn event(exec: &str, tenant: &str, payload: Option<serde_json::Value>) -> ExecutionEvent {
    let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
    c.tenant_id = Some(TenantId::from_string(tenant));
    let mut e = ExecutionEvent::new(ExecutionEventType::StepStart, c);
    e.payload = payload;
    e
}

/// `depth` nested arrays, built from JSON text (as a payload received over the wire is).
fn nested_text(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// `depth` nested arrays, built in memory (no parser limit), and dropped without recursing
/// by the caller through [`drop_flat`].
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(serde_json::json!(1), |v, _| serde_json::json!([v]))
}

/// Drops a deep value without recursing (serde_json's `Value` drops recursively).
fn drop_flat(mut v: serde_json::Value) {
    let mut stack = Vec::new();
    loop {
        if let serde_json::Value::Array(items) = &mut v {
            stack.append(items);
        }
        match stack.pop() {
            Some(next) => v = next,
            None => return,
        }
    }
}

#[tokio::test]
async fn a_payload_nested_past_the_limit_is_refused_and_the_global_stream_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    let first = store.append(event("other-1", "beta", None)).await.unwrap();
    for depth in [MAX_NESTING, 1_100] {
        let deep = nested(depth);
        let refused = store
            .append(event("attacker", "acme", Some(deep.clone())))
            .await;
        drop_flat(deep);
        let err = match refused {
            Ok(entry) => panic!(
                "depth {depth}: acknowledged at {} (an event the reads cannot give back)",
                entry.sequence
            ),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("nest more than"), "depth {depth}: {err}");
    }
    assert_eq!(store.latest_sequence().await.unwrap(), first.sequence);
    assert!(store
        .get_by_execution(&ExecutionId::from_string("attacker"))
        .await
        .unwrap()
        .is_empty());
    let last = store.append(event("other-2", "beta", None)).await.unwrap();
    let after: Vec<u64> = store
        .get_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(after, [first.sequence, last.sequence]);
    store.close().unwrap();
}

/// serde_json parses JSON text at most 128 levels deep; every such payload is stored and
/// reads back, on a default thread stack, through both reads.
#[tokio::test]
async fn every_payload_json_text_can_hold_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    let deepest: serde_json::Value = (1..=200)
        .rev()
        .find_map(|depth| serde_json::from_str(&nested_text(depth)).ok())
        .unwrap();
    let stored = store
        .append(event("deep", "acme", Some(deepest.clone())))
        .await
        .unwrap();
    let by_execution = store
        .get_by_execution(&ExecutionId::from_string("deep"))
        .await
        .unwrap();
    assert_eq!(by_execution[0].event.payload.as_ref(), Some(&deepest));
    let global = store.get_after(0, 10).await.unwrap();
    assert_eq!(global[0].sequence, stored.sequence);
    assert_eq!(global[0].event.payload.as_ref(), Some(&deepest));
    store.close().unwrap();
}

/// A store holding one real event of execution "crafted" (tenant "acme") whose payload, the
/// string "HOLE", is replaced by `levels` nested one-element containers around a nil (each
/// opened by the bytes `level`), written past the store (through its log, as a tool or a
/// crafted file could).
async fn store_with_crafted_record(
    levels: usize,
    level: &[u8],
) -> (tempfile::TempDir, SeglogStreamStore) {
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
        bytes.extend(level);
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
    (dir, store)
}

/// A record nested 100,000 levels deep: the reads fail with an error on a default thread
/// stack; the process does not abort.
#[tokio::test]
async fn a_crafted_record_nested_past_the_decoders_limit_is_an_error_not_an_abort() {
    let (_dir, store) = store_with_crafted_record(100_000, &[0x91]).await;
    let err = store.get_after(0, 10).await.unwrap_err();
    assert!(format!("{err:#}").contains("depth"), "{err:#}");
    store
        .get_by_execution(&ExecutionId::from_string("crafted"))
        .await
        .unwrap_err();
    store.close().unwrap();
}

/// Review 100: a record nested 250 levels (under the decoder's cap of 256), arrays or maps,
/// reads back whole through both streaming reads on an ordinary (debug, 2 MiB) stack: the
/// nesting limit must not cost a valid, if odd, record.
#[tokio::test]
async fn a_crafted_record_just_under_the_decoders_limit_reads_back_whole() {
    for level in [&[0x91][..], &[0x81, 0xa1, b'a'][..]] {
        let (_dir, store) = store_with_crafted_record(250, level).await;
        let after = store.get_after(0, 10).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(depth(after[0].event.payload.as_ref().unwrap()), 250);
        let by_execution = store
            .get_by_execution(&ExecutionId::from_string("crafted"))
            .await
            .unwrap();
        assert_eq!(by_execution.len(), 1);
        store.close().unwrap();
    }
}

/// How many one-element arrays or maps enclose the innermost value (iterative: the value
/// is deep).
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

/// The kernel store's events too: a `Custom` event whose data nests past the limit is
/// refused, and the execution's events load.
#[tokio::test]
async fn the_kernel_store_refuses_an_event_nested_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogEventStore::open(dir.path()).await.unwrap();
    let exec = ExecutionId::from_string("exec");
    let tenant = TenantId::from_string("acme");
    let custom = |data| ExecutionEventData::Custom {
        event_type: "deep".into(),
        data,
    };
    store
        .append(&exec, &tenant, custom(serde_json::json!(1)))
        .await
        .unwrap();
    let deep = nested(1_100);
    let refused = store.append(&exec, &tenant, custom(deep.clone())).await;
    drop_flat(deep);
    assert!(refused.is_err(), "a 1,100-level event was acknowledged");
    assert_eq!(store.load_events(&exec).await.unwrap().len(), 1);
}
