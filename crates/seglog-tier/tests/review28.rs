//! Review 28 (hostile, of the whole day's change): the claim record's write followed
//! whatever `TIER_CLAIM.tmp` was (a FIFO hung the continue; a symlink's target was
//! overwritten), and a claim made through `Tier::claim` left an older record behind, so the
//! owner's own directory looked taken over. Each test failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::Tier;
use std::sync::Arc;

async fn restored_dir(store: &Arc<dyn ObjectStore>, dir: &std::path::Path) {
    let a = seglog_tier::restore(store.clone(), Path::from("p"), dir, support::options())
        .await
        .unwrap();
    support::write_events(&a.log, 0, 20).await;
    a.tier.ship(&a.log).await.unwrap();
    a.log.close().unwrap();
}

/// A FIFO named `TIER_CLAIM.tmp` in the log directory: review 27 made the *read* of
/// TIER_CLAIM refuse non-regular files, but `ClaimRecord::write` opens the temp name with
/// `File::create`, which blocks for ever on a FIFO (while the continue holds `LOCK`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_temp_claim_record_does_not_hang_the_continue() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let dir = root.path().join("a");
    restored_dir(&store, &dir).await;
    let temp = dir.join("TIER_CLAIM.tmp");
    assert!(std::process::Command::new("mkfifo")
        .arg(&temp)
        .status()
        .unwrap()
        .success());

    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    seglog_tier::check_continues(store.as_ref(), &Path::from("p"), &log)
        .await
        .unwrap();
    let claimed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        Tier::claim_for_directory(store.clone(), Path::from("p"), &dir),
    )
    .await;
    // Unblock the stuck writer thread so the runtime can shut down.
    for _ in 0..20 {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(0o4000)
            .open(&temp);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    log.close().unwrap();
    assert!(
        claimed.is_ok(),
        "claim_for_directory hung on a FIFO TIER_CLAIM.tmp"
    );
}

/// A symlink named `TIER_CLAIM.tmp`: `File::create` follows it and truncates the target (a
/// file outside the log directory), then the rename makes TIER_CLAIM itself a symlink, which
/// the next continue refuses ("not a regular file").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_temp_claim_record_never_overwrites_the_link_target() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let dir = root.path().join("a");
    restored_dir(&store, &dir).await;
    let victim = root.path().join("someone-elses-file");
    std::fs::write(&victim, b"precious data").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("TIER_CLAIM.tmp")).unwrap();

    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    let claimed = Tier::claim_for_directory(store.clone(), Path::from("p"), &dir).await;
    log.close().unwrap();
    let after = std::fs::read(&victim).unwrap();
    let next = seglog_tier::Tier::claim_for_directory(store.clone(), Path::from("p"), &dir).await;
    assert_eq!(
        after,
        b"precious data",
        "claim ({:?}) overwrote the symlink's target with {:?}; next claim: {:?}",
        claimed.as_ref().map(|_| ()),
        String::from_utf8_lossy(&after),
        next.map(|_| ())
    );
}

/// The crate's own documented pattern (lib.rs: `Tier::claim`, then `ship`) on a directory a
/// restore made: the restore recorded its claim (epoch 1); the owner's own later claim
/// through `Tier::claim` records nothing, so the directory's record is stale and the next
/// continue refuses the owner's own, up-to-date log as `TakenOver` (and the documented
/// remedy is to delete it and restore).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_own_tier_claim_keeps_its_directory_its_own() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let dir = root.path().join("a");
    restored_dir(&store, &dir).await;
    // The same node restarts and continues as lib.rs shows.
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    seglog_tier::check_continues(store.as_ref(), &Path::from("p"), &log)
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), Path::from("p")).await.unwrap();
    support::write_events(&log, 20, 40).await;
    tier.ship(&log).await.unwrap();
    log.close().unwrap();
    drop(tier);
    // Next restart: nobody else ever claimed the log.
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    let checked = seglog_tier::check_continues(store.as_ref(), &Path::from("p"), &log).await;
    log.close().unwrap();
    assert!(checked.is_ok(), "the owner's own directory: {checked:?}");
}
