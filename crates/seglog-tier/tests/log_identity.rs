//! The log identity in the bucket (docs/format.md §9, docs/scale-out.md "Manifest format"):
//! a manifest names the identity of the log it describes, and a local log of another
//! identity cannot ship over it, continue it, or claim it for its directory, even where its
//! segments would pass the divergence check (a wrong log compacted over the shipped LSNs);
//! a restore keeps the identity, and a manifest from before identities is named by the next
//! ship.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use seglog::compaction::policy;
use seglog::CompactOptions;
use seglog_tier::{Error, Manifest, Tier};
use std::sync::Arc;
use std::time::Duration;

/// Log A's events shipped under `prefix`: several sealed segments.
async fn shipped_log_a(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    root: &std::path::Path,
) -> (seglog::Log, Tier) {
    let log = seglog::Log::open(root.join("a"), support::options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    support::write_events(&log, 0, 150).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    assert!(tier.manifest().await.segments.len() >= 2);
    (log, tier)
}

/// Another log, over more LSNs than A shipped, every sealed segment of it rewritten by an
/// erasure: the divergence check sees only compaction outputs where the manifest's segments
/// were, which is what a compaction of log A itself would leave.
async fn compacted_wrong_log(root: &std::path::Path) -> seglog::Log {
    let wrong = seglog::Log::open(root.join("wrong"), support::options())
        .await
        .unwrap();
    let payload = vec![9u8; 150];
    for i in 0..600 {
        let tenant = if i % 2 == 0 { "keep" } else { "erase" };
        wrong
            .append(&format!("{tenant}-{}", i % 7), tenant, &payload)
            .await
            .unwrap();
    }
    let view = wrong.compaction_view(false).unwrap();
    let plan = policy::drop_tenant(&view, "erase");
    wrong
        .compact(plan, CompactOptions::default())
        .await
        .unwrap();
    assert!(wrong.segments().iter().filter(|s| s.sealed).count() >= 2);
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_log_compacted_over_the_shipped_lsns_cannot_ship_over_them() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    let (log_a, tier_a) = shipped_log_a(&store, &prefix, root.path()).await;
    let shipped = tier_a.manifest().await;
    assert_eq!(
        shipped.log_identity(),
        log_a.log_id(),
        "the manifest names log A"
    );
    let expected = support::events_of(&log_a, shipped.last_lsn());
    log_a.close().unwrap();
    drop(log_a);

    let wrong = compacted_wrong_log(root.path()).await;
    assert_ne!(wrong.log_id(), shipped.log_identity());
    let tier_b = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    let refused = tier_b.ship(&wrong).await;
    assert!(
        matches!(refused, Err(Error::Diverged(_))),
        "another log shipped over log A's prefix: {refused:?}"
    );
    let refused = seglog_tier::check_continues(store.as_ref(), &prefix, &wrong).await;
    assert!(matches!(refused, Err(Error::Diverged(_))), "{refused:?}");
    // Nothing of A's was dropped: collection keeps every object the newest manifest names,
    // and a restore finds A's events.
    tier_b.collect_orphans(Duration::ZERO).await.unwrap();
    support::assert_newest_manifest_complete(store.as_ref(), &prefix).await;
    let restored = seglog_tier::restore(
        store.clone(),
        prefix.clone(),
        root.path().join("restored"),
        support::options(),
    )
    .await
    .unwrap();
    assert_eq!(
        support::events_of(&restored.log, shipped.last_lsn()),
        expected
    );
    assert_eq!(restored.log.log_id(), shipped.log_identity());
    restored.log.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_for_another_logs_directory_is_refused_before_it_fences_the_owner() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    let (log_a, tier_a) = shipped_log_a(&store, &prefix, root.path()).await;
    let wrong = seglog::Log::open(root.path().join("wrong"), support::options())
        .await
        .unwrap();
    support::write_events(&wrong, 0, 10).await;
    let wrong_dir = wrong.dir().to_path_buf();
    wrong.close().unwrap();
    drop(wrong);
    let ids_before = support::manifest_ids(store.as_ref(), &prefix).await;
    let refused = Tier::claim_for_directory(store.clone(), prefix.clone(), &wrong_dir).await;
    assert!(
        matches!(refused, Err(Error::Diverged(_))),
        "{:?}",
        refused.map(|_| ())
    );
    assert_eq!(
        support::manifest_ids(store.as_ref(), &prefix).await,
        ids_before,
        "the refused claim wrote a manifest"
    );
    // A is still the owner.
    support::write_events(&log_a, 150, 200).await;
    log_a.roll().await.unwrap();
    tier_a.ship(&log_a).await.unwrap();
    log_a.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_log_keeps_the_identity_and_continues_the_prefix() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    let (log_a, _tier_a) = shipped_log_a(&store, &prefix, root.path()).await;
    let id = log_a.log_id().unwrap();
    drop(log_a);
    let restored = seglog_tier::restore(
        store.clone(),
        prefix.clone(),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    assert_eq!(restored.log.log_id(), Some(id));
    support::write_events(&restored.log, 150, 200).await;
    restored.log.roll().await.unwrap();
    restored.tier.ship(&restored.log).await.unwrap();
    assert_eq!(restored.tier.manifest().await.log_identity(), Some(id));
    let dir = restored.log.dir().to_path_buf();
    restored.log.close().unwrap();
    drop(restored);
    let reopened = seglog::Log::open(&dir, support::options()).await.unwrap();
    assert_eq!(
        reopened.log_id(),
        Some(id),
        "the identity survives a reopen"
    );
    reopened.close().unwrap();
}

/// A manifest written before identities (no `log_id`, as an older build's claim leaves it):
/// the next owner's first ship names its log's identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_from_before_identities_gets_the_log_id_at_the_next_ship() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    let (log_a, tier_a) = shipped_log_a(&store, &prefix, root.path()).await;
    let mut older = tier_a.manifest().await;
    older.manifest_id += 1;
    older.writer_epoch += 1;
    older.writer_nonce = "ffeeddccbbaa99887766554433221100".into();
    older.log_id = None;
    let key = seglog_tier::manifest_key(&prefix, older.manifest_id);
    store
        .put(&key, PutPayload::from(older.encode(&key).unwrap()))
        .await
        .unwrap();
    let tier_c = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    assert_eq!(tier_c.manifest().await.log_id, None);
    let report = tier_c.ship(&log_a).await.unwrap();
    assert!(report.committed_manifest.is_some(), "{report:?}");
    let newest: Manifest = tier_c.manifest().await;
    assert_eq!(newest.log_identity(), log_a.log_id());
    log_a.close().unwrap();
}

/// The same, with a directory that holds a log but no identity (made before identities, or
/// its `LOG_ID` lost), while the bucket's manifest names one: the directory cannot be the
/// bucket's log (its writer makes `LOG_ID` before any ship names it), and a claim for it
/// would fence the owner, after which its own first ship would be refused. It used to pass
/// the identity check (nothing to compare).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_for_a_directory_without_an_identity_is_refused_when_the_bucket_names_one() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    let (log_a, tier_a) = shipped_log_a(&store, &prefix, root.path()).await;
    let wrong = seglog::Log::open(root.path().join("wrong"), support::options())
        .await
        .unwrap();
    support::write_events(&wrong, 0, 10).await;
    let wrong_dir = wrong.dir().to_path_buf();
    wrong.close().unwrap();
    drop(wrong);
    std::fs::remove_file(wrong_dir.join(seglog_segment::format::LOG_ID_FILE_NAME)).unwrap();
    let ids_before = support::manifest_ids(store.as_ref(), &prefix).await;
    let refused = Tier::claim_for_directory(store.clone(), prefix.clone(), &wrong_dir).await;
    assert!(
        matches!(refused, Err(Error::Diverged(_))),
        "{:?}",
        refused.map(|_| ())
    );
    assert_eq!(
        support::manifest_ids(store.as_ref(), &prefix).await,
        ids_before,
        "the refused claim wrote a manifest"
    );
    // A is still the owner; and a restore into an empty directory still claims.
    support::write_events(&log_a, 150, 200).await;
    log_a.roll().await.unwrap();
    tier_a.ship(&log_a).await.unwrap();
    log_a.close().unwrap();
    let restored = seglog_tier::restore(
        store.clone(),
        prefix.clone(),
        root.path().join("empty"),
        support::options(),
    )
    .await
    .unwrap();
    restored.log.close().unwrap();
}
