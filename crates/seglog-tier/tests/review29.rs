//! Review 29: manifest pruning (`Tier::collect_orphans`), the claim that lands below a newer
//! manifest (`ClaimLost`), the relisting reader, and the orphan collection the `Shipper`
//! (and so the EventStore's bucket store, by default) now runs on the owner's claim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use seglog_tier::{RemoteDurable, Tier};
use std::sync::Arc;
use std::time::Duration;
use support::deletes::{ControlledDeletes, UnnamedUpload};
use support::fault::FaultStore;

/// A `Durability::Remote` writer whose log has sealed and shipped a few segments, so that
/// the chunk folders of the segments that were active before are orphans (each round of an
/// append under load leaves one chunk object; a busy log makes ~20–33 a second on S3).
async fn remote_writer_with_orphan_chunks(
    store: Arc<dyn ObjectStore>,
    dir: &std::path::Path,
) -> (RemoteDurable, seglog::Log) {
    let (remote, log) = support::remote::remote_writer(store, dir).await;
    let mut i = 0;
    for _ in 0..3 {
        for _ in 0..10 {
            let exec = format!("exec-{}", i % support::EXECUTIONS);
            remote
                .append(&exec, "tenant-a", &support::payload_of(i))
                .await
                .unwrap();
            i += 1;
        }
        log.roll().await.unwrap();
    }
    remote.wait_in_bucket().await.unwrap();
    (remote, log)
}

/// Finding 1 (hang of acknowledgements). `collect_orphans` holds the claim's state lock for
/// its whole run: the ownership check, the LISTs of `segments/`, `checkpoints/`, `chunks/`
/// and `manifest/`, and every DELETE, one after the other. A `Durability::Remote` round needs
/// the same lock (`ship_acknowledging` → `ship_round`), so while a collection runs no append
/// is acknowledged. Since 03888ae the `Shipper` runs a collection on the same claim as the
/// `RemoteDurable` (the EventStore's bucket store does it by default, every hour), and under
/// remote durability every round leaves a chunk object (20–33 a second on S3): an hour's
/// worth is ~70–120k orphan chunks, deleted one DELETE at a time (20–50 ms each) with the
/// lock held, i.e. every append of the log stalls for tens of minutes every hour. Here one
/// DELETE is held to stand for that: the append made meanwhile is not acknowledged until the
/// collection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_collection_does_not_stall_remote_durable_appends() {
    let root = tempfile::tempdir().unwrap();
    let slow = ControlledDeletes::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = slow.clone();
    let (remote, _log) =
        remote_writer_with_orphan_chunks(store.clone(), &root.path().join("a")).await;

    let gate = slow.pause_next_delete();
    let collector = tokio::spawn({
        let tier = remote.tier().clone();
        async move { tier.collect_orphans(Duration::ZERO).await }
    });
    gate.reached.notified().await;

    // The collection is in the middle of its deletes (a slow DELETE, or the ten-thousandth
    // of an hour's chunks). An append now:
    let acked = tokio::time::timeout(
        Duration::from_secs(5),
        remote.append("exec-0", "tenant-a", b"made during a collection"),
    )
    .await;
    gate.resume.notify_one();
    let report = collector.await.unwrap().unwrap();
    assert!(!report.deleted.is_empty(), "{report:?}");
    assert!(
        matches!(acked, Ok(Ok(_))),
        "an append under Durability::Remote waited for the whole orphan collection \
         (not acknowledged within 5 s while one of its DELETEs was in flight): {acked:?}"
    );
    remote.stop().await.unwrap();
}

/// Finding 1, measured: with 40 orphan objects and 50 ms per DELETE (S3 is 20–50 ms for a
/// single DELETE; the collection now sends bulk deletes of up to 100 keys), an
/// append made right after a `Shipper` started its collection on the `RemoteDurable`'s claim
/// (the EventStore's bucket store set-up) waits for every DELETE. Without the collection it
/// takes milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipper_collection_on_the_remote_claim_stalls_appends_for_every_delete() {
    let root = tempfile::tempdir().unwrap();
    let slow = ControlledDeletes::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = slow.clone();
    let (remote, log) =
        remote_writer_with_orphan_chunks(store.clone(), &root.path().join("a")).await;
    // More orphans: uploads of this writer's epoch that no manifest names (a round that
    // failed before its commit leaves such), old enough for any grace.
    let epoch = remote.tier().epoch();
    for k in 0..40u64 {
        let key =
            seglog_tier::segment_key(&support::remote::prefix(), 1_000_000 + k, 900 + k, k, epoch);
        store
            .put(&key, bytes::Bytes::from_static(b"orphan").into())
            .await
            .unwrap();
    }
    *slow.delay.lock().unwrap() = Some(Duration::from_millis(50));

    let started = std::time::Instant::now();
    let quick = remote.append("exec-1", "tenant-a", b"before").await;
    let baseline = started.elapsed();
    quick.unwrap();

    let shipper = seglog_tier::Shipper::spawn_with(
        remote.tier().clone(),
        log.clone(),
        Duration::from_millis(1),
        None,
        Some(seglog_tier::OrphanCollection {
            every: Duration::ZERO,
            grace: Duration::ZERO,
        }),
    );
    // Until the collection is deleting.
    let before = slow.deletes.load(std::sync::atomic::Ordering::SeqCst);
    while slow.deletes.load(std::sync::atomic::Ordering::SeqCst) == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = std::time::Instant::now();
    remote
        .append("exec-2", "tenant-a", b"during the collection")
        .await
        .unwrap();
    let during = started.elapsed();
    *slow.delay.lock().unwrap() = None;
    shipper.stop().await.unwrap();
    remote.stop().await.unwrap();
    // The collection's deletes take 40 × 50 ms = 2 s and more; an append that waits for
    // them is well over 1.5 s, one that does not takes milliseconds.
    assert!(
        during < Duration::from_millis(1500),
        "an append took {during:?} during an orphan collection (baseline {baseline:?}): \
         it waited for the collection's deletes"
    );
}

