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
use seglog_tier::{FetchSegments, RestoreOptions, Tier};
use std::sync::Arc;
use support::fault::{Fault, FaultStore};

/// A log with sealed segments, a first ship done, more sealed segments to ship.
async fn setup(root: &std::path::Path) -> (Arc<FaultStore>, Tier, seglog::Log) {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    // Inline checkpoints: every shipped segment has one, so a lazy restore fetches none.
    let options = support::options().checkpoints(seglog::CheckpointMode::Inline);
    let log = seglog::Log::open(root.join("a"), options).await.unwrap();
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

/// Restores the log of `store` into `dir`, whole or lazily.
async fn restore_into(
    store: &Arc<dyn ObjectStore>,
    dir: &std::path::Path,
    lazily: bool,
) -> seglog_tier::Result<seglog_tier::Restored> {
    let restore_options = if lazily {
        RestoreOptions::default().fetch_segments(FetchSegments::Lazily)
    } else {
        RestoreOptions::default()
    };
    seglog_tier::restore_with(
        store.clone(),
        Path::from("p"),
        dir,
        support::options(),
        restore_options,
    )
    .await
}

/// Every event of a restored log (lazily restored segments are read through the bucket:
/// off the runtime's threads).
async fn read_restored(r: seglog_tier::Restored) -> support::Events {
    let log = r.log.clone();
    let events = tokio::task::spawn_blocking(move || support::events_of(&log, u64::MAX))
        .await
        .unwrap();
    r.log.close().unwrap();
    events
}

/// A restore that fails at any step (as a crash there would stop it) leaves nothing at its
/// destination: a directory holding part of a log must never open as a log (review 19: the
/// one holding everything but the restore's last step opened with the shipped active segment
/// still active, and every later ship failed with `Conflict`). Run again into the same
/// directory, it restores everything.
async fn a_failed_restore_leaves_its_destination_as_it_was(lazily: bool) {
    let root = tempfile::tempdir().unwrap();
    let (store, tier, log) = setup(root.path()).await;
    tier.ship(&log).await.unwrap();
    let dyn_store: Arc<dyn ObjectStore> = store.clone();
    // Count the operations of a clean restore.
    let before = store.ops();
    let counted = restore_into(&dyn_store, &root.path().join("count"), lazily)
        .await
        .unwrap();
    let steps = store.ops() - before;
    let expected = read_restored(counted).await;
    assert_eq!(
        expected,
        support::events_of(&log, tier.manifest().await.last_lsn())
    );

    for k in 1..=steps {
        for fault in [Fault::Before, Fault::AfterSuccess] {
            let context = format!("restore (lazily: {lazily}) fault at step {k} ({fault:?})");
            let dir = root.path().join(format!("r-{k}-{fault:?}"));
            // Half the destinations exist (empty) before the restore, as a mount point would.
            if k % 2 == 0 {
                std::fs::create_dir(&dir).unwrap();
            }
            store.arm(k, fault, false);
            let first = restore_into(&dyn_store, &dir, lazily).await;
            store.disarm();
            if let Ok(r) = first {
                assert_eq!(read_restored(r).await, expected, "{context}");
                continue;
            }
            // `LOCK` is no data: a restore leaves it (removing a lock file lets two hold it).
            let left: Vec<_> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.map(|e| e.unwrap().file_name())
                        .filter(|n| n != "LOCK")
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "{context}: the failed restore left {left:?}"
            );
            let again = restore_into(&dyn_store, &dir, lazily)
                .await
                .unwrap_or_else(|e| panic!("{context}: second restore: {e}"));
            assert_eq!(read_restored(again).await, expected, "{context}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_whole_restore_leaves_its_destination_as_it_was() {
    a_failed_restore_leaves_its_destination_as_it_was(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_lazy_restore_leaves_its_destination_as_it_was() {
    a_failed_restore_leaves_its_destination_as_it_was(true).await;
}

/// A crash during a restore leaves its destination marked (`RESTORE_IN_PROGRESS`, nobody
/// holding it) beside part of the log: no open, verification or read-only open takes the
/// directory for a log, and the next restore into it clears it and restores everything. A
/// destination holding anything else (no marker) is refused and left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_restores_directory_never_opens_and_the_next_restore_clears_it() {
    let root = tempfile::tempdir().unwrap();
    let (store, tier, log) = setup(root.path()).await;
    tier.ship(&log).await.unwrap();
    let expected = support::events_of(&log, tier.manifest().await.last_lsn());
    let dyn_store: Arc<dyn ObjectStore> = store.clone();

    // As a crash left it: the marker, part of a log.
    let dir = root.path().join("b");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("RESTORE_IN_PROGRESS"), b"").unwrap();
    let first_segment = std::fs::read_dir(root.path().join("a"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    std::fs::copy(&first_segment, dir.join(first_segment.file_name().unwrap())).unwrap();
    let refused = |e: &seglog::Error| {
        matches!(
            e,
            seglog::Error::Segment(seglog_segment::Error::RestoreInProgress { .. })
        )
    };
    let err = seglog::Log::open(&dir, support::options())
        .await
        .unwrap_err();
    assert!(refused(&err), "{err}");
    let err = seglog::Log::open_read_only(&dir).await.unwrap_err();
    assert!(refused(&err), "{err}");
    let err = seglog::verify_dir(&dir).unwrap_err();
    assert!(refused(&err), "{err}");
    let r = restore_into(&dyn_store, &dir, false).await.unwrap();
    assert!(!dir.join("RESTORE_IN_PROGRESS").exists());
    assert_eq!(read_restored(r).await, expected);

    // A directory holding something a restore did not write.
    let other = root.path().join("c");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("precious"), b"user data").unwrap();
    let err = restore_into(&dyn_store, &other, false).await.unwrap_err();
    assert!(
        matches!(&err, seglog_tier::Error::DestinationNotEmpty(p) if p == &other),
        "{err:?}"
    );
    assert_eq!(std::fs::read(other.join("precious")).unwrap(), b"user data");
    let names: Vec<_> = std::fs::read_dir(&other)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "LOCK")
        .collect();
    assert_eq!(names, ["precious"]);
}
