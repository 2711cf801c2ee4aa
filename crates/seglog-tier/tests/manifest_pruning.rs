//! Manifest pruning (`Tier::collect_orphans`): an owner deletes its own manifests between
//! its claim's and its newest, and never one a stale writer may still read or write, so
//! fencing keeps working; a reader racing a prune lists again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::Tier;
use std::sync::Arc;
use std::time::Duration;
use support::fault::{Fault, FaultStore};

/// An owner on a fault-injecting in-memory store that has shipped two rounds (manifests
/// 1, its claim, to 3).
struct Owner {
    faults: Arc<FaultStore>,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    log: seglog::Log,
    tier: Tier,
    /// The first event number the next round writes.
    next_event: usize,
}

impl Owner {
    async fn after_two_rounds(dir: &std::path::Path) -> Owner {
        let faults = FaultStore::new(Arc::new(InMemory::new()));
        let store: Arc<dyn ObjectStore> = faults.clone();
        let prefix = Path::from("p");
        let log = seglog::Log::open(dir, support::options()).await.unwrap();
        let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
        let mut owner = Owner {
            faults,
            store,
            prefix,
            log,
            tier,
            next_event: 0,
        };
        owner.ship_round().await;
        owner.ship_round().await;
        assert_eq!(owner.tier.manifest().await.manifest_id, 3);
        owner
    }

    /// Twenty events, a seal, and a ship round that commits a manifest.
    async fn ship_round(&mut self) {
        support::ship_a_round(&self.log, &self.tier, self.next_event).await;
        self.next_event += 20;
    }

    /// Twenty events and a seal, without shipping.
    async fn seal_round(&mut self) {
        support::write_events(&self.log, self.next_event, self.next_event + 20).await;
        self.log.roll().await.unwrap();
        self.next_event += 20;
    }

    async fn restore(&self, dir: &std::path::Path) -> seglog_tier::Restored {
        seglog_tier::restore(
            self.store.clone(),
            self.prefix.clone(),
            dir,
            support::options(),
        )
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_prunes_its_own_manifests_and_a_zombie_is_still_fenced() {
    let root = tempfile::tempdir().unwrap();
    support::scenario_manifest_pruning(Arc::new(InMemory::new()), Path::from("p"), root.path())
        .await;
}

/// A's commit of manifest 4 lands, but its PUT and the read back both fail: A does not know
/// it wrote 4. B claims at 5 and prunes its own manifests. A's next round finds its own 4,
/// then B's claim: fenced, and nothing of B's is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_whose_last_commit_was_unconfirmed_is_fenced_after_the_new_owner_pruned() {
    let root = tempfile::tempdir().unwrap();
    let mut a = Owner::after_two_rounds(&root.path().join("a")).await;
    // Round 3: the PUT of 4 lands but fails, and the read back of 4 fails too.
    let four = "manifest/00000000000000000004";
    a.faults.fail_put(four, 1, Fault::AfterSuccess);
    a.faults.fail_get(four, 1);
    a.seal_round().await;
    assert!(a.tier.ship(&a.log).await.is_err());
    assert_eq!(
        a.tier.manifest().await.manifest_id,
        3,
        "A does not know it wrote 4"
    );

    let b = a.restore(&root.path().join("b")).await;
    assert_eq!(b.tier.manifest().await.manifest_id, 5);
    for round in 0..3 {
        support::ship_a_round(&b.log, &b.tier, 1000 + round * 20).await;
    }
    b.tier.collect_orphans(Duration::ZERO).await.unwrap();
    let ids = support::manifest_ids(a.store.as_ref(), &a.prefix).await;
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 8]);
    let before = support::keys(a.store.as_ref(), &a.prefix).await;

    a.seal_round().await;
    let err = a.tier.ship(&a.log).await.unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(a.log.append("exec-0", "tenant-a", b"late").await.is_err());
    // Nothing was deleted, and the zombie wrote no manifest (its segment upload before the
    // commit is an orphan, as any zombie's).
    let after = support::keys(a.store.as_ref(), &a.prefix).await;
    for key in &before {
        assert!(after.contains(key), "{key} is gone");
    }
    assert_eq!(
        support::manifest_ids(a.store.as_ref(), &a.prefix).await,
        ids
    );
}

