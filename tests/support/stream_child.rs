//! The process `stream_crash.rs` kills: opens a `SeglogStreamStore` (enact-core's streaming
//! `EventStore`) on the directory given, appends `ExecutionEvent`s from 8 tasks until killed,
//! printing `ack <sequence> <event id>` for each append that returned, and follows the store
//! with `get_after` from the start, printing `seen <sequence> <event id>` for each event it
//! reads, in order.
//!
//! Nothing here is expected to fail before the kill: the first error ends the process with
//! status 1 and the error on stderr.

use anyhow::Result;
use enact_core::kernel::{ExecutionContext, ExecutionEvent, ExecutionEventType, ExecutionId};
use enact_core::streaming::EventStore;
use seglog_eventstore::SeglogStreamStore;
use std::io::Write;
use std::sync::Arc;

fn print(line: String) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

async fn appender(store: Arc<SeglogStreamStore>, t: usize) -> Result<()> {
    let mut ctx = ExecutionContext::new(ExecutionId::from_string(format!("exec-{t}")));
    ctx.tenant_id = None;
    for n in 0u64.. {
        let event = ExecutionEvent::new(ExecutionEventType::StepStart, ctx.clone())
            .with_payload(serde_json::json!({ "task": t, "n": n, "text": "x".repeat(200) }));
        let entry = store.append(event).await?;
        print(format!("ack {} {}", entry.sequence, entry.event.event_id))?;
    }
    Ok(())
}

async fn reader(store: Arc<SeglogStreamStore>) -> Result<()> {
    let mut after = 0;
    loop {
        let entries = store.get_after(after, 256).await?;
        if entries.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            continue;
        }
        for e in entries {
            after = e.sequence;
            print(format!("seen {} {}", e.sequence, e.event.event_id))?;
        }
    }
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: seglog-stream-child DIR"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store =
            Arc::new(SeglogStreamStore::open_with(&dir, seglog_tests::crash_options()).await?);
        print("ready".into())?;
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(reader(store.clone()));
        for t in 0..8 {
            tasks.spawn(appender(store.clone(), t));
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done.map_err(anyhow::Error::from).and_then(|r| r) {
                eprintln!("seglog-stream-child: {e:#}");
                std::process::exit(1);
            }
        }
        Ok(())
    })
}
