//! Ownership against the in-memory store: zombie fencing, racing claims, failover.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;

fn store() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_zombie_stops_appending_and_deletes_nothing_of_the_new_owner() {
    let root = tempfile::tempdir().unwrap();
    support::scenario_zombie(store(), Path::from("logs/p1"), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_round_of_racing_claims_has_exactly_one_winner() {
    support::scenario_racing_claims(store(), Path::from("logs/p2"), 30, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_restores_every_shipped_event_with_its_sequence_and_bytes() {
    let root = tempfile::tempdir().unwrap();
    support::scenario_failover(store(), Path::from("logs/p3"), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_shipper_ships_sealed_segments_and_stops_when_fenced() {
    let store = store();
    let prefix = Path::from("logs/p4");
    let root = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let tier = Arc::new(
        seglog_tier::Tier::claim(store.clone(), prefix.clone())
            .await
            .unwrap(),
    );
    let shipper = seglog_tier::Shipper::spawn(
        tier.clone(),
        log.clone(),
        std::time::Duration::from_millis(10),
    );
    support::write_events(&log, 0, 150).await;
    log.roll().await.unwrap();
    let sealed = log.segments().into_iter().filter(|s| s.sealed).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tier.manifest().await.segments.len() < sealed {
        assert!(
            std::time::Instant::now() < deadline,
            "the shipper shipped every sealed segment"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let b = seglog_tier::Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap();
    assert!(b.epoch() > tier.epoch());
    let err = shipper.stop().await.unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(log.is_poisoned(), "the shipper's fencing poisoned the log");
}
