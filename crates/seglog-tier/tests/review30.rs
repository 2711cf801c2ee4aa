//! Review 30: the orphan collection that lists and deletes outside the claim's state lock
//! (3184d5a): batches re-checked against the writer's `state.latest`, keys marked in
//! `Tier::deleting` while their DELETEs are in flight, ship rounds waiting for them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::time::Duration;
use support::deletes::UnnamedUpload;
use support::fault::Fault;

/// The owner and its bucket after a round that failed before its manifest commit
/// (`support::deletes::UnnamedUpload`), in a directory of its own.
struct Setup {
    root: tempfile::TempDir,
    up: UnnamedUpload,
}

impl std::ops::Deref for Setup {
    type Target = UnnamedUpload;
    fn deref(&self) -> &UnnamedUpload {
        &self.up
    }
}

async fn owner_with_an_unnamed_upload() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let up = UnnamedUpload::new(&root.path().join("a")).await;
    Setup { root, up }
}

async fn missing_named_keys(store: &dyn ObjectStore, prefix: &Path) -> (u64, Vec<String>) {
    let m = seglog_tier::latest_manifest(store, prefix)
        .await
        .unwrap()
        .unwrap();
    let mut missing = Vec::new();
    for key in m.named_keys() {
        if store.head(&Path::from(key)).await.is_err() {
            missing.push(key.to_string());
        }
    }
    (m.manifest_id, missing)
}

