//! Writes realistic Enact executions from several concurrent tasks through the EventStore
//! trait, reopens the store, replays every execution and prints it.
//!
//! `cargo run -p seglog-eventstore --example agent_run [DIR]` (a temp dir by default).

use enact_core::kernel::persistence::{EventStore, StorageBackend};
use enact_core::kernel::{ExecutionId, TenantId};
use seglog_eventstore::{sample, SeglogEventStore};
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().join("events"), Into::into);
    let store: Arc<dyn EventStore> = Arc::new(SeglogEventStore::open(&dir).await?);

    // Six agent runs for two tenants, written concurrently, event by event, as a runtime would.
    let mut tasks = Vec::new();
    for run in 0..6u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let exec = ExecutionId::from_string(format!("exec_demo_{run}"));
            let tenant = TenantId::from_string(format!("tenant_{}", run % 2));
            for event in sample::agent_run(run) {
                store.append(&exec, &tenant, event).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    store.shutdown().await?;

    // Reopen and replay.
    let store = SeglogEventStore::open(&dir).await?;
    for tenant in ["tenant_0", "tenant_1"] {
        let tenant = TenantId::from_string(tenant);
        for exec in store.list_executions(&tenant, 10, 0).await? {
            let events = store.load_events(&exec).await?;
            println!("{exec} ({tenant}): {} events", events.len());
            for e in &events {
                println!(
                    "  #{:<3} {}  {}",
                    e.sequence,
                    e.timestamp.format("%H:%M:%S%.6f"),
                    sample::label(&e.event)
                );
            }
        }
    }
    store.shutdown().await?;
    Ok(())
}
