//! Chunk shipping of the active segment (`Tier::with_active_chunks`): the loss window is one
//! ship round, not the active segment. A restore rebuilds the active segment's durable
//! prefix from its chunks and closes them with an end marker, which the previous owner's
//! next chunk collides with. Crash at every step of a round that ships chunks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::Tier;
use std::sync::Arc;
use support::fault::{Fault, FaultStore};

/// Larger segments than the other tests': the active segment holds many events.
#[allow(clippy::field_reassign_with_default)]
fn options() -> seglog::Options {
    let mut o = seglog::Options::default();
    o.segment_size_bytes = 64 * 1024;
    o
}

fn prefix() -> Path {
    Path::from("p")
}

/// Every object key under the prefix that is a chunk of `folder`.
async fn chunk_keys(store: &dyn ObjectStore, folder: &Path) -> Vec<String> {
    support::keys(store, folder).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_rebuilds_the_active_segment_from_its_chunks() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let dir_a = root.path().join("a");
    let log = seglog::Log::open(&dir_a, options()).await.unwrap();
    let tier = Tier::claim(store.clone(), prefix())
        .await
        .unwrap()
        .with_active_chunks();
    support::write_events(&log, 0, 40).await;
    let first = tier.ship(&log).await.unwrap();
    assert!(
        first.committed_manifest.is_some() && first.chunks_uploaded == 1,
        "{first:?}"
    );
    support::write_events(&log, 40, 90).await;
    let second = tier.ship(&log).await.unwrap();
    assert_eq!(
        second.committed_manifest, None,
        "no new manifest: {second:?}"
    );
    assert_eq!(second.chunks_uploaded, 1, "{second:?}");
    assert_eq!(
        tier.ship(&log).await.unwrap().chunks_uploaded,
        0,
        "nothing new, no chunk"
    );
    let manifest = tier.manifest().await;
    assert!(manifest.segments.is_empty(), "nothing sealed yet");
    let active = manifest.active.unwrap();
    assert_eq!(manifest.format_version, seglog_tier::FORMAT_VERSION);
    // Node A is lost, its active segment with it.
    let expected = support::events_of(&log, u64::MAX);
    drop(log);
    std::fs::remove_dir_all(&dir_a).unwrap();

    let b = seglog_tier::restore(store.clone(), prefix(), root.path().join("b"), options())
        .await
        .unwrap();
    assert!(b.report.active_bytes > 0, "{:?}", b.report);
    assert_eq!(support::events_of(&b.log, u64::MAX), expected);
    // The chunks are closed: an end marker after the two chunks.
    let folder = seglog_tier::chunk_folder(&prefix(), &active);
    assert_eq!(chunk_keys(store.as_ref(), &folder).await.len(), 3);
    // B appends to a fresh segment and ships; C restores all of it.
    let b_tier = Arc::new(b.tier.with_active_chunks());
    support::write_events(&b.log, 90, 120).await;
    let shipped = b_tier.ship(&b.log).await.unwrap();
    assert!(
        shipped.segments_uploaded == 1 && shipped.chunks_uploaded == 1,
        "{shipped:?}"
    );
    let c = seglog_tier::restore(store.clone(), prefix(), root.path().join("c"), options())
        .await
        .unwrap();
    assert_eq!(
        support::events_of(&c.log, u64::MAX),
        support::events_of(&b.log, u64::MAX)
    );
    // B's orphan collection (fenced by C) deletes nothing; C's removes A's old chunks only.
    assert!(b_tier
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap_err()
        .is_fenced());
    let gc = c
        .tier
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        gc.deleted.len(),
        3,
        "A's two chunks and B's end marker: {gc:?}"
    );
    support::assert_newest_manifest_complete(store.as_ref(), &prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_failover_restores_the_active_segment_and_fences_the_zombie() {
    let root = tempfile::tempdir().unwrap();
    support::scenario_chunk_failover(Arc::new(InMemory::new()), prefix(), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_writer_ships_no_chunk_after_the_restore_and_its_log_refuses_appends() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(root.path().join("a"), options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), prefix())
        .await
        .unwrap()
        .with_active_chunks();
    support::write_events(&log, 0, 40).await;
    tier.ship(&log).await.unwrap();
    let active = tier.manifest().await.active.unwrap();
    let b = seglog_tier::restore(store.clone(), prefix(), root.path().join("b"), options())
        .await
        .unwrap();
    let restored = support::events_of(&b.log, u64::MAX);
    assert_eq!(restored, support::events_of(&log, u64::MAX));
    let folder = seglog_tier::chunk_folder(&prefix(), &active);
    let closed = chunk_keys(store.as_ref(), &folder).await;
    // The zombie appends and ships: fenced; its chunk is nowhere, its log refuses appends.
    support::write_events(&log, 40, 60).await;
    let err = tier.ship(&log).await.unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(log.append("exec-0", "tenant-a", b"late").await.is_err());
    assert_eq!(chunk_keys(store.as_ref(), &folder).await, closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombies_chunk_racing_a_restore_is_either_restored_or_collides_with_the_end_marker() {
    for zombie_first in [false, true] {
        let context = if zombie_first {
            "zombie's chunk lands first"
        } else {
            "end marker first"
        };
        let faults = FaultStore::new(Arc::new(InMemory::new()));
        let store: Arc<dyn ObjectStore> = faults.clone();
        let root = tempfile::tempdir().unwrap();
        let log = seglog::Log::open(root.path().join("a"), options())
            .await
            .unwrap();
        let tier = Arc::new(
            Tier::claim(store.clone(), prefix())
                .await
                .unwrap()
                .with_active_chunks(),
        );
        support::write_events(&log, 0, 40).await;
        tier.ship(&log).await.unwrap();
        let folder = seglog_tier::chunk_folder(&prefix(), &tier.manifest().await.active.unwrap());
        // The zombie's round passes its manifest check (nobody has claimed yet), then stalls
        // before its chunk PUT (chunk 1).
        support::write_events(&log, 40, 70).await;
        let zombie_gate = faults.pause_next_put("/chunks/");
        let zombie = {
            let (tier, log) = (tier.clone(), log.clone());
            tokio::spawn(async move { tier.ship(&log).await })
        };
        zombie_gate.reached.notified().await;
        // Meanwhile another node restores: its end marker PUT (also chunk 1) stalls too.
        let restore_gate = faults.pause_next_put("/chunks/");
        let restorer = {
            let (store, dir) = (store.clone(), root.path().join("b"));
            tokio::spawn(async move { seglog_tier::restore(store, prefix(), dir, options()).await })
        };
        restore_gate.reached.notified().await;
        // The first PUT lands before the second is let go (no sleep: CI machines are slow).
        let zombie_result = if zombie_first {
            zombie_gate.resume.notify_one();
            let r = zombie.await.unwrap();
            restore_gate.resume.notify_one();
            r
        } else {
            let before = chunk_keys(store.as_ref(), &folder).await.len();
            restore_gate.resume.notify_one();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while chunk_keys(store.as_ref(), &folder).await.len() == before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{context}: no end marker"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            zombie_gate.resume.notify_one();
            zombie.await.unwrap()
        };
        let b = restorer.await.unwrap().unwrap();
        let restored = support::events_of(&b.log, u64::MAX);
        if zombie_first {
            // Its chunk landed before the marker: the restore re-listed and took it.
            assert!(zombie_result.is_ok(), "{context}: {zombie_result:?}");
            assert_eq!(restored, support::events_of(&log, u64::MAX), "{context}");
        } else {
            // Its chunk collided with the marker: fenced, log poisoned, nothing of it restored.
            let err = zombie_result.unwrap_err();
            assert!(err.is_fenced(), "{context}: {err}");
            assert!(log.is_poisoned(), "{context}");
            assert_eq!(
                restored.values().map(Vec::len).sum::<usize>(),
                40,
                "{context}"
            );
        }
        // Either way the chunks end with the restorer's marker, and nothing follows it.
        let keys = chunk_keys(store.as_ref(), &folder).await;
        assert_eq!(
            keys.len(),
            if zombie_first { 3 } else { 2 },
            "{context}: {keys:?}"
        );
    }
}

/// A log shipping chunks: one round done (a sealed segment, the active one named and its
/// first chunk), then more appends (another seal, the active segment grown) to ship.
async fn setup(root: &std::path::Path) -> (Arc<FaultStore>, Tier, seglog::Log, support::Events) {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    // Inline checkpoints: a round's operations (a PUT per checkpoint) must not depend on
    // how far the background checkpoint thread got, or the steps counted once shift.
    let options = support::options().checkpoints(seglog::CheckpointMode::Inline);
    let log = seglog::Log::open(root.join("a"), options).await.unwrap();
    let tier = Tier::claim(store.clone(), prefix())
        .await
        .unwrap()
        .with_active_chunks();
    support::write_events(&log, 0, 80).await;
    tier.ship(&log).await.unwrap();
    let shipped = support::events_of(&log, u64::MAX);
    support::write_events(&log, 80, 150).await;
    (store, tier, log, shipped)
}

/// Each execution's restored events are a prefix of node A's, and hold at least `floor`.
fn assert_prefix_between(
    restored: &support::Events,
    floor: &support::Events,
    all: &support::Events,
    context: &str,
) {
    for (exec, events) in all {
        let got = restored.get(exec).map_or(&[][..], Vec::as_slice);
        assert_eq!(got, &events[..got.len()], "{context}: {exec} is a prefix");
        let min = floor.get(exec).map_or(0, Vec::len);
        assert!(got.len() >= min, "{context}: {exec} lost shipped events");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_round_that_ships_chunks_leaves_a_restorable_bucket() {
    let root = tempfile::tempdir().unwrap();
    let (store, tier, log, _) = setup(root.path()).await;
    let before = store.ops();
    let report = tier.ship(&log).await.unwrap();
    assert!(
        report.chunks_uploaded == 1 && report.segments_uploaded >= 1,
        "{report:?}"
    );
    let steps = store.ops() - before;

    let mut outcomes = [0usize; 2];
    for k in 1..=steps + 1 {
        for fault in [Fault::Before, Fault::AfterSuccess] {
            let context = format!("crash at step {k} ({fault:?})");
            let root = tempfile::tempdir().unwrap();
            let (store, tier, log, shipped) = setup(root.path()).await;
            store.arm(k, fault, true);
            let result = tier.ship(&log).await;
            outcomes[usize::from(result.is_ok())] += 1;
            store.disarm();
            let all = support::events_of(&log, u64::MAX);
            let dyn_store: Arc<dyn ObjectStore> = store.clone();
            support::assert_newest_manifest_complete(dyn_store.as_ref(), &prefix()).await;
            let b = seglog_tier::restore(
                dyn_store.clone(),
                prefix(),
                root.path().join("b"),
                support::options(),
            )
            .await
            .unwrap_or_else(|e| panic!("{context}: restore failed: {e}"));
            let restored = support::events_of(&b.log, u64::MAX);
            let floor = if result.is_ok() { &all } else { &shipped };
            assert_prefix_between(&restored, floor, &all, &context);
            // The old node is fenced, deletes nothing, and writes no manifest and no chunk (the
            // manifest check comes first in a round; the end marker would stop it anyway). The
            // new owner's collection leaves what its manifest names and the chunks of the active segment it names.
            let present = support::keys(store.as_ref(), &prefix()).await;
            support::write_events(&log, 150, 160).await;
            assert!(
                tier.ship(&log).await.is_err_and(|e| e.is_fenced()),
                "{context}"
            );
            assert!(log.is_poisoned(), "{context}");
            let after = support::keys(store.as_ref(), &prefix()).await;
            for key in &present {
                assert!(
                    after.contains(key),
                    "{context}: the fenced node deleted {key}"
                );
            }
            for key in after.iter().filter(|k| !present.contains(k)) {
                // Its segment uploads are unnamed orphans; a manifest or a chunk would not be.
                assert!(
                    !key.contains("/manifest/") && !key.contains("/chunks/"),
                    "{context}: the fenced node wrote {key}"
                );
            }
            b.tier
                .collect_orphans(std::time::Duration::ZERO)
                .await
                .unwrap();
            let m = b.tier.manifest().await;
            let named: Vec<String> = m.named_keys().map(str::to_string).collect();
            let folder = m
                .active
                .map(|a| seglog_tier::chunk_folder(&prefix(), &a).to_string());
            for key in support::keys(store.as_ref(), &prefix()).await {
                let kept = key.contains("/manifest/")
                    || named.contains(&key)
                    || folder.as_ref().is_some_and(|f| key.starts_with(f.as_str()));
                assert!(kept, "{context}: orphan {key} left");
            }
            // A third node restores exactly what B restored.
            let c = seglog_tier::restore(
                dyn_store,
                prefix(),
                root.path().join("c"),
                support::options(),
            )
            .await
            .unwrap_or_else(|e| panic!("{context}: second restore failed: {e}"));
            assert_eq!(support::events_of(&c.log, u64::MAX), restored, "{context}");
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_attached_to_a_log_without_the_chunked_active_segment_is_refused() {
    // Nothing sealed yet: every shipped event is in the chunks of the active segment. A node
    // that claims the log but ships another (empty, or longer) local log must not commit a
    // manifest that stops naming that segment: its chunks would be collected.
    for wrong_events in [0usize, 300] {
        let context = format!("wrong log with {wrong_events} events");
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let root = tempfile::tempdir().unwrap();
        let log = seglog::Log::open(root.path().join("a"), options())
            .await
            .unwrap();
        let tier = Tier::claim(store.clone(), prefix())
            .await
            .unwrap()
            .with_active_chunks();
        support::write_events(&log, 0, 40).await;
        tier.ship(&log).await.unwrap();
        let active = tier.manifest().await.active.unwrap();
        let wrong = seglog::Log::open(root.path().join("wrong"), support::options())
            .await
            .unwrap();
        support::write_events(&wrong, 1000, 1000 + wrong_events).await;
        let b = Tier::claim(store.clone(), prefix())
            .await
            .unwrap()
            .with_active_chunks();
        let err = b.ship(&wrong).await.unwrap_err();
        assert!(
            matches!(err, seglog_tier::Error::Diverged(_)),
            "{context}: {err}"
        );
        b.collect_orphans(std::time::Duration::ZERO).await.unwrap();
        let folder = seglog_tier::chunk_folder(&prefix(), &active);
        assert!(
            !chunk_keys(store.as_ref(), &folder).await.is_empty(),
            "{context}"
        );
        let c = seglog_tier::restore(store.clone(), prefix(), root.path().join("c"), options())
            .await
            .unwrap();
        assert_eq!(
            support::events_of(&c.log, u64::MAX),
            support::events_of(&log, u64::MAX),
            "{context}"
        );
    }
}
