//! Review 32: the change since `b08295f` (manifest pruning, the shipper's orphan collection,
//! the claim record's nonce reuse and its recording after a round, `read_newest`), attacked
//! once more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::{OrphanCollection, Shipper, Tier};
use std::sync::Arc;
use std::time::Duration;

/// Finding 1 (a zombie acknowledges for ever): the `Shipper` ends on an `Error::Fenced` from
/// its orphan collection **without poisoning the log**. `Tier::ship` poisons the log when it
/// learns of a newer owner ("so the zombie cannot acknowledge writes the new owner will
/// never see"), and that is what bounds a zombie's life to one ship interval. But when the
/// first to learn of the claim is the collection that follows a round (its ownership check,
/// `confirm_ownership`, reads the newest manifest: a claim that landed after the round's
/// check), the shipper task returns `Err(Fenced)`, nobody ships again, and so nobody poisons
/// the log: with `Durability::Local` (the EventStore's default, with the collection on by
/// default) every later append is acknowledged and lost to the new owner, until the process
/// is restarted.
///
/// Here: the owner's shipper runs a round (nothing new: its next-id GET finds the id free),
/// then its collection, whose first listing of `segments/` is held while node B claims the
/// log. The collection's batch then finds B's manifest and fails with `Fenced`, which ends
/// the shipper. A second later, A's log still takes appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_found_by_the_shippers_collection_poisons_the_log() {
    let root = tempfile::tempdir().unwrap();
    let faults = support::fault::FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let prefix = Path::from("p");
    let log_a = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let a = Arc::new(Tier::claim(store.clone(), prefix.clone()).await.unwrap());
    // Two manifests of A's own after its claim: the collection has one to prune (manifest 2),
    // so it reaches a batch and its ownership check.
    support::ship_a_round(&log_a, &a, 0).await;
    support::ship_a_round(&log_a, &a, 20).await;

    let held = faults.pause_next_segment_list();
    let shipper = Shipper::spawn_with(
        a.clone(),
        log_a.clone(),
        Duration::from_millis(50),
        None,
        Some(OrphanCollection {
            every: Duration::ZERO,
            grace: Duration::ZERO,
        }),
    );
    // The first round passed its claim check; its collection confirmed ownership and lists.
    tokio::time::timeout(Duration::from_secs(10), held.reached.notified())
        .await
        .expect("the shipper's collection never listed segments/");
    // Node B takes the log over now.
    let b = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    assert!(b.epoch() > a.epoch());
    held.resume.notify_one();

    // Ten ship intervals later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = log_a
        .append("exec-0", "tenant-a", b"acknowledged by a zombie")
        .await;
    let poisoned = log_a.is_poisoned();
    let ended = shipper.stop().await;
    assert!(
        matches!(&ended, Err(e) if e.is_fenced()),
        "the scenario expects the shipper to have ended fenced: {ended:?}"
    );
    assert!(
        poisoned && late.is_err(),
        "the shipper learnt (through its collection) that node B owns the log and stopped, \
         but A's log is not poisoned (poisoned: {poisoned}): the append after the fence was \
         acknowledged ({late:?}) and will never reach B; with the shipper gone nothing ever \
         poisons it"
    );
}