/// Finding 1: `Tier::deleting` is a set, not a count. Two collections on one claim (the
/// `Shipper`'s periodic one and a user's `tier.collect_orphans`, which the EventStore's
/// `tier()` invites; both on the same `Arc<Tier>`) list the same orphans and both mark them.
/// The first to finish its DELETEs removes the keys from the set and wakes the waiting
/// round, while the second's DELETEs of the very same keys are still to come. The round
/// uploads the segment again (or finds it still there and reuses it) and commits a manifest
/// naming it; the second collection's DELETE then removes it: the newest manifest names a
/// missing object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collections_let_a_round_name_an_object_the_slower_one_then_deletes() {
    let s = owner_with_an_unnamed_upload().await;

    // Collection A marks the two orphans and its first DELETE is held.
    let gate_a = s.deletes.pause_next_delete();
    let collector_a = tokio::spawn({
        let owner = s.owner.clone();
        async move { owner.collect_orphans(Duration::ZERO).await }
    });
    gate_a.reached.notified().await;
    // Collection B lists the same two orphans (still there), marks them too, and its first
    // DELETE is held (a slower bulk DELETE on S3).
    let gate_b = s.deletes.pause_next_delete();
    let collector_b = tokio::spawn({
        let owner = s.owner.clone();
        async move { owner.collect_orphans(Duration::ZERO).await }
    });
    gate_b.reached.notified().await;

    // The next round: it waits while the keys are being deleted (as it should).
    let round = tokio::spawn({
        let (owner, log) = (s.owner.clone(), s.log.clone());
        async move { owner.ship(&log).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A's DELETEs go through; A unmarks the keys and notifies. Before the fix the round went
    // on here: it uploaded both objects again and committed a manifest naming them.
    gate_a.resume.notify_one();
    let report_a = collector_a.await.unwrap().unwrap();
    assert_eq!(report_a.deleted.len(), s.unnamed.len(), "{report_a:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // B's DELETEs, of keys it checked under the lock before that round, now go.
    gate_b.resume.notify_one();
    let report_b = collector_b.await.unwrap().unwrap();
    let shipped = tokio::time::timeout(Duration::from_secs(10), round)
        .await
        .expect("the round did not finish after both collections")
        .unwrap()
        .unwrap();
    assert!(shipped.committed_manifest.is_some(), "{shipped:?}");

    let (id, missing) = missing_named_keys(s.store.as_ref(), &s.prefix).await;
    assert!(
        missing.is_empty(),
        "the newest manifest {id} names objects that a second, concurrent collection deleted \
         after the first one unmarked them (B deleted {:?}); missing: {missing:?} \
         (unnamed before: {:?})",
        report_b.deleted,
        s.unnamed
    );
    support::assert_a_restore_holds_what_was_shipped(
        &s.store,
        &s.prefix,
        &s.log,
        &s.owner,
        &s.root.path().join("r"),
    )
    .await;
}

/// Finding 2: `collect_orphans` was not cancel-safe. A collection dropped while a batch's
/// DELETEs are in flight (a caller's `tokio::time::timeout`, a `select!` on shutdown, an
/// admin request whose client went away) never unmarked the batch's keys: they stayed in
/// `Tier::deleting` for ever, and the next round that uploads one of them (the failed
/// round's segment, shipped again) waited for ever, **holding the claim's state lock**:
/// every later round, every `Durability::Remote` acknowledgement, every offload pass and
/// every later collection hung behind it. Now the batch's DELETEs run in a task of their
/// own: the DELETE still ends (here: released a moment after the timeout; on a real store
/// it ends with its request, which object_store's client times out), the keys are
/// unmarked, and the round uploads the segment again rather than reusing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_collection_leaves_its_keys_marked_and_the_next_round_hangs() {
    let s = owner_with_an_unnamed_upload().await;
    let gate = s.deletes.pause_next_delete();
    let collection = tokio::spawn({
        let owner = s.owner.clone();
        async move {
            // A caller bounding its collection's time.
            tokio::time::timeout(
                Duration::from_millis(300),
                owner.collect_orphans(Duration::ZERO),
            )
            .await
        }
    });
    gate.reached.notified().await;
    assert!(
        collection.await.unwrap().is_err(),
        "the collection should have been cut short by its timeout"
    );
    let round = tokio::spawn({
        let (owner, log) = (s.owner.clone(), s.log.clone());
        async move { owner.ship(&log).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The DELETE the dropped collection sent ends.
    gate.resume.notify_one();
    let round = tokio::time::timeout(Duration::from_secs(5), round).await;
    assert!(
        matches!(round, Ok(Ok(Ok(_)))),
        "a ship round after a cancelled collection did not finish within 5 s (it waits for \
         the deletion of a key nobody deletes any more, holding the claim's lock): {round:?}"
    );
    support::assert_newest_manifest_complete(s.store.as_ref(), &s.prefix).await;
}

/// Finding 3: a batch is re-checked against `state.latest`, this writer's *view* of the
/// newest manifest, not the bucket's. Before 3184d5a the collection held the lock from
/// `confirm_ownership` (which adopts an own newer manifest found in the bucket) to its last
/// DELETE, so nothing could come in between. Now, between the collection's ownership check
/// and its batch, a round reuses the orphaned segment (`upload_immutable` finds it there),
/// and its manifest commit lands but its outcome is unknown (a timeout after the PUT was
/// applied, and the read back fails too: one network blip): `state.latest` stays at the
/// manifest before. The batch, checked against that stale manifest, deletes the segment
/// and checkpoint the newest manifest in the bucket names. The next own-manifest adoption
/// (`check_next_id_free` in a deferred or remote round, or the next collection's
/// `confirm_ownership`) makes the writer treat them as shipped (`known` entries are never
/// uploaded again), so every later manifest names them too, and a restore fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_checked_against_a_stale_state_deletes_what_an_unknown_outcome_commit_named() {
    let s = owner_with_an_unnamed_upload().await;

    // The collection confirms ownership (manifest 2 is the newest), then is about to list.
    let list_gate = s.faults.pause_next_segment_list();
    let collector = tokio::spawn({
        let owner = s.owner.clone();
        async move { owner.collect_orphans(Duration::ZERO).await }
    });
    list_gate.reached.notified().await;

    // A round reuses the orphans and commits manifest 3; the PUT is applied but answered
    // with an error, and the read back fails: the round fails, `state.latest` stays 2.
    s.faults.fail_put("manifest/", 1, Fault::AfterSuccess);
    s.faults.fail_get("manifest/", 1);
    assert!(s.owner.ship(&s.log).await.is_err());
    assert_eq!(s.owner.manifest().await.manifest_id, 2);
    let three = seglog_tier::latest_manifest(s.store.as_ref(), &s.prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(three.manifest_id, 3);
    for key in &s.unnamed {
        assert!(three.named_keys().any(|k| k == key), "{key} not named by 3");
    }

    list_gate.resume.notify_one();
    let report = collector.await.unwrap().unwrap();
    let (id, missing) = missing_named_keys(s.store.as_ref(), &s.prefix).await;

    // And it does not heal: the next collection adopts manifest 3 as the writer's newest
    // (confirm_ownership), after which rounds treat its segments as shipped.
    let again = s.owner.collect_orphans(Duration::ZERO).await;
    support::ship_a_round(&s.log, &s.owner, 40).await;
    let (later_id, later_missing) = missing_named_keys(s.store.as_ref(), &s.prefix).await;

    assert!(
        missing.is_empty() && later_missing.is_empty(),
        "the collection deleted {:?}, checked against the writer's stale manifest 2 while \
         manifest {id} (committed, outcome unknown to the writer) names them; missing from \
         manifest {id}: {missing:?}; after another collection ({again:?}) and a round, \
         manifest {later_id} still names missing {later_missing:?}",
        report.deleted
    );
}

/// Finding 1, with read-through: the same race, and the owner's retention pass (the
/// `Shipper` runs it right after every round) offloads the segment the round named, while
/// the bucket object is still there (its HEAD passes). The slower collection then deletes
/// it: the segment's only copy is gone, with no node lost, and the log's reads of it fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collections_delete_a_segment_the_owner_has_just_offloaded() {
    let s = owner_with_an_unnamed_upload().await;
    let read_through =
        seglog_tier::ReadThrough::new(s.store.clone(), seglog_tier::ReadThroughOptions::default())
            .unwrap();
    read_through.attach(&s.log);
    let before = support::events_of(&s.log, u64::MAX);

    let gate_a = s.deletes.pause_next_delete();
    let collector_a = tokio::spawn({
        let owner = s.owner.clone();
        async move { owner.collect_orphans(Duration::ZERO).await }
    });
    gate_a.reached.notified().await;
    let gate_b = s.deletes.pause_next_delete();
    let collector_b = tokio::spawn({
        let owner = s.owner.clone();
        async move { owner.collect_orphans(Duration::ZERO).await }
    });
    gate_b.reached.notified().await;
    let round = tokio::spawn({
        let (owner, log) = (s.owner.clone(), s.log.clone());
        async move { owner.ship(&log).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate_a.resume.notify_one();
    collector_a.await.unwrap().unwrap();
    // Before the fix the round ended here, and the retention pass after it (as the Shipper
    // runs it) offloaded the segment B was about to delete.
    let early = tokio::time::timeout(Duration::from_millis(300), round).await;
    let offload = match early {
        Ok(done) => {
            done.unwrap().unwrap();
            Some(read_through.offload(&s.owner, &s.log).await.unwrap())
        }
        Err(_) => None,
    };
    gate_b.resume.notify_one();
    collector_b.await.unwrap().unwrap();
    if offload.is_none() {
        // The round waited for B's DELETEs too: it has uploaded again by now.
        while s.owner.manifest().await.segments.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let offloaded = match offload {
        Some(report) => report,
        None => read_through.offload(&s.owner, &s.log).await.unwrap(),
    };
    assert!(offloaded.segments_offloaded >= 2, "{offloaded:?}");

    let mut failed = Vec::new();
    for e in 0..support::EXECUTIONS {
        if let Err(err) = s.log.read(&format!("exec-{e}")) {
            failed.push(err.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "events of an offloaded segment are gone from the bucket (a second collection \
         deleted the object the owner had just offloaded to): {failed:?}"
    );
    assert_eq!(support::events_of(&s.log, u64::MAX), before);
}
