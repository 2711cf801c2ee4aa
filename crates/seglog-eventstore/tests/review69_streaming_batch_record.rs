//! Review 69: a record of streaming events (encoding 2) that holds more than one event — not
//! written by `SeglogStreamStore::append`, which writes one event per record, but by anything
//! else with the log (`store.log()`, a tool, a crafted file).
//!
//! The store's sequence is the record's global position, one per record: `get_after` knows
//! it and refuses such a record ("holds 2 events; the streaming store writes one per
//! record"). `get_by_execution` does not: it hands out one entry per *event*, each with the
//! record's position, so two entries share one sequence (and a caller that resumes with
//! `get_after(sequence)` from the first skips the second). The two reads of one store
//! disagree about the same record: one refuses it, the other returns wrong sequences.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::{
    ExecutionContext, ExecutionEvent, ExecutionEventType, ExecutionId, TenantId,
};
use enact_core::streaming::EventStore;
use seglog_eventstore::codec::{encode_execution_event, ENCODING_EXECUTION_EVENT_MSGPACK};
use seglog_eventstore::SeglogStreamStore;

fn event(exec: &str, tenant: &str) -> ExecutionEvent {
    let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
    c.tenant_id = Some(TenantId::from_string(tenant));
    ExecutionEvent::new(ExecutionEventType::StepStart, c)
}

/// Writes one record of `events` under `execution` and `tenant` straight into the store's
/// log, as `append` never would.
async fn append_raw(
    store: &SeglogStreamStore,
    execution: &str,
    tenant: &str,
    events: &[ExecutionEvent],
) {
    let payloads: Vec<Vec<u8>> = events
        .iter()
        .map(|e| encode_execution_event(e).unwrap())
        .collect();
    store
        .log()
        .append_encoded(
            execution,
            tenant,
            None,
            ENCODING_EXECUTION_EVENT_MSGPACK,
            &payloads,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_of_two_streaming_events_never_gives_two_entries_one_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    store.append(event("a", "acme")).await.unwrap();
    // Two streaming events of execution "a" in one record.
    append_raw(
        &store,
        "a",
        "acme",
        &[event("a", "acme"), event("a", "acme")],
    )
    .await;

    let after = store.get_after(0, 10).await;
    assert!(
        after.is_err(),
        "get_after refuses a record of two events (the premise)"
    );
    match store.get_by_execution(&ExecutionId::from_string("a")).await {
        // Refused, as get_after refuses it: consistent.
        Err(_) => {}
        Ok(entries) => {
            let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
            assert!(
                sequences.windows(2).all(|w| w[0] < w[1]),
                "get_by_execution gave entries that share a sequence: {sequences:?} \
                 (while get_after refuses the same record: {})",
                after.err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
    store.close().unwrap();
}

/// A streaming-encoded record whose event names another execution (and tenant) than the
/// record it sits in — again not something `append` writes, but something the log can hold.
/// Reads decode the payload and never compare its context with the record: `get_after`
/// hands out an event of tenant "acme"'s execution "a" that was written under tenant "bolt"'s
/// execution "b", and `get_by_execution("a")` does not list it while `get_by_execution("b")`
/// returns an event claiming to be "a"'s. The event's execution and tenant are what
/// consumers of the trait route and authorise by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_never_read_back_under_an_execution_other_than_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    store.append(event("a", "acme")).await.unwrap();
    store.append(event("b", "bolt")).await.unwrap();
    append_raw(&store, "b", "bolt", &[event("a", "acme")]).await;
    let b = store.get_by_execution(&ExecutionId::from_string("b")).await;
    if let Ok(entries) = &b {
        for e in entries {
            assert_eq!(
                e.event.context.execution_id.as_str(),
                "b",
                "get_by_execution(\"b\") returned an event of execution {:?}, tenant {:?}",
                e.event.context.execution_id.as_str(),
                e.event
                    .context
                    .tenant_id
                    .as_ref()
                    .map(|t| t.as_str().to_owned())
            );
        }
    }
    store.close().unwrap();
}

/// The same through `get_after`, and for a tenant: a record of execution "b", tenant "bolt",
/// whose event says tenant "acme", is not handed out as an "acme" event by either read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_never_read_back_under_a_tenant_other_than_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open(dir.path()).await.unwrap();
    store.append(event("b", "bolt")).await.unwrap();
    append_raw(&store, "b", "bolt", &[event("b", "acme")]).await;
    let acme = |entries: &[enact_core::streaming::EventLogEntry]| {
        entries
            .iter()
            .any(|e| e.event.context.tenant_id.as_ref().map(|t| t.as_str()) == Some("acme"))
    };
    if let Ok(entries) = store.get_after(0, 10).await {
        assert!(
            !acme(&entries),
            "get_after handed out a bolt record as acme's"
        );
    }
    if let Ok(entries) = store.get_by_execution(&ExecutionId::from_string("b")).await {
        assert!(
            !acme(&entries),
            "get_by_execution handed out a bolt record as acme's"
        );
    }
    store.close().unwrap();
}
