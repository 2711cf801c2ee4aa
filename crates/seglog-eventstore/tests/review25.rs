//! Review 25 (hostile): `SeglogEventStore::open_from_bucket`'s `holds_a_log`.
#![cfg(feature = "tier")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_eventstore::{BucketOpening, BucketOptions, SeglogEventStore};
use seglog_tier::object_store::memory::InMemory;
use seglog_tier::object_store::path::Path;
use seglog_tier::object_store::ObjectStore;
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

/// A new node's data directory is very often the root of a freshly made file system (a
/// cloud volume, a Kubernetes persistent volume): it holds `lost+found`, an empty directory
/// `mkfs.ext4` makes, and nothing else. `holds_a_log` takes any entry but `LOCK` for a log,
/// so `open_from_bucket` does not restore but "continues": `Log::open` makes a new, empty log
/// beside `lost+found`, `check_continues` refuses it (behind the bucket), and from then on
/// every `open_from_bucket` continues that empty log and fails, and `restore` refuses the
/// directory (`DestinationNotEmpty`): the node never comes up until an operator deletes
/// what the open made. (`restore` itself refusing `lost+found` is documented; the
/// event store's open turning the volume into a log of nothing is not.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_from_bucket_on_a_fresh_volume_with_lost_and_found_restores_the_log() {
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
    // A fresh ext4 volume mounted at the data directory.
    let dest = root.path().join("volume");
    std::fs::create_dir(&dest).unwrap();
    std::fs::create_dir(dest.join("lost+found")).unwrap();
    let before = listing(&dest);

    let bucket_options = || {
        BucketOptions::default()
            .log_options(options())
            .fetch_segments(FetchSegments::Whole)
    };
    let first = SeglogEventStore::open_from_bucket(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        bucket_options(),
    )
    .await;
    let first_outcome = match &first {
        Ok(s) => format!("{:?}", s.bucket_opening()),
        Err(e) => format!("failed: {e}"),
    };
    let restored = matches!(
        first.as_ref().map(|s| s.bucket_opening()),
        Ok(Some(BucketOpening::Restored(_)))
    );
    drop(first);
    let after_first = listing(&dest);
    let second = SeglogEventStore::open_from_bucket(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        bucket_options(),
    )
    .await
    .map(|s| format!("{:?}", s.bucket_opening()));
    assert!(
        restored,
        "open_from_bucket on a fresh volume (holding {before:?}) did not restore the bucket's \
         log: {first_outcome}; the volume then holds {after_first:?}, and the next \
         open_from_bucket: {second:?}"
    );
}
