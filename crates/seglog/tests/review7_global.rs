//! Review 7: the global order after an erasure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::compaction::Plan;
use seglog::{CompactOptions, Log, Options};
use std::time::Duration;

/// Reliability clause 6: once `compact` has returned Ok, the erased events are gone from
/// every read. A global subscription is a read: what it fetched ahead of its consumer before
/// the erasure must not be handed out after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_subscription_yields_no_erased_event_after_the_erasure_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), Options::default()).await.unwrap();
    for i in 0..10u32 {
        let exec = if i % 2 == 0 { "keep" } else { "doomed" };
        log.append(exec, "t", format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    let mut stream = Box::pin(log.subscribe_global(0));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.execution, "keep");
    let plan = Plan {
        drop_executions: ["doomed".to_owned()].into(),
        ..Default::default()
    };
    let report = log.compact(plan, CompactOptions::default()).await.unwrap();
    assert_eq!(report.events_dropped, 5);
    assert!(
        log.read_global(0, usize::MAX)
            .unwrap()
            .iter()
            .all(|r| r.execution == "keep"),
        "read_global no longer sees them"
    );
    // Everything the stream hands out from now on comes after the erasure returned.
    let mut after = Vec::new();
    while after.len() < 4 {
        let r = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the subscription stalled")
            .unwrap()
            .unwrap();
        after.push((r.execution, r.payloads[0].to_vec()));
    }
    log.close().unwrap();
    assert!(
        after.iter().all(|(e, _)| e == "keep"),
        "erased events handed out after the erasure returned: {after:?}"
    );
    assert_eq!(
        after.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        [b"2".to_vec(), b"4".to_vec(), b"6".to_vec(), b"8".to_vec()]
    );
}

/// The same for a subscription to one execution: what it read ahead of its consumer before
/// the execution was erased is not handed out after the erasure returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_subscription_yields_no_erased_event_after_the_erasure_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), Options::default()).await.unwrap();
    for i in 0..5u32 {
        log.append("doomed", "t", format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    let mut stream = Box::pin(log.subscribe("doomed", 0));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.seq, 1);
    let plan = Plan {
        drop_executions: ["doomed".to_owned()].into(),
        ..Default::default()
    };
    let report = log.compact(plan, CompactOptions::default()).await.unwrap();
    assert_eq!(report.events_dropped, 5);
    let next = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(
        !matches!(next, Ok(Some(Ok(_)))),
        "an erased event was handed out after the erasure returned: {next:?}"
    );
    log.close().unwrap();
}
