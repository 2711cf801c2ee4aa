//! seglog through enact-core's `EventStore` trait: each append is an `ExecutionEventData`
//! (a `Custom` event whose MessagePack encoding is about the payload size), encoded and
//! appended by `SeglogEventStore`, driven from the benchmark's threads on a tokio runtime.

use super::Peer;
use anyhow::Result;
use enact_core::kernel::persistence::{EventStore, ExecutionEventData};
use enact_core::kernel::{ExecutionId, TenantId};
use seglog_eventstore::SeglogEventStore;
use std::path::Path;

struct TraitPeer {
    runtime: tokio::runtime::Runtime,
    store: SeglogEventStore,
    tenant: TenantId,
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = runtime.block_on(SeglogEventStore::open(dir.join("seglog-trait")))?;
    Ok(Box::new(TraitPeer {
        runtime,
        store,
        tenant: TenantId::from_string("bench"),
    }))
}

/// An event whose MessagePack encoding is about `payload.len()` bytes (~35 bytes of
/// framing around the text), so the trait peer writes what the others write.
pub fn event_of(payload: &[u8]) -> ExecutionEventData {
    let text = String::from_utf8_lossy(&payload[..payload.len().saturating_sub(35)]).into_owned();
    ExecutionEventData::Custom {
        event_type: "bench".into(),
        data: serde_json::Value::String(text),
    }
}

impl Peer for TraitPeer {
    fn append(&self, execution: u64, payload: &[u8]) -> Result<()> {
        let exec = ExecutionId::from_string(format!("exec-{execution:06}"));
        self.runtime
            .block_on(self.store.append(&exec, &self.tenant, event_of(payload)))?;
        Ok(())
    }

    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        let exec = ExecutionId::from_string(format!("exec-{execution:06}"));
        let events = payloads.iter().map(|p| event_of(p)).collect();
        self.runtime
            .block_on(self.store.append_batch(&exec, &self.tenant, events))?;
        Ok(())
    }
}
