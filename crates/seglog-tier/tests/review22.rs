//! Review 22 (issue 17: rehydration of offloaded segments), seglog-tier side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::{ReadThrough, Tier};
use std::sync::Arc;
use support::*;

fn opts() -> seglog::Options {
    options().checkpoints(seglog::CheckpointMode::Inline)
}

/// Finding 1, tier side. A ship round names the log's segments from two listings taken
/// one after the other with no lock between them (`read_through::shipped_listing`:
/// `log.segments()`, then `log.offloaded_segments()`), relying on "an offload between the
/// two listings puts its segment in both". A rehydration does the opposite move (segment
/// table in, then offloaded table out), so one between the two listings puts its segment
/// in **neither**. The round then commits a manifest without it (the divergence check
/// finds no local holder of its LSNs and takes it for a segment erased whole), orphan
/// collection may delete its object and checkpoint once past the grace period, and a
/// restore from that manifest (a failover before the next round re-uploads it) lacks its
/// events: acknowledged events lost, with `Durability::Remote` too.
///
/// The window cannot be hit deterministically inside `Tier::ship` (no await or I/O between
/// the two calls), but nothing excluded it: the rehydration holds the log's compaction lock,
/// the round the tier's state lock. Fixed: the rehydration moves the layout epoch between
/// its two table changes, and the round lists through `Log::all_segments`, which lists
/// again when the epoch moved. (The test failed before: the two-listing way was the round's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehydration_between_a_ship_rounds_two_listings_leaves_its_segment_in_neither() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("logs/r22");
    let root = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(root.path().join("a"), opts())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    write_events(&log, 0, 200).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    let read_through = ReadThrough::new(store.clone(), Default::default()).unwrap();
    read_through.attach(&log);
    let offloaded = read_through.offload(&tier, &log).await.unwrap();
    assert!(offloaded.segments_offloaded >= 3, "{offloaded:?}");
    let victim = log.offloaded_segments()[1].clone();
    let named: Vec<u64> = tier
        .manifest()
        .await
        .segments
        .iter()
        .map(|e| e.number)
        .collect();
    assert!(named.contains(&victim.number));

    // Two separate listings (local, then offloaded), a rehydration between them: the
    // segment is in neither, but the layout epoch moved, so a lister knows to list again.
    let epoch = log.layout_epoch();
    let mut listed: Vec<u64> = log.segments().iter().map(|s| s.number).collect();
    log.rehydrate_segment_async(victim.number).await.unwrap();
    listed.extend(log.offloaded_segments().iter().map(|s| s.number));
    assert!(!listed.contains(&victim.number));
    assert_ne!(
        log.layout_epoch(),
        epoch,
        "the rehydration moved the layout epoch"
    );
    // The listing a ship round takes (`Log::all_segments`) has it, once.
    let all: Vec<u64> = log.all_segments().iter().map(|s| s.number).collect();
    assert_eq!(
        all.iter().filter(|n| **n == victim.number).count(),
        1,
        "segment {} (named by the manifest, its events only in it) must be in the listing a \
         ship round takes: {all:?}",
        victim.number
    );
    // And the next round keeps naming it.
    tier.ship(&log).await.unwrap();
    assert!(tier
        .manifest()
        .await
        .segments
        .iter()
        .any(|e| e.number == victim.number));
    log.close().unwrap();
}
