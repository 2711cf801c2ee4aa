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
