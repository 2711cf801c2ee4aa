//! Review 45 (checks that held): restores and identities. An interrupted restore's leftover
//! `LOG_ID` (another log's) never becomes the identity of the log restored after it; a lazy
//! restore from a manifest that names no identity gets one at its open, the first ship names
//! it, and a reopen keeps it; two restores of one prefix (identity named) both carry it, and
//! the fenced one cannot ship.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use seglog_segment::format::LOG_ID_FILE_NAME;
use seglog_tier::{FetchSegments, RestoreOptions, Tier};
use std::sync::Arc;

/// Ships a log under `prefix`, then (when `strip`) puts a newer manifest naming no identity,
/// as a build before identities leaves it. Returns the shipped log's identity.
async fn shipped(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    dir: &std::path::Path,
    strip: bool,
) -> seglog_segment::format::LogId {
    let log = seglog::Log::open(dir, support::options()).await.unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    support::write_events(&log, 0, 120).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    let id = log.log_id().unwrap();
    if strip {
        let mut older = tier.manifest().await;
        older.manifest_id += 1;
        older.writer_epoch += 1;
        older.writer_nonce = "ffeeddccbbaa99887766554433221100".into();
        older.log_id = None;
        let key = seglog_tier::manifest_key(prefix, older.manifest_id);
        store
            .put(&key, PutPayload::from(older.encode(&key).unwrap()))
            .await
            .unwrap();
    }
    log.close().unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restores_leftover_identity_is_not_the_next_restores() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let p1 = Path::from("p1");
    let p2 = Path::from("p2");
    let id1 = shipped(&store, &p1, &root.path().join("one"), false).await;
    let id2 = shipped(&store, &p2, &root.path().join("two"), true).await;
    // Each: a restore of p1 cut short after it wrote the identity (marker and LOG_ID left).
    for fetch in [FetchSegments::Whole, FetchSegments::Lazily] {
        let dir = root.path().join(format!("restored-{fetch:?}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("RESTORE_IN_PROGRESS"), b"").unwrap();
        std::fs::copy(
            root.path().join("one").join(LOG_ID_FILE_NAME),
            dir.join(LOG_ID_FILE_NAME),
        )
        .unwrap();
        let restored = seglog_tier::restore_with(
            store.clone(),
            p2.clone(),
            &dir,
            support::options(),
            RestoreOptions::default().fetch_segments(fetch),
        )
        .await
        .unwrap();
        let got = restored.log.log_id().unwrap();
        assert_ne!(
            got, id1,
            "{fetch:?}: p1's identity leaked into p2's restore"
        );
        assert_ne!(got, id2, "{fetch:?}: p2's manifest named none");
        support::write_events(&restored.log, 120, 140).await;
        restored.log.roll().await.unwrap();
        restored.tier.ship(&restored.log).await.unwrap();
        assert_eq!(restored.tier.manifest().await.log_identity(), Some(got));
        restored.log.close().unwrap();
        drop(restored);
        let reopened = seglog::Log::open(&dir, support::options()).await.unwrap();
        assert_eq!(reopened.log_id(), Some(got));
        seglog_tier::check_continues(store.as_ref(), &p2, &reopened)
            .await
            .unwrap();
        reopened.close().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_restores_of_one_prefix_share_its_identity_and_only_the_newest_ships() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let p = Path::from("p");
    let id = shipped(&store, &p, &root.path().join("orig"), false).await;
    let r1 = seglog_tier::restore(
        store.clone(),
        p.clone(),
        root.path().join("r1"),
        support::options(),
    )
    .await
    .unwrap();
    let r2 = seglog_tier::restore(
        store.clone(),
        p.clone(),
        root.path().join("r2"),
        support::options(),
    )
    .await
    .unwrap();
    assert_eq!(r1.log.log_id(), Some(id));
    assert_eq!(r2.log.log_id(), Some(id));
    support::write_events(&r1.log, 120, 130).await;
    r1.log.roll().await.unwrap();
    assert!(
        r1.tier.ship(&r1.log).await.is_err(),
        "the fenced restore shipped"
    );
    support::write_events(&r2.log, 120, 130).await;
    r2.log.roll().await.unwrap();
    r2.tier.ship(&r2.log).await.unwrap();
    let _ = r1.log.close();
    r2.log.close().unwrap();
}