/// Finding 2 (a lost claim reported as a rule-breaking `Conflict`). A claimant lists 3 as
/// the newest; its create-only PUT of 4 finds the owner's 4 there (AlreadyExists); before
/// its read back of 4, the owner commits 5 and prunes 2..4. The read back finds nothing, and
/// `commit_manifest` reports "the store reported the manifest exists, then that it does not"
/// (`Conflict`): the bucket is said to break the rules, where the claim was simply lost to
/// a live owner (`ClaimLost`, which the docs promise for a claim that is not the newest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_read_back_races_a_prune_is_lost_not_a_conflict() {
    let root = tempfile::tempdir().unwrap();
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let prefix = Path::from("p");
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let owner = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    support::ship_a_round(&log, &owner, 0).await;
    support::ship_a_round(&log, &owner, 20).await;
    assert_eq!(owner.manifest().await.manifest_id, 3);

    let four = "manifest/00000000000000000004";
    let put_gate = faults.pause_next_put(four);
    let claimant = tokio::spawn({
        let (store, prefix) = (store.clone(), prefix.clone());
        async move { Tier::claim(store, prefix).await }
    });
    put_gate.reached.notified().await;
    // The owner's PUT of 4 goes through (the gate held only the claimant's), then 5.
    support::ship_a_round(&log, &owner, 40).await;
    support::ship_a_round(&log, &owner, 60).await;
    let get_gate = faults.pause_next_get(four);
    put_gate.resume.notify_one();
    get_gate.reached.notified().await;
    let report = owner.collect_orphans(Duration::ZERO).await.unwrap();
    assert!(
        report.manifests_deleted.iter().any(|k| k.ends_with(four)),
        "{report:?}"
    );
    get_gate.resume.notify_one();
    match claimant.await.unwrap() {
        Err(seglog_tier::Error::ClaimLost { .. }) => {}
        other => panic!("the claim lost to a live owner; got {other:?}"),
    }
    // And the owner still owns the log.
    support::ship_a_round(&log, &owner, 80).await;
}

/// Probe (passed before the fixes: checked, not a finding). A directory claim (`claim_for_directory`, its
/// `TIER_CLAIM` written first) stalls between its LIST of 3 and its PUT of 4; the owner
/// commits 4 and 5 and prunes 2..4; the PUT lands in the freed 4 and the claim is lost. The
/// owner goes on (6) and dies. The directory's next claim reuses the record's nonce (its
/// epoch is one above the newest's), at 7: the stray 4 carries the same epoch and nonce,
/// below the claim, where nothing reads it. The old owner is fenced by 7, and a restore
/// holds everything it shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_a_stray_directory_claim_and_its_nonce_reuse_stay_harmless() {
    let root = tempfile::tempdir().unwrap();
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let prefix = Path::from("p");
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let owner = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    support::ship_a_round(&log, &owner, 0).await;
    support::ship_a_round(&log, &owner, 20).await;

    let dir_c = root.path().join("c");
    std::fs::create_dir_all(&dir_c).unwrap();
    let put_gate = faults.pause_next_put("manifest/00000000000000000004");
    let claimant = tokio::spawn({
        let (store, prefix, dir) = (store.clone(), prefix.clone(), dir_c.clone());
        async move { Tier::claim_for_directory(store, prefix, &dir).await }
    });
    put_gate.reached.notified().await;
    support::ship_a_round(&log, &owner, 40).await;
    support::ship_a_round(&log, &owner, 60).await;
    owner.collect_orphans(Duration::ZERO).await.unwrap();
    assert_eq!(
        support::manifest_ids(store.as_ref(), &prefix).await,
        vec![1, 5]
    );
    put_gate.resume.notify_one();
    let lost = claimant.await.unwrap().unwrap_err();
    assert!(
        matches!(lost, seglog_tier::Error::ClaimLost { .. }),
        "{lost}"
    );
    assert_eq!(
        support::manifest_ids(store.as_ref(), &prefix).await,
        vec![1, 4, 5]
    );
    support::ship_a_round(&log, &owner, 80).await;
    let shipped = owner.manifest().await;

    let c = Tier::claim_for_directory(store.clone(), prefix.clone(), &dir_c)
        .await
        .unwrap();
    assert_eq!(c.manifest().await.manifest_id, 7);
    let stray = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stray.manifest_id, 7);
    support::write_events(&log, 100, 120).await;
    log.roll().await.unwrap();
    assert!(owner.ship(&log).await.unwrap_err().is_fenced());
    assert!(owner
        .collect_orphans(Duration::ZERO)
        .await
        .unwrap_err()
        .is_fenced());
    c.collect_orphans(Duration::ZERO).await.unwrap();
    let restored = seglog_tier::restore(
        store.clone(),
        prefix.clone(),
        root.path().join("r"),
        support::options(),
    )
    .await
    .unwrap();
    assert_eq!(
        support::events_of(&restored.log, u64::MAX),
        support::events_of(&log, shipped.last_lsn())
    );
}

