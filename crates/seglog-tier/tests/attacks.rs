//! Attacks on the tier's promises, each a way data could be lost or a bad bucket trusted:
//! a compaction that replaces shipped segments, a claim attached to the wrong local log,
//! a manifest naming a missing or altered object, and manifests that break the rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use seglog_tier::{Error, Tier};
use std::sync::Arc;
use std::time::Duration;

fn store() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

async fn shipped_log(store: &Arc<dyn ObjectStore>, root: &std::path::Path) -> (Tier, seglog::Log) {
    let log = seglog::Log::open(root.join("a"), support::options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), Path::from("p")).await.unwrap();
    support::write_events(&log, 0, 150).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    (tier, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_swaps_inputs_for_outputs_in_one_manifest_and_the_inputs_become_orphans() {
    let store = store();
    let root = tempfile::tempdir().unwrap();
    let (tier, log) = shipped_log(&store, root.path()).await;
    let before = tier.manifest().await;
    let plan = seglog::compaction::Plan {
        drop_executions: ["exec-1".to_owned()].into(),
        ..Default::default()
    };
    let report = log
        .compact(plan, seglog::CompactOptions::default())
        .await
        .unwrap();
    assert!(report.events_dropped > 0);
    let shipped = tier.ship(&log).await.unwrap();
    assert!(
        shipped.committed_manifest.is_some() && shipped.segments_uploaded > 0,
        "{shipped:?}"
    );
    let after = tier.manifest().await;
    let replaced: Vec<_> = before
        .named_keys()
        .filter(|k| !after.named_keys().any(|n| n == *k))
        .map(str::to_string)
        .collect();
    assert!(
        !replaced.is_empty(),
        "the compacted inputs are no longer named"
    );

    let restored = seglog_tier::restore(
        store.clone(),
        Path::from("p"),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    let events = support::events_of(&restored.log, u64::MAX);
    assert!(
        !events.contains_key("exec-1"),
        "the erased execution is not restored"
    );
    assert_eq!(events, support::events_of(&log, u64::MAX));
    // The inputs are orphans now: the new owner collects them, and only them.
    let gc = restored.tier.collect_orphans(Duration::ZERO).await.unwrap();
    for key in &replaced {
        assert!(gc.deleted.contains(key), "{key} collected");
        assert!(store.head(&Path::from(key.as_str())).await.is_err());
    }
    support::assert_newest_manifest_complete(store.as_ref(), &Path::from("p")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_a_log_that_lacks_the_shipped_segments_is_refused() {
    // A node claims the log but ships a fresh local directory: committing would name no
    // segment, and drop every shipped event from the newest manifest.
    let store = store();
    let root = tempfile::tempdir().unwrap();
    let (_tier, _log) = shipped_log(&store, root.path()).await;
    let wrong = seglog::Log::open(root.path().join("empty"), support::options())
        .await
        .unwrap();
    support::write_events(&wrong, 0, 10).await;
    wrong.roll().await.unwrap();
    let b = Tier::claim(store.clone(), Path::from("p")).await.unwrap();
    let named = b.manifest().await.segments.len();
    let err = b.ship(&wrong).await.unwrap_err();
    assert!(matches!(err, Error::Diverged(_)), "{err}");
    let newest = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.segments.len(), named, "nothing was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_manifest_naming_a_missing_or_altered_object() {
    for damage in ["missing", "truncated", "flipped"] {
        let store = store();
        let root = tempfile::tempdir().unwrap();
        let (tier, _log) = shipped_log(&store, root.path()).await;
        let manifest = tier.manifest().await;
        let victim = Path::from(manifest.segments[1].segment.key.as_str());
        let bytes = store.get(&victim).await.unwrap().bytes().await.unwrap();
        store.delete(&victim).await.unwrap();
        match damage {
            "truncated" => {
                store
                    .put(&victim, PutPayload::from(bytes.slice(..bytes.len() - 1)))
                    .await
                    .unwrap();
            }
            "flipped" => {
                let mut b = bytes.to_vec();
                let at = b.len() / 2;
                b[at] ^= 1;
                store.put(&victim, PutPayload::from(b)).await.unwrap();
            }
            _ => {}
        }
        let err = seglog_tier::restore(
            store.clone(),
            Path::from("p"),
            root.path().join("b"),
            support::options(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{damage}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newest_manifest_that_breaks_the_rules_is_refused_not_skipped() {
    let store = store();
    let root = tempfile::tempdir().unwrap();
    let (tier, _log) = shipped_log(&store, root.path()).await;
    let m = tier.manifest().await;
    let next = seglog_tier::manifest_key(&Path::from("p"), m.manifest_id + 1);
    // Garbage, a lying id, a key outside the prefix, an unknown version.
    let mut lying = m.clone();
    lying.manifest_id += 7;
    let mut outside = m.clone();
    outside.manifest_id += 1;
    outside.segments[0].segment.key = "elsewhere/x.seg".into();
    let mut future = serde_json::to_value(&m).unwrap();
    future["format_version"] = 99.into();
    future["manifest_id"] = (m.manifest_id + 1).into();
    let cases: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        serde_json::to_vec(&lying).unwrap(),
        serde_json::to_vec(&outside).unwrap(),
        serde_json::to_vec(&future).unwrap(),
    ];
    for bytes in cases {
        store.put(&next, PutPayload::from(bytes)).await.unwrap();
        let err = seglog_tier::restore(
            store.clone(),
            Path::from("p"),
            root.path().join("b"),
            support::options(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corruption { .. } | Error::UnsupportedVersion { .. }
            ),
            "{err}"
        );
        store.delete(&next).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_manifest_is_refused_before_it_is_read() {
    let store = store();
    let prefix = Path::from("p");
    let key = seglog_tier::manifest_key(&prefix, 1);
    let big = vec![b' '; (seglog_tier::MAX_MANIFEST_BYTES + 1) as usize];
    store.put(&key, PutPayload::from(big)).await.unwrap();
    let err = Tier::claim(store, prefix).await.unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_fenced_between_its_check_and_its_deletes_deletes_nothing_of_the_new_owner() {
    // A checks it owns the log, then stalls (a GC pause, a SIGSTOP) before it lists what to
    // delete; B claims, ships and uploads an object it has not named yet; A resumes, lists
    // (and so sees B's objects) and deletes.
    let faults = support::fault::FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (tier_a, log_a) = shipped_log(&store, root.path()).await;
    // Give A orphans to delete: a compaction's inputs.
    let plan = seglog::compaction::Plan {
        drop_executions: ["exec-2".to_owned()].into(),
        ..Default::default()
    };
    log_a
        .compact(plan, seglog::CompactOptions::default())
        .await
        .unwrap();
    tier_a.ship(&log_a).await.unwrap();

    let gate = faults.pause_next_segment_list();
    let tier_a = Arc::new(tier_a);
    let collector = {
        let tier_a = tier_a.clone();
        tokio::spawn(async move { tier_a.collect_orphans(Duration::ZERO).await })
    };
    gate.reached.notified().await;

    let b = seglog_tier::restore(
        store.clone(),
        Path::from("p"),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    support::write_events(&b.log, 500, 600).await;
    b.log.roll().await.unwrap();
    b.tier.ship(&b.log).await.unwrap();
    let unnamed = seglog_tier::segment_key(&Path::from("p"), 1_000_000, 99, 7, b.tier.epoch());
    store
        .put(&unnamed, PutPayload::from_static(b"in flight"))
        .await
        .unwrap();
    let named_by_b: Vec<String> = b
        .tier
        .manifest()
        .await
        .named_keys()
        .map(str::to_string)
        .collect();

    gate.resume.notify_one();
    // Since review 30 each batch of deletes checks ownership again (under the claim's lock),
    // so A learns here that it is fenced and deletes nothing; the epoch rule still guards a
    // claim that lands between that check and the DELETEs.
    let err = collector.await.unwrap().unwrap_err();
    assert!(err.is_fenced(), "{err}");
    for key in &named_by_b {
        assert!(
            store.head(&Path::from(key.as_str())).await.is_ok(),
            "A deleted {key}, named by B"
        );
    }
    assert!(
        store.head(&unnamed).await.is_ok(),
        "A deleted B's unnamed upload"
    );
    // B's data restores whole.
    let c = seglog_tier::restore(
        store.clone(),
        Path::from("p"),
        root.path().join("c"),
        support::options(),
    )
    .await
    .unwrap();
    let m = b.tier.manifest().await;
    assert_eq!(
        support::events_of(&c.log, u64::MAX),
        support::events_of(&b.log, m.last_lsn())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_at_the_last_epoch_makes_claims_fail_cleanly_not_panic() {
    let store = store();
    let root = tempfile::tempdir().unwrap();
    let (tier, _log) = shipped_log(&store, root.path()).await;
    let mut m = tier.manifest().await;
    m.manifest_id += 1;
    m.writer_epoch = u64::MAX;
    let key = seglog_tier::manifest_key(&Path::from("p"), m.manifest_id);
    store
        .put(&key, PutPayload::from(serde_json::to_vec(&m).unwrap()))
        .await
        .unwrap();
    let err = Tier::claim(store.clone(), Path::from("p"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_that_erases_the_last_shipped_segments_whole_still_ships() {
    // Not divergence: the log has moved past them, and the erasure must reach the bucket.
    let store = store();
    let root = tempfile::tempdir().unwrap();
    let (tier, log) = shipped_log(&store, root.path()).await;
    for i in 0..120 {
        log.append("doomed", "tenant-a", &support::payload_of(i))
            .await
            .unwrap();
    }
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    let before = tier.manifest().await;
    let plan = seglog::compaction::Plan {
        drop_executions: ["doomed".to_owned()].into(),
        ..Default::default()
    };
    log.compact(plan, seglog::CompactOptions::default())
        .await
        .unwrap();
    let sealed_last = log
        .segments()
        .iter()
        .filter(|s| s.sealed)
        .map(|s| s.last_lsn)
        .max();
    assert!(
        sealed_last < Some(before.last_lsn()),
        "the last shipped segments are gone whole"
    );
    let report = tier.ship(&log).await.unwrap();
    assert!(report.committed_manifest.is_some(), "{report:?}");
    let restored = seglog_tier::restore(
        store,
        Path::from("p"),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    assert!(restored.log.read("doomed").unwrap().is_empty());
    assert_eq!(
        support::events_of(&restored.log, u64::MAX),
        support::events_of(&log, u64::MAX)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_pass_that_drops_the_oldest_segments_whole_still_ships() {
    // Retention is a compaction that drops whole executions: segments holding only the
    // dropped ones disappear locally with no output. Not divergence; and, as for an erasure,
    // the next manifest stops naming them (docs/scale-out.md, "Compaction, erasure and
    // retention").
    let store = store();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a");
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    let tier = Tier::claim(store.clone(), Path::from("p")).await.unwrap();
    for i in 0..150 {
        log.append("old", "tenant-a", &support::payload_of(i))
            .await
            .unwrap();
    }
    log.roll().await.unwrap();
    support::write_events(&log, 0, 150).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    let before = tier.manifest().await;
    let total: u64 = log
        .compaction_view(false)
        .unwrap()
        .segments
        .iter()
        .map(|s| s.bytes)
        .sum();
    log.close().unwrap();
    drop(log);
    // Reopen with a size limit that only dropping "old" (half the events) satisfies.
    let retention = seglog::Retention::default()
        .max_log_bytes(total - total / 4)
        .interval(Duration::from_millis(20));
    let log = seglog::Log::open(&dir, support::options().retention(retention))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while log.stats().retention.executions_dropped == 0 {
        assert!(std::time::Instant::now() < deadline, "no retention pass");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(log.read("old").unwrap().is_empty());
    let first_local = log.segments().first().map(|s| s.first_lsn).unwrap();
    assert!(
        first_local > before.segments[0].last_lsn,
        "the oldest shipped segments are gone locally, whole"
    );
    let report = tier.ship(&log).await.unwrap();
    assert!(report.committed_manifest.is_some(), "{report:?}");
    let after = tier.manifest().await;
    assert!(after.segments[0].first_lsn >= first_local, "{after:?}");
    let restored = seglog_tier::restore(
        store,
        Path::from("p"),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    assert!(restored.log.read("old").unwrap().is_empty());
    assert_eq!(
        support::events_of(&restored.log, u64::MAX),
        support::events_of(&log, u64::MAX)
    );
}