/// A reader lists manifest 3 as the newest; before it reads it, the owner commits 4 and
/// prunes 3. The reader lists again and gets 4, not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_whose_listed_newest_manifest_was_pruned_lists_again() {
    let root = tempfile::tempdir().unwrap();
    let mut a = Owner::after_two_rounds(&root.path().join("a")).await;
    let gate = a.faults.pause_next_get("manifest/00000000000000000003");
    let reader = tokio::spawn({
        let store = a.store.clone();
        let prefix = a.prefix.clone();
        async move { seglog_tier::latest_manifest(store.as_ref(), &prefix).await }
    });
    gate.reached.notified().await;
    a.ship_round().await;
    let report = a.tier.collect_orphans(Duration::ZERO).await.unwrap();
    assert_eq!(report.manifests_deleted.len(), 2, "{report:?}");
    gate.resume.notify_one();
    let newest = reader.await.unwrap().unwrap().unwrap();
    assert_eq!(newest.manifest_id, 4);
}

/// A claimant lists manifest 3 as the newest and stalls before its PUT of 4; meanwhile the
/// owner commits 4 and 5 and prunes its own 2, 3 and 4. The claim's create-only PUT of 4
/// then succeeds, but 5 follows it: the claim is lost, not a second owner; the owner is
/// not fenced, and a restore holds what it shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_lands_in_pruned_ids_is_lost_and_the_owner_keeps_the_log() {
    let root = tempfile::tempdir().unwrap();
    let mut owner = Owner::after_two_rounds(&root.path().join("a")).await;
    let gate = owner.faults.pause_next_put("manifest/00000000000000000004");
    let claimant = tokio::spawn({
        let store = owner.store.clone();
        let prefix = owner.prefix.clone();
        async move { Tier::claim(store, prefix).await }
    });
    gate.reached.notified().await;
    // The gate held only the first PUT of 4 (the claimant's): the owner's goes through.
    owner.ship_round().await;
    owner.ship_round().await;
    let report = owner.tier.collect_orphans(Duration::ZERO).await.unwrap();
    assert_eq!(report.manifests_deleted.len(), 3, "{report:?}");
    gate.resume.notify_one();
    match claimant.await.unwrap() {
        Err(seglog_tier::Error::ClaimLost { manifest_id, .. }) => assert_eq!(manifest_id, 5),
        other => panic!("the claim must be lost, got {other:?}"),
    }
    // The owner is still the owner: it ships and collects.
    owner.ship_round().await;
    owner.tier.collect_orphans(Duration::ZERO).await.unwrap();
    support::assert_a_restore_holds_what_was_shipped(
        &owner.store,
        &owner.prefix,
        &owner.log,
        &owner.tier,
        &root.path().join("r"),
    )
    .await;
}

/// A shipper that collects after every round keeps the manifest folder small while the log
/// seals and ships segment after segment, and a restore still holds every shipped event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipper_that_collects_orphans_prunes_manifests_as_it_goes() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let tier = Arc::new(Tier::claim(store.clone(), prefix.clone()).await.unwrap());
    let shipper = seglog_tier::Shipper::spawn_with(
        tier.clone(),
        log.clone(),
        Duration::from_millis(5),
        None,
        Some(seglog_tier::OrphanCollection {
            every: Duration::ZERO,
            grace: Duration::ZERO,
        }),
    );
    for round in 0..8 {
        support::write_events(&log, round * 20, round * 20 + 20).await;
        log.roll().await.unwrap();
        // Until this seal is named by a manifest.
        let sealed = log.segments().iter().filter(|s| s.sealed).count();
        while tier.manifest().await.segments.len() < sealed {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    shipper.stop().await.unwrap();
    let newest = tier.manifest().await;
    assert!(newest.manifest_id >= 9, "{}", newest.manifest_id);
    let ids = support::manifest_ids(store.as_ref(), &prefix).await;
    assert!(
        ids.len() <= 3 && ids.first() == Some(&1) && ids.last() == Some(&newest.manifest_id),
        "{ids:?}"
    );
    support::assert_a_restore_holds_what_was_shipped(
        &store,
        &prefix,
        &log,
        &tier,
        &root.path().join("r"),
    )
    .await;
}
