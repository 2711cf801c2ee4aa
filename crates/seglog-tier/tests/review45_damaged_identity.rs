//! Review 45: a shipped log whose `LOG_ID` took one flipped bit. Before the fix a writer
//! refused the directory, `verify` called it clean, `repair` had nothing to do, and the only
//! way out offered (remove the file) gave the log a new identity that its own bucket refused:
//! what was left was a restore from the bucket, which drops every event acknowledged locally
//! since the last ship (Durability::Local). Now verify and repair report it, and
//! `mend_log_id` (`seglog repair --log-id`) writes the bucket's identity back: nothing lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_segment::format::LOG_ID_FILE_NAME;
use seglog_tier::{Error, Tier};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipped_log_with_one_bad_bit_in_its_log_id_is_reported_and_mended_without_loss() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a");
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    let tier = Tier::claim_for_directory(store.clone(), prefix.clone(), &dir)
        .await
        .unwrap();
    support::write_events(&log, 0, 150).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    let id = log.log_id().unwrap();
    assert_eq!(tier.manifest().await.log_identity(), Some(id));
    // Acknowledged after the last ship: only this directory holds them.
    support::write_events(&log, 150, 200).await;
    let expected = support::events_of(&log, u64::MAX);
    log.close().unwrap();
    drop(log);
    drop(tier);

    // One bit of the 16 identity bytes flips on disk.
    let path = dir.join(LOG_ID_FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();

    // Reported, not silently clean: verify calls the identity damaged.
    let verified = seglog::verify_dir(&dir).unwrap();
    assert_eq!(verified.health(), seglog::Health::Corrupt);
    assert!(verified.identity_problem.is_some());
    // A repair refuses before it plans, asks or cuts, and says how to mend it.
    let before = std::fs::read_dir(&dir).unwrap().count();
    let refused = seglog::repair_dir(&dir, |_| panic!("asked despite the damaged identity"));
    let Err(refused) = refused else {
        panic!("a repair went ahead with a damaged identity")
    };
    assert!(refused.to_string().contains("--log-id"), "{refused}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before);
    // The writer refuses too, with the same way out.
    let Err(open_error) = seglog::Log::open(&dir, support::options()).await else {
        panic!("a writer opened a log whose identity is damaged")
    };
    assert!(open_error.to_string().contains("--log-id"), "{open_error}");
    // The way out: the identity the bucket names, written back. Nothing acknowledged is lost
    // and the log continues its bucket.
    let named = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap()
        .log_identity()
        .unwrap();
    seglog::mend_log_id(&dir, named).unwrap();
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    assert_eq!(log.log_id(), Some(id));
    seglog_tier::check_continues(store.as_ref(), &prefix, &log)
        .await
        .unwrap();
    assert_eq!(support::events_of(&log, u64::MAX), expected);
    let tier = Tier::claim_for_directory(store.clone(), prefix.clone(), &dir)
        .await
        .unwrap();
    tier.ship(&log).await.unwrap();
    log.close().unwrap();
    assert!(matches!(
        seglog_tier::check_continues(
            store.as_ref(),
            &prefix,
            &seglog::Log::open(root.path().join("other"), support::options())
                .await
                .unwrap()
        )
        .await,
        Err(Error::Diverged(_))
    ));
}
