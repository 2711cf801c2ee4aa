//! An execution erased and created again under another tenant while it is being read: every
//! event loaded must carry the tenant it was appended under, never the new incarnation's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::persistence::{EventStore, ExecutionEventData};
use enact_core::kernel::{ExecutionId, TenantId};
use seglog::compaction::policy;
use seglog::{CompactOptions, Options};
use seglog_eventstore::SeglogEventStore;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn started(tenant: &str) -> ExecutionEventData {
    ExecutionEventData::ExecutionStarted {
        parent: None,
        metadata: Some(json!({ "written_under": tenant })),
    }
}

fn written_under(event: &ExecutionEventData) -> String {
    match event {
        ExecutionEventData::ExecutionStarted {
            metadata: Some(m), ..
        } => m["written_under"].as_str().unwrap().to_owned(),
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_events_carry_the_tenant_they_were_written_under() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size_bytes(64 << 10);
    let store = Arc::new(
        SeglogEventStore::open_with(dir.path(), options)
            .await
            .unwrap(),
    );
    let exec = ExecutionId::from_string("exec-recreated");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let exec = exec.clone();
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Handle::current();
            for round in 0..150 {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let tenant = ["tenant-a", "tenant-b"][round % 2];
                let log = store.log();
                let plan =
                    policy::drop_executions(&log.compaction_view(false).unwrap(), [exec.as_str()]);
                log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
                    .unwrap();
                let tenant_id = TenantId::from_string(tenant);
                for _ in 0..3 {
                    rt.block_on(store.append(&exec, &tenant_id, started(tenant)))
                        .unwrap();
                }
            }
            stop.store(true, Ordering::Release);
        })
    };
    let mut checked = 0u64;
    let mut mislabelled = None;
    while !stop.load(Ordering::Acquire) {
        let loaded = match store.load_events(&exec).await {
            Ok(loaded) => loaded,
            Err(e) => {
                mislabelled = Some(format!("load failed: {e:#}"));
                stop.store(true, Ordering::Release);
                break;
            }
        };
        for stored in loaded {
            if stored.tenant_id.as_str() != written_under(&stored.event) {
                mislabelled = Some(format!(
                    "event {} written under {} is labelled {}",
                    stored.sequence,
                    written_under(&stored.event),
                    stored.tenant_id.as_str()
                ));
                stop.store(true, Ordering::Release);
                break;
            }
            checked += 1;
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert_eq!(mislabelled, None, "after {checked} events checked");
    assert!(checked > 0);
}
