//! Review 24 (hostile): `SeglogEventStore::open_from_bucket` and the restore's directory
//! (`holds_a_log`, `seglog_tier` `staging.rs` `abandon`).
#![cfg(feature = "tier")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_eventstore::{BucketOpening, BucketOptions, SeglogEventStore};
use seglog_tier::object_store::memory::InMemory;
use seglog_tier::object_store::path::Path;
use seglog_tier::object_store::{ObjectStore, ObjectStoreExt};
use seglog_tier::{FetchSegments, Tier};
use std::sync::Arc;

fn options() -> seglog::Options {
    let mut o = seglog::Options::default().checkpoints(seglog::CheckpointMode::Inline);
    o.segment_size_bytes = 8 * 1024;
    o
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A restore interrupted after it took its directory (a crash, a power cut, or the
/// `open_from_bucket` future dropped by a caller's timeout) leaves `LOCK` (which it created),
/// its marker and some files. `open_from_bucket` then restores again, as documented ("left
/// by an interrupted restore: restore"). When that restore fails (here: an object that is
/// damaged when it is read; a store error does the same), `abandon` removes its files and the
/// marker, but not `LOCK`: this restore did not create it (`created_lock` is false). The
/// directory now holds `LOCK` alone, and `holds_a_log` (any file but the marker) takes it
/// for a log: the next `open_from_bucket`, with the bucket healthy again, does not restore but
/// "continues": `Log::open` creates a new, empty log there, `check_continues` refuses it as
/// `Diverged` (behind the bucket), and from then on every `open_from_bucket` continues that
/// empty log and fails, and `restore` refuses the directory (`DestinationNotEmpty`): the
/// node cannot come up until an operator deletes the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_after_an_interrupted_one_leaves_a_directory_that_is_restored_again() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    {
        let log = seglog::Log::open(root.path().join("a"), options())
            .await
            .unwrap();
        let tier = Tier::claim(store.clone(), Path::from("p")).await.unwrap();
        for i in 0..200u32 {
            let payload = vec![(i % 251) as u8; 150];
            log.append(&format!("exec-{}", i % 5), "tenant-a", &payload)
                .await
                .unwrap();
        }
        log.roll().await.unwrap();
        tier.ship(&log).await.unwrap();
        log.close().unwrap();
    }
    let m = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    assert!(m.segments.len() >= 2, "{} segments", m.segments.len());

    // What an interrupted restore leaves: its LOCK, its marker, part of the log.
    let dest = root.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("LOCK"), b"").unwrap();
    std::fs::write(dest.join(seglog_tier::RESTORE_MARKER_FILE_NAME), b"").unwrap();
    std::fs::write(dest.join("00000000000000000001.seg"), vec![0u8; 100]).unwrap();

    let bucket_options = || {
        BucketOptions::default()
            .log_options(options())
            .fetch_segments(FetchSegments::Whole)
    };
    // The retry's restore fails: one segment object reads damaged.
    let key = Path::from(m.segments[1].segment.key.as_str());
    let good = store.get(&key).await.unwrap().bytes().await.unwrap();
    store.put(&key, vec![7u8; 100].into()).await.unwrap();
    let first = SeglogEventStore::open_from_bucket(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        bucket_options(),
    )
    .await
    .map(|_| ());
    assert!(first.is_err(), "the restore of a damaged segment succeeded");
    let after_failure = listing(&dest);

    // The bucket reads well again: the next open restores the log.
    store.put(&key, good.into()).await.unwrap();
    let second = SeglogEventStore::open_from_bucket(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        bucket_options(),
    )
    .await;
    let outcome = match &second {
        Ok(s) => format!("{:?}", s.bucket_opening()),
        Err(e) => format!("failed: {e}"),
    };
    let restored = matches!(
        second.as_ref().map(|s| s.bucket_opening()),
        Ok(Some(BucketOpening::Restored(_)))
    );
    drop(second);
    let later = seglog_tier::restore(store.clone(), Path::from("p"), &dest, options())
        .await
        .map(|r| r.log.close().unwrap());
    assert!(
        restored,
        "after a failed restore over an interrupted one the directory holds {after_failure:?} \
         (first failure: {}); open_from_bucket with the bucket healthy again: {outcome}; the \
         directory now holds {:?}, and a restore into it: {later:?}",
        first.unwrap_err(),
        listing(&dest)
    );
}