/// Suspicion raised by the review, turned into a test: the newest manifest deleted outside
/// the rules (an operator, a lifecycle rule) must not make `latest_manifest` (and so a claim
/// or a restore) quietly take the one below it; that would hand the log a stale segment
/// list. A manifest listed as the newest may only vanish when a newer one follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newest_manifest_deleted_outside_the_rules_is_an_error_not_a_fallback() {
    let root = tempfile::tempdir().unwrap();
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let prefix = Path::from("p");
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let owner = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    support::ship_a_round(&log, &owner, 0).await;
    support::ship_a_round(&log, &owner, 20).await;
    // The reader lists 3 as the newest; 3 is then deleted, and nothing follows it.
    let three = "manifest/00000000000000000003";
    let gate = faults.pause_next_get(three);
    let reader = tokio::spawn({
        let (store, prefix) = (store.clone(), prefix.clone());
        async move { seglog_tier::latest_manifest(store.as_ref(), &prefix).await }
    });
    gate.reached.notified().await;
    store
        .delete(&Path::from(format!("p/{three}")))
        .await
        .unwrap();
    gate.resume.notify_one();
    match reader.await.unwrap() {
        Err(seglog_tier::Error::Conflict { .. }) => {}
        other => panic!("a vanished newest manifest must be an error, got {other:?}"),
    }
    // (A reader that lists only after the deletion cannot tell: it sees 2 as the newest.
    // Only one that saw 3 listed can, and it says so.)
}

/// A round of `setup`'s owner now, and then the checks: it ends (within 10 s), its manifest names only
/// objects that exist, and a restore holds what it shipped.
async fn round_while(
    setup: &UnnamedUpload,
    release: impl std::future::Future<Output = ()>,
    dir: &std::path::Path,
) {
    let round = tokio::spawn({
        let (owner, log) = (setup.owner.clone(), setup.log.clone());
        async move { owner.ship(&log).await }
    });
    // Long enough for a round that reuses the objects to commit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.await;
    tokio::time::timeout(Duration::from_secs(10), round)
        .await
        .expect("the round hung")
        .unwrap()
        .unwrap();
    support::assert_newest_manifest_complete(setup.store.as_ref(), &setup.prefix).await;
    support::assert_a_restore_holds_what_was_shipped(
        &setup.store,
        &setup.prefix,
        &setup.log,
        &setup.owner,
        dir,
    )
    .await;
}

/// The fix of finding 1 deletes outside the claim's lock, so a ship round can run while a
/// batch is being deleted. The collection's DELETE of the failed round's upload (an orphan
/// with grace zero) is held; the next round must not reuse the object about to vanish (its
/// manifest would name a missing object): it waits for the deletion and uploads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_does_not_reuse_an_upload_that_a_collection_is_deleting() {
    let root = tempfile::tempdir().unwrap();
    let setup = UnnamedUpload::new(&root.path().join("a")).await;
    let gate = setup.deletes.pause_next_delete();
    let collector = tokio::spawn({
        let owner = setup.owner.clone();
        async move { owner.collect_orphans(Duration::ZERO).await }
    });
    gate.reached.notified().await;
    let release = async {
        gate.resume.notify_one();
        collector.await.unwrap().unwrap();
    };
    round_while(&setup, release, &root.path().join("r")).await;
}

/// The same with the collection dropped (its task aborted, as a caller's timeout would)
/// while its DELETE is held: the DELETE may still land, so the round must still wait for it,
/// and must not wait forever (the batch's keys stay marked as being deleted until it ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_dropped_mid_batch_neither_hangs_rounds_nor_lets_them_reuse_the_upload() {
    let root = tempfile::tempdir().unwrap();
    let setup = UnnamedUpload::new(&root.path().join("a")).await;
    let gate = setup.deletes.pause_next_delete();
    let collector = tokio::spawn({
        let owner = setup.owner.clone();
        async move { owner.collect_orphans(Duration::ZERO).await }
    });
    gate.reached.notified().await;
    collector.abort();
    assert!(collector.await.unwrap_err().is_cancelled());
    let release = async {
        gate.resume.notify_one();
    };
    round_while(&setup, release, &root.path().join("r")).await;
}
