//! Shipping under injected faults, at every step: the store fails the k-th operation of a
//! ship round (before applying it, or after: a timeout after success), with the node either
//! crashing there or carrying on. Whatever happens, the newest manifest names only whole
//! objects, a fresh node restores every event of the shipped range, and orphan collection
//! leaves exactly the named objects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::Tier;
use std::sync::Arc;
use support::fault::{Fault, FaultStore};

/// A log with sealed segments, a first ship done, more sealed segments to ship.
async fn setup(root: &std::path::Path) -> (Arc<FaultStore>, Tier, seglog::Log) {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    let log = seglog::Log::open(root.join("a"), support::options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), Path::from("p")).await.unwrap();
    support::write_events(&log, 0, 80).await;
    tier.ship(&log).await.unwrap();
    support::write_events(&log, 80, 200).await;
    log.roll().await.unwrap();
    (store, tier, log)
}

/// Restores on a fresh node and checks it against node A's events up to the newest manifest.
async fn check_restore(
    store: Arc<FaultStore>,
    log_a: &seglog::Log,
    dir: std::path::PathBuf,
    context: &str,
) {
    let dyn_store: Arc<dyn ObjectStore> = store.clone();
    support::assert_newest_manifest_complete(dyn_store.as_ref(), &Path::from("p")).await;
    let newest = seglog_tier::latest_manifest(dyn_store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    let b = seglog_tier::restore(dyn_store.clone(), Path::from("p"), dir, support::options())
        .await
        .unwrap_or_else(|e| panic!("{context}: restore failed: {e}"));
    let expected = support::events_of(log_a, newest.last_lsn());
    assert_eq!(support::events_of(&b.log, u64::MAX), expected, "{context}");
    // Orphans: with no grace, the new owner leaves exactly what its manifest names.
    b.tier
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap();
    let named: Vec<String> = b
        .tier
        .manifest()
        .await
        .named_keys()
        .map(str::to_string)
        .collect();
    let objects: Vec<String> = support::keys(dyn_store.as_ref(), &Path::from("p"))
        .await
        .into_iter()
        .filter(|k| !k.contains("/manifest/"))
        .collect();
    for key in &objects {
        assert!(named.contains(key), "{context}: orphan {key} left");
    }
    assert_eq!(
        objects.len(),
        named.len(),
        "{context}: a named object is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_ship_leaves_a_restorable_bucket() {
    // Count the operations of a clean second round.
    let root = tempfile::tempdir().unwrap();
    let (store, tier, log) = setup(root.path()).await;
    let before = store.ops();
    let report = tier.ship(&log).await.unwrap();
    assert!(report.segments_uploaded >= 3, "{report:?}");
    let steps = store.ops() - before;
    assert!(steps >= 4, "{steps} steps");

    let mut outcomes = [0usize; 2];
    for k in 1..=steps + 1 {
        for fault in [Fault::Before, Fault::AfterSuccess] {
            let context = format!("crash at step {k} ({fault:?})");
            let root = tempfile::tempdir().unwrap();
            let (store, tier, log) = setup(root.path()).await;
            store.arm(k, fault, true);
            let result = tier.ship(&log).await;
            outcomes[usize::from(result.is_ok())] += 1;
            store.disarm();
            check_restore(store.clone(), &log, root.path().join("b"), &context).await;
            // The crashed node, if it comes back, is fenced and deletes nothing.
            let present = support::keys(store.as_ref(), &Path::from("p")).await;
            let err = tier.ship(&log).await;
            assert!(
                err.is_err_and(|e| e.is_fenced()),
                "{context}: the old owner's next ship is fenced"
            );
            assert!(log.is_poisoned(), "{context}");
            assert!(
                tier.collect_orphans(std::time::Duration::ZERO)
                    .await
                    .is_err(),
                "{context}"
            );
            let after = support::keys(store.as_ref(), &Path::from("p")).await;
            for key in &present {
                assert!(
                    after.contains(key),
                    "{context}: the fenced node deleted {key}"
                );
            }
            let newest = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
                .await
                .unwrap()
                .unwrap();
            assert!(
                newest.writer_epoch > tier.epoch(),
                "{context}: the fenced node wrote no manifest"
            );
        }
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "some rounds failed, some succeeded: {outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ship_that_fails_once_at_any_step_succeeds_when_run_again() {
    let root = tempfile::tempdir().unwrap();
    let (store, tier, log) = setup(root.path()).await;
    let before = store.ops();
    tier.ship(&log).await.unwrap();
    let steps = store.ops() - before;

    for k in 1..=steps {
        for fault in [Fault::Before, Fault::AfterSuccess] {
            let context = format!("transient fault at step {k} ({fault:?})");
            let root = tempfile::tempdir().unwrap();
            let (store, tier, log) = setup(root.path()).await;
            store.arm(k, fault, false);
            let first = tier.ship(&log).await;
            store.disarm();
            // Run again until nothing is left to ship.
            let second = tier
                .ship(&log)
                .await
                .unwrap_or_else(|e| panic!("{context}: {e} (first: {first:?})"));
            let third = tier.ship(&log).await.unwrap();
            assert_eq!(third.committed_manifest, None, "{context}: {second:?}");
            let sealed = log.segments().into_iter().filter(|s| s.sealed).count();
            assert_eq!(tier.manifest().await.segments.len(), sealed, "{context}");
            check_restore(store.clone(), &log, root.path().join("b"), &context).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_fails_at_any_step_can_be_run_again_into_a_fresh_directory() {
    // Count the operations of a clean restore.
    let root = tempfile::tempdir().unwrap();
    let (store, tier, log) = setup(root.path()).await;
    tier.ship(&log).await.unwrap();
    let before = store.ops();
    let dyn_store: Arc<dyn ObjectStore> = store.clone();
    seglog_tier::restore(
        dyn_store.clone(),
        Path::from("p"),
        root.path().join("count"),
        support::options(),
    )
    .await
    .unwrap();
    let steps = store.ops() - before;
    let expected = support::events_of(&log, tier.manifest().await.last_lsn());

    for k in 1..=steps {
        for fault in [Fault::Before, Fault::AfterSuccess] {
            let context = format!("restore fault at step {k} ({fault:?})");
            let dir = root.path().join(format!("r-{k}-{fault:?}"));
            store.arm(k, fault, false);
            let first =
                seglog_tier::restore(dyn_store.clone(), Path::from("p"), &dir, support::options())
                    .await;
            store.disarm();
            if let Ok(r) = first {
                assert_eq!(support::events_of(&r.log, u64::MAX), expected, "{context}");
                continue;
            }
            // A failed restore may leave a partial directory and may have claimed: neither
            // keeps a second one, into a fresh directory, from restoring everything.
            let again = seglog_tier::restore(
                dyn_store.clone(),
                Path::from("p"),
                dir.with_extension("again"),
                support::options(),
            )
            .await
            .unwrap_or_else(|e| panic!("{context}: second restore: {e}"));
            assert_eq!(
                support::events_of(&again.log, u64::MAX),
                expected,
                "{context}"
            );
        }
    }
}
