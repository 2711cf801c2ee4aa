//! Review 12 findings (seglog-tier), each a test that failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

/// A log shipped under the bucket's root (`s3://bucket` with no path: object_store's
/// parse_url gives the empty prefix) ships fine, but no manifest naming a segment can be
/// read back: Manifest::check requires every key to start with "{prefix}/" = "/", and the
/// keys are "segments/…". Restore (failover), claim, status all fail: shipped,
/// acknowledged data is unrecoverable through the tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_shipped_under_the_empty_prefix_can_be_restored() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("");
    let root = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let tier = seglog_tier::Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap();
    support::write_events(&log, 0, 120).await;
    log.roll().await.unwrap();
    let report = tier.ship(&log).await.unwrap();
    assert!(report.committed_manifest.is_some(), "{report:?}");
    let m = tier.manifest().await;
    let expected = support::events_of(&log, m.last_lsn());
    let restored = seglog_tier::restore(
        store.clone(),
        prefix.clone(),
        root.path().join("b"),
        support::options(),
    )
    .await;
    let restored = match restored {
        Ok(r) => r,
        Err(e) => panic!("restore of a shipped log under the empty prefix failed: {e}"),
    };
    assert_eq!(support::events_of(&restored.log, u64::MAX), expected);
}

/// Orphan collection lists `<prefix>/segments` recursively (object_store's `list` is
/// recursive) and judges every key by its file name only. A log whose prefix lies inside
/// another log's `segments/` folder (here log B at "tenants/acme/segments", nested under
/// log A at "tenants/acme") has all of its shipped segments deleted by A's collector:
/// they are unnamed by A's manifest and carry an epoch ≤ A's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_deletes_nothing_outside_its_own_log() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let prefix_a = Path::from("tenants/acme");
    let prefix_b = Path::from("tenants/acme/segments");
    // Log B ships (epoch 1).
    let log_b = seglog::Log::open(root.path().join("b"), support::options())
        .await
        .unwrap();
    let tier_b = seglog_tier::Tier::claim(store.clone(), prefix_b.clone())
        .await
        .unwrap();
    support::write_events(&log_b, 0, 120).await;
    log_b.roll().await.unwrap();
    tier_b.ship(&log_b).await.unwrap();
    // Log A is claimed twice (epoch 2), ships, collects its orphans.
    let _first = seglog_tier::Tier::claim(store.clone(), prefix_a.clone())
        .await
        .unwrap();
    let log_a = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let tier_a = seglog_tier::Tier::claim(store.clone(), prefix_a.clone())
        .await
        .unwrap();
    support::write_events(&log_a, 0, 50).await;
    log_a.roll().await.unwrap();
    tier_a.ship(&log_a).await.unwrap();
    let report = tier_a
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap();
    let of_b: Vec<_> = report
        .deleted
        .iter()
        .filter(|k| {
            k.starts_with("tenants/acme/segments/segments/")
                || k.starts_with("tenants/acme/segments/checkpoints/")
        })
        .collect();
    assert!(
        of_b.is_empty(),
        "A's collector deleted log B's objects: {of_b:?}"
    );
    support::assert_newest_manifest_complete(store.as_ref(), &prefix_b).await;
}

/// Review 12's open finding: the divergence check compared only how far the local log and
/// the manifest reach. A claim attached to a *wrong* local log that reaches further (here
/// another log, with more events) shipped a manifest naming only the wrong log's segments,
/// and orphan collection then deleted every segment the first owner had shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_attached_to_a_longer_wrong_log_is_refused_and_drops_nothing() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    // Log A ships.
    let log_a = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let tier_a = seglog_tier::Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap();
    support::write_events(&log_a, 0, 150).await;
    log_a.roll().await.unwrap();
    tier_a.ship(&log_a).await.unwrap();
    let shipped = tier_a.manifest().await;
    assert!(shipped.segments.len() >= 2, "{shipped:?}");
    let expected = support::events_of(&log_a, shipped.last_lsn());
    // Another node claims the log, but its tier is attached to a different, longer log.
    let wrong = seglog::Log::open(root.path().join("wrong"), support::options())
        .await
        .unwrap();
    support::write_events(&wrong, 1000, 1400).await;
    wrong.roll().await.unwrap();
    let tier_b = seglog_tier::Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap();
    let shipped_keys: Vec<String> = shipped.named_keys().map(str::to_string).collect();
    let err = tier_b.ship(&wrong).await.unwrap_err();
    assert!(
        matches!(err, seglog_tier::Error::Diverged(_)),
        "shipping a wrong, longer log must fail with Diverged: {err}"
    );
    let newest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    let named: Vec<String> = newest.named_keys().map(str::to_string).collect();
    assert_eq!(
        named, shipped_keys,
        "the newest manifest still names A's segments"
    );
    let report = tier_b
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap();
    for key in &shipped_keys {
        assert!(
            !report.deleted.contains(key),
            "collected {key}, shipped by A"
        );
        assert!(store.head(&Path::from(key.as_str())).await.is_ok(), "{key}");
    }
    // A's shipped events still restore whole.
    let c = seglog_tier::restore(
        store.clone(),
        prefix,
        root.path().join("c"),
        support::options(),
    )
    .await
    .unwrap();
    assert_eq!(support::events_of(&c.log, u64::MAX), expected);
}
