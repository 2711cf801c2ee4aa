//! A node whose log another node has taken over must not take it back with its old
//! directory, even when the new owner has shipped nothing yet: the bucket's newest manifest
//! then names exactly what the old node's directory holds, so the log looks continued, and
//! the old node's claim would fence the live owner (whose appends since its claim exist only
//! on its disk). The directory remembers the claim it was last written under (`TIER_CLAIM`),
//! and a newer claim by someone else refuses it.
#![cfg(feature = "tier")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::persistence::StorageBackend;
use seglog_eventstore::{BucketOpening, BucketOptions, SeglogEventStore};
use seglog_tier::object_store::memory::InMemory;
use seglog_tier::object_store::path::Path;
use seglog_tier::object_store::ObjectStore;
use seglog_tier::FetchSegments;
use std::sync::Arc;

fn options() -> BucketOptions {
    let mut log = seglog::Options::default().checkpoints(seglog::CheckpointMode::Inline);
    log.segment_size_bytes = 8 * 1024;
    BucketOptions::default()
        .log_options(log)
        .fetch_segments(FetchSegments::Whole)
        .ship_interval(std::time::Duration::from_secs(3600))
}

async fn append(store: &SeglogEventStore, n: u32) {
    for i in 0..n {
        store
            .log()
            .append(&format!("exec-{}", i % 3), "tenant", &[7u8; 100])
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_directory_does_not_take_back_a_log_another_node_claimed() {
    let root = tempfile::tempdir().unwrap();
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = || Path::from("p");
    let (dir_a, dir_b) = (root.path().join("a"), root.path().join("b"));

    // Node A owns the log, ships it, and goes away (its directory stays).
    let a = SeglogEventStore::open_from_bucket(bucket.clone(), prefix(), &dir_a, options())
        .await
        .unwrap();
    append(&a, 50).await;
    a.log().roll().await.unwrap();
    a.tier().unwrap().ship(a.log()).await.unwrap();
    a.shutdown().await.unwrap();
    drop(a);

    // Node B takes over: it restores (claiming the log) and acknowledges appends it has not
    // shipped yet.
    let b = SeglogEventStore::open_from_bucket(bucket.clone(), prefix(), &dir_b, options())
        .await
        .unwrap();
    assert!(matches!(
        b.bucket_opening(),
        Some(BucketOpening::Restored(_))
    ));
    append(&b, 5).await;

    // Node A comes back with its old directory.
    let back =
        SeglogEventStore::open_from_bucket(bucket.clone(), prefix(), &dir_a, options()).await;
    let outcome = match &back {
        Ok(s) => format!("opened: {:?}", s.bucket_opening()),
        Err(e) => format!("refused: {e}"),
    };
    if let Ok(s) = back {
        s.shutdown().await.unwrap();
    }
    // B is still the owner: its next ship commits.
    let shipped = b.tier().unwrap().ship(b.log()).await;
    assert!(
        shipped.is_ok(),
        "the old directory took the log back and fenced its owner ({outcome}): {:?}",
        shipped.err()
    );
    assert!(outcome.starts_with("refused"), "{outcome}");
    b.shutdown().await.unwrap();
}

/// The owner restarting with its own directory continues, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_restarting_with_its_directory_continues() {
    let root = tempfile::tempdir().unwrap();
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let dir = root.path().join("a");
    for round in 0..3 {
        let s =
            SeglogEventStore::open_from_bucket(bucket.clone(), Path::from("p"), &dir, options())
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        if round > 0 {
            assert!(matches!(s.bucket_opening(), Some(BucketOpening::Continued)));
        }
        append(&s, 20).await;
        s.tier().unwrap().ship(s.log()).await.unwrap();
        s.shutdown().await.unwrap();
    }
}
