//! Review 31: the orphan collection the `Shipper` (and so the EventStore's bucket store, by
//! default) runs every `OrphanCollection::every`, seen from outside the claim: readers that
//! are not the owner, and a bucket where DELETEs fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::{OrphanCollection, Shipper, Tier};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::deletes::ControlledDeletes;

/// Finding 1 (cost, liveness): a failed collection is not rate-limited by
/// `OrphanCollection::every`. The shipper updates `last_collection` only after a collection
/// that succeeded, so once a collection starts failing for a reason that persists (a bucket
/// that refuses DELETE, as Object Lock or a no-delete IAM policy does; a manifest the build
/// cannot decode), it runs again **after every ship round**: with the EventStore's defaults
/// (`ship_interval` 1 s, collection on), one full LIST of `segments/`, `checkpoints/`,
/// `chunks/` and `manifest/` every second, and for each, one batch's ownership check (a LIST of
/// `manifest/` and a GET) **under the claim's state lock**, which every
/// `Durability::Remote` acknowledgement waits behind. The hourly collection becomes a
/// once-per-second one.
///
/// Here: a collection every 400 ms, rounds every 20 ms, deletes refused, for 2 s: at most
/// ~6 collections are expected; each one tries one DELETE (its first batch stops there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_that_keeps_failing_runs_after_every_round_not_every_period() {
    let root = tempfile::tempdir().unwrap();
    // A bucket whose policy refuses DELETE (S3 Object Lock / WORM, or an IAM role without
    // `s3:DeleteObject`: common for audit logs).
    let controlled = ControlledDeletes::new(Arc::new(InMemory::new()));
    controlled.refuse.store(true, Ordering::SeqCst);
    let (deletes, lists) = (controlled.deletes.clone(), controlled.lists.clone());
    let store: Arc<dyn ObjectStore> = controlled;
    let prefix = Path::from("p");
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let tier = Arc::new(Tier::claim(store.clone(), prefix.clone()).await.unwrap());
    // Two manifests of its own between its claim and its newest: a collection with zero
    // grace always has something to delete (the manifests it may prune).
    support::ship_a_round(&log, &tier, 0).await;
    support::ship_a_round(&log, &tier, 20).await;
    support::ship_a_round(&log, &tier, 40).await;

    let every = Duration::from_millis(400);
    let shipper = Shipper::spawn_with(
        tier.clone(),
        log.clone(),
        Duration::from_millis(20),
        None,
        Some(OrphanCollection {
            every,
            grace: Duration::ZERO,
        }),
    );
    let run = Duration::from_secs(2);
    tokio::time::sleep(run).await;
    shipper.stop().await.unwrap();

    // A collection's first batch fails at its first DELETE (the stream stops there): one
    // DELETE tried per collection.
    let collections_during_run = deletes.load(Ordering::SeqCst);
    assert!(collections_during_run > 0, "no collection ran");
    let allowed = (run.as_millis() / every.as_millis()) as u64 + 1;
    assert!(
        collections_during_run <= allowed,
        "{collections_during_run} collections (each a full listing of the prefix and an \
         ownership check under the claim's lock) ran in {run:?} with \
         OrphanCollection::every = {every:?}: a failing collection is retried after every \
         round (at most {allowed} expected); {} LISTs in all",
        lists.load(Ordering::SeqCst)
    );
    drop(log);
}

/// Finding 2 (false corruption for readers that are not the owner): the grace period counts
/// from an object's upload, not from the moment the newest manifest stopped naming it, so a
/// compaction's inputs (segments shipped long ago; grace zero stands for that here) go at the
/// first collection after the swap. A reader that read the newest manifest a moment before
/// (`seglog remote verify` / `dump`) and is still downloading finds a named segment missing,
/// and `verify` reported corruption on a healthy bucket. `read_newest` (which the CLI uses)
/// reads again through the newer manifest, and finds everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_racing_a_compaction_and_a_collection_reads_the_newer_manifest() {
    let root = tempfile::tempdir().unwrap();
    let faults = support::fault::FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let prefix = Path::from("p");
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let owner = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    support::write_events(&log, 0, 40).await;
    for i in 0..120 {
        let mut p = support::ERASED_MARKER.to_vec();
        p.extend(format!(" event {i} ").into_bytes());
        p.extend(std::iter::repeat_n(b'x', 60));
        log.append("gone-run", support::ERASED_TENANT, &p)
            .await
            .unwrap();
    }
    support::write_events(&log, 40, 80).await;
    log.roll().await.unwrap();
    owner.ship(&log).await.unwrap();

    // The reader's first segment download is held while the owner compacts, ships the swap
    // and collects.
    let gate = faults.pause_next_get("/segments/");
    let reader = tokio::spawn({
        let (store, prefix) = (store.clone(), prefix.clone());
        async move {
            seglog_tier::read_newest(store.as_ref(), &prefix, |manifest| {
                let store = store.clone();
                async move {
                    let mut missing = Vec::new();
                    for entry in &manifest.segments {
                        if let Err(e) = seglog_tier::fetch_segment(store.as_ref(), entry).await {
                            missing.push(format!("{}: {e}", entry.segment.key));
                        }
                    }
                    let bad = !missing.is_empty();
                    Ok::<_, seglog_tier::Error>((missing, bad))
                }
            })
            .await
        }
    });
    gate.reached.notified().await;
    let plan = seglog::compaction::policy::drop_tenant(
        &log.compaction_view(false).unwrap(),
        support::ERASED_TENANT,
    );
    log.compact(plan, seglog::CompactOptions::default())
        .await
        .unwrap();
    let swap = owner.ship(&log).await.unwrap();
    assert!(swap.committed_manifest.is_some(), "{swap:?}");
    let collected = owner.collect_orphans(Duration::ZERO).await.unwrap();
    assert!(!collected.deleted.is_empty(), "{collected:?}");
    gate.resume.notify_one();

    let (manifest, missing) = reader.await.unwrap().unwrap().unwrap();
    assert!(
        missing.is_empty(),
        "manifest {}: named segments missing: {missing:?}",
        manifest.manifest_id
    );
    assert_eq!(manifest.manifest_id, owner.manifest().await.manifest_id);
}
