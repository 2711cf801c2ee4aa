//! Review 44: a ship round of a log whose directory was renamed while it was open writes its
//! claim record (`TIER_CLAIM`) by path, unguarded, into the log opened at the old path since
//! (commit adaf15f guards the writer's own changes, not this one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::Tier;
use std::sync::Arc;

/// Log A is claimed with `Tier::claim` (no directory: its first successful round records the
/// claim in `log.dir()`); before that round, A's directory is renamed and log B is opened at
/// the old path, claimed for its own prefix with `claim_for_directory` (epoch 1, like A's).
/// A's round then replaces B's `TIER_CLAIM` with A's claim (same epoch, another nonce), and
/// B's own next `check_continues` says B's directory was taken over by another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_logs_ship_round_does_not_write_its_claim_into_the_other_log() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let old = root.path().join("log");
    let moved = root.path().join("moved");

    let a = seglog::Log::open(&old, support::options()).await.unwrap();
    support::write_events(&a, 0, 10).await;
    let tier_a = Tier::claim(store.clone(), Path::from("a")).await.unwrap();

    std::fs::rename(&old, &moved).unwrap();
    let b = seglog::Log::open(&old, support::options()).await.unwrap();
    support::write_events(&b, 0, 10).await;
    let tier_b = Tier::claim_for_directory(store.clone(), Path::from("b"), &old)
        .await
        .unwrap();
    tier_b.ship(&b).await.unwrap();
    let b_record = std::fs::read(old.join("TIER_CLAIM")).unwrap();

    let shipped = tier_a.ship(&a).await;
    eprintln!("A's round after the move: {shipped:?}");
    let after = std::fs::read(old.join("TIER_CLAIM")).unwrap();
    let moved_has_record = moved.join("TIER_CLAIM").exists();

    b.close().unwrap();
    drop(b);
    let b = seglog::Log::open(&old, support::options()).await.unwrap();
    let continues = seglog_tier::check_continues(store.as_ref(), &Path::from("b"), &b).await;
    b.close().unwrap();
    let _ = a.close();
    eprintln!("log B's check_continues after A's round: {continues:?}");

    assert_eq!(
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&b_record),
        "log A's ship round rewrote log B's claim record (A's own moved directory has one: {moved_has_record})"
    );
    continues.expect("log B still continues its own log");
}
