//! Lazy restore (issue 17, "Restore on another node"): the sealed segments stay in the
//! bucket, the restore writes their checkpoints and offload stubs, and reads go through the
//! bucket. What must hold: every shipped event comes back with its sequence and bytes; no
//! segment object is downloaded (only its 64-byte header, by a ranged GET); appends continue
//! in a fresh segment numbered above every shipped one, whatever the manifest's shape (chunks,
//! an empty active segment, none); the restored directory reopens (after a clean close or
//! none); a damaged checkpoint or a header that is not the manifest's is an error, never
//! wrong data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use seglog_tier::{
    Error, FetchSegments, ReadThrough, ReadThroughOptions, RestoreOptions, Restored, Tier,
};
use std::path::Path as FsPath;
use std::sync::Arc;
use support::fault::FaultStore;
use support::{events_of, options, write_events, Events};

fn lazily() -> RestoreOptions {
    RestoreOptions::default().fetch_segments(FetchSegments::Lazily)
}

async fn all_events(log: &seglog::Log) -> Events {
    let log = log.clone();
    tokio::task::spawn_blocking(move || events_of(&log, u64::MAX))
        .await
        .unwrap()
}

async fn restore_lazily(store: Arc<dyn ObjectStore>, prefix: &Path, dir: &FsPath) -> Restored {
    seglog_tier::restore_with(store, prefix.clone(), dir, options(), lazily())
        .await
        .unwrap()
}

/// Checks a lazily restored log against the manifest it came from: every segment with a
/// checkpoint is offloaded (and was never downloaded: only its header, by a ranged GET), the
/// others are local, and the active (last) segment is numbered above all of them.
async fn check_lazy_shape(fault: &FaultStore, restored: &Restored, gets_before: usize) {
    let manifest = restored.tier.manifest().await;
    let offloaded = restored.log.offloaded_segments();
    let with_checkpoint: Vec<_> = manifest
        .segments
        .iter()
        .filter(|e| e.checkpoint.is_some())
        .collect();
    assert!(!with_checkpoint.is_empty(), "nothing to restore lazily");
    assert_eq!(offloaded.len(), with_checkpoint.len());
    assert_eq!(restored.report.segments_offloaded, with_checkpoint.len());
    assert_eq!(
        restored.report.segments,
        manifest.segments.len() - with_checkpoint.len()
    );
    for (o, e) in offloaded.iter().zip(&with_checkpoint) {
        assert_eq!(
            (
                o.number,
                o.first_lsn,
                o.record_salt,
                o.data_end,
                &o.location
            ),
            (
                e.number,
                e.first_lsn,
                e.record_salt,
                e.segment.len,
                &e.segment.key
            )
        );
    }
    let gets: Vec<_> = fault.get_log.lock().unwrap()[gets_before..].to_vec();
    for e in &with_checkpoint {
        let of_segment: Vec<_> = gets.iter().filter(|(k, _)| *k == e.segment.key).collect();
        assert_eq!(
            of_segment.len(),
            1,
            "one GET of segment {}: {of_segment:?}",
            e.number
        );
        assert_eq!(
            of_segment[0].1,
            Some(GetRange::Bounded(0..64)),
            "only the header of segment {}",
            e.number
        );
    }
    let local = restored.log.segments();
    let last = local.last().unwrap();
    assert!(!last.sealed);
    let highest = manifest
        .segments
        .iter()
        .map(|e| e.number)
        .chain(manifest.active.map(|a| a.number))
        .max()
        .unwrap();
    assert!(last.number > highest, "{} ≤ {highest}", last.number);
    assert!(restored.read_through.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_restore_reads_every_shipped_event_through_the_bucket_and_downloads_no_segment() {
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let prefix = Path::from("logs/lazy");
    let root = tempfile::tempdir().unwrap();
    let log_a = seglog::Log::open(
        root.path().join("a"),
        options().checkpoints(seglog::CheckpointMode::Inline),
    )
    .await
    .unwrap();
    let a = Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap()
        .with_active_chunks();
    write_events(&log_a, 0, 200).await;
    a.ship(&log_a).await.unwrap();
    write_events(&log_a, 200, 230).await;
    a.ship(&log_a).await.unwrap();
    assert!(a.manifest().await.active.is_some());
    let expected = all_events(&log_a).await;
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 230);

    let gets_before = fault.get_log.lock().unwrap().len();
    let dir = root.path().join("b");
    let b = restore_lazily(store.clone(), &prefix, &dir).await;
    check_lazy_shape(&fault, &b, gets_before).await;
    assert!(b.report.active_bytes > 0, "{:?}", b.report);
    let rt = b.read_through.clone().unwrap();
    assert_eq!(rt.stats().range_gets, 0, "nothing read yet");
    assert_eq!(
        all_events(&b.log).await,
        expected,
        "every event, same seqs and bytes"
    );
    assert!(
        rt.stats().range_gets > 0,
        "the old events came from the bucket"
    );
    // The previous owner is fenced.
    write_events(&log_a, 230, 240).await;
    assert!(a.ship(&log_a).await.unwrap_err().is_fenced());

    // Appends continue, in the fresh segment; shipping goes on and still names every
    // offloaded segment's object.
    write_events(&b.log, 1000, 1060).await;
    b.tier.ship(&b.log).await.unwrap();
    let after = all_events(&b.log).await;
    assert_eq!(after.values().map(Vec::len).sum::<usize>(), 290);
    for (exec, events) in &expected {
        assert_eq!(&after[exec][..events.len()], &events[..], "{exec}");
    }
    let named: Vec<String> = b
        .tier
        .manifest()
        .await
        .segments
        .iter()
        .map(|e| e.segment.key.clone())
        .collect();
    for o in b.log.offloaded_segments() {
        assert!(named.contains(&o.location), "segment {} dropped", o.number);
    }

    // A clean reopen reads through a new read-through.
    b.log.close().unwrap();
    drop(b);
    let reopened = seglog::Log::open(&dir, options()).await.unwrap();
    ReadThrough::new(store.clone(), ReadThroughOptions::default())
        .unwrap()
        .attach(&reopened);
    assert_eq!(all_events(&reopened).await, after);
    write_events(&reopened, 2000, 2010).await;
    assert_eq!(
        all_events(&reopened)
            .await
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_restore_without_chunks_or_with_an_empty_active_segment_opens_and_appends() {
    for chunks in [false, true] {
        let fault = FaultStore::new(Arc::new(InMemory::new()));
        let store: Arc<dyn ObjectStore> = fault.clone();
        let prefix = Path::from("logs/shapes");
        let root = tempfile::tempdir().unwrap();
        let log_a = seglog::Log::open(
            root.path().join("a"),
            options().checkpoints(seglog::CheckpointMode::Inline),
        )
        .await
        .unwrap();
        let mut a = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
        if chunks {
            a = a.with_active_chunks();
        }
        write_events(&log_a, 0, 150).await;
        // Everything sealed: the active segment is empty (with chunks, the manifest names
        // it and its chunks hold no record).
        log_a.roll().await.unwrap();
        a.ship(&log_a).await.unwrap();
        let shipped = a.manifest().await;
        assert_eq!(shipped.active.is_some(), chunks);
        let expected = all_events(&log_a).await;
        assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 150);

        let gets_before = fault.get_log.lock().unwrap().len();
        let dir = root.path().join("b");
        let b = restore_lazily(store.clone(), &prefix, &dir).await;
        check_lazy_shape(&fault, &b, gets_before).await;
        assert_eq!(b.report.active_bytes, 0);
        assert_eq!(b.report.last_lsn, shipped.last_lsn());
        assert_eq!(all_events(&b.log).await, expected, "chunks: {chunks}");
        write_events(&b.log, 500, 520).await;
        b.tier.ship(&b.log).await.unwrap();

        // A crash right after (no close): the directory opens again, every event there.
        let with_new = all_events(&b.log).await;
        drop(b);
        let reopened = seglog::Log::open(&dir, options()).await.unwrap();
        ReadThrough::new(store.clone(), ReadThroughOptions::default())
            .unwrap()
            .attach(&reopened);
        assert_eq!(all_events(&reopened).await, with_new, "chunks: {chunks}");
        write_events(&reopened, 600, 610).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_then_a_crash_before_any_append_still_opens() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("logs/crash");
    let root = tempfile::tempdir().unwrap();
    let log_a = seglog::Log::open(
        root.path().join("a"),
        options().checkpoints(seglog::CheckpointMode::Inline),
    )
    .await
    .unwrap();
    let a = Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap()
        .with_active_chunks();
    write_events(&log_a, 0, 120).await;
    a.ship(&log_a).await.unwrap();
    let expected = all_events(&log_a).await;
    let dir = root.path().join("b");
    let b = restore_lazily(store.clone(), &prefix, &dir).await;
    let offloaded = b.log.offloaded_segments();
    assert!(!offloaded.is_empty());
    drop(b);
    let reopened = seglog::Log::open(&dir, options()).await.unwrap();
    assert_eq!(reopened.offloaded_segments(), offloaded);
    ReadThrough::new(store.clone(), ReadThroughOptions::default())
        .unwrap()
        .attach(&reopened);
    assert_eq!(all_events(&reopened).await, expected);
    // Without a segment source, reads of the offloaded records fail (never read as empty).
    reopened.close().unwrap();
    drop(reopened);
    let bare = seglog::Log::open(&dir, options()).await.unwrap();
    let log = bare.clone();
    let read = tokio::task::spawn_blocking(move || log.read("exec-0"))
        .await
        .unwrap();
    assert!(read.is_err(), "{read:?}");
}

/// A log shipped without chunks: the events its manifest holds (those of its sealed
/// segments).
async fn shipped_log(store: &Arc<dyn ObjectStore>, prefix: &Path, root: &FsPath) -> Events {
    // Inline checkpoints: the tests that use it need sealed segments shipped with theirs,
    // which the background thread may not have written yet when the ship lists them.
    let inline = options().checkpoints(seglog::CheckpointMode::Inline);
    let log = seglog::Log::open(root.join("a"), inline).await.unwrap();
    let a = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    write_events(&log, 0, 150).await;
    a.ship(&log).await.unwrap();
    let shipped = events_of(&log, a.manifest().await.last_lsn());
    assert!(shipped.values().map(Vec::len).sum::<usize>() >= 100);
    log.close().unwrap();
    shipped
}

async fn restore_err(store: Arc<dyn ObjectStore>, prefix: &Path, dir: &FsPath) -> Error {
    seglog_tier::restore_with(store, prefix.clone(), dir, options(), lazily())
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_or_a_header_that_is_not_the_manifests_is_an_error() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("logs/damage");
    let root = tempfile::tempdir().unwrap();
    let shipped = shipped_log(&store, &prefix, root.path()).await;
    let manifest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    let entry = manifest
        .segments
        .iter()
        .find(|e| e.checkpoint.is_some())
        .unwrap()
        .clone();
    let cp_key = Path::from(entry.checkpoint.as_ref().unwrap().key.as_str());
    let seg_key = Path::from(entry.segment.key.as_str());
    let good_cp = store.get(&cp_key).await.unwrap().bytes().await.unwrap();
    let good_seg = store.get(&seg_key).await.unwrap().bytes().await.unwrap();
    let mut attempt = 0;
    let mut next_dir = || {
        attempt += 1;
        root.path().join(format!("b{attempt}"))
    };

    // A flipped bit in the checkpoint.
    let mut bad = good_cp.to_vec();
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    store.put(&cp_key, PutPayload::from(bad)).await.unwrap();
    let err = restore_err(store.clone(), &prefix, &next_dir()).await;
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
    // A truncated checkpoint.
    store
        .put(
            &cp_key,
            PutPayload::from(good_cp.slice(..good_cp.len() - 8)),
        )
        .await
        .unwrap();
    let err = restore_err(store.clone(), &prefix, &next_dir()).await;
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
    store
        .put(&cp_key, PutPayload::from(good_cp.clone()))
        .await
        .unwrap();

    // A segment object whose header is another segment's (a valid header, same length).
    let header = seglog_segment::format::SegmentHeader::decode(&good_seg).unwrap();
    let other = seglog_segment::format::SegmentHeader::new(
        header.segment_number + 100,
        header.first_lsn,
        1,
    )
    .unwrap();
    let mut forged = other.encode().to_vec();
    forged.extend_from_slice(&good_seg[64..]);
    store.put(&seg_key, PutPayload::from(forged)).await.unwrap();
    let err = restore_err(store.clone(), &prefix, &next_dir()).await;
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
    // A flipped bit in the header (its CRC catches it).
    let mut flipped = good_seg.to_vec();
    flipped[20] ^= 0x04;
    store
        .put(&seg_key, PutPayload::from(flipped))
        .await
        .unwrap();
    let err = restore_err(store.clone(), &prefix, &next_dir()).await;
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
    // An object of another length (the header itself intact).
    store
        .put(
            &seg_key,
            PutPayload::from(good_seg.slice(..good_seg.len() - 1)),
        )
        .await
        .unwrap();
    let err = restore_err(store.clone(), &prefix, &next_dir()).await;
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
    // The segment gone.
    store.delete(&seg_key).await.unwrap();
    let err = restore_err(store.clone(), &prefix, &next_dir()).await;
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");

    // Put back: the restore works (and so the errors above were the damage's).
    store
        .put(&seg_key, PutPayload::from(good_seg.clone()))
        .await
        .unwrap();
    let b = restore_lazily(store.clone(), &prefix, &next_dir()).await;
    assert_eq!(all_events(&b.log).await, shipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_restore_still_downloads_every_segment() {
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let prefix = Path::from("logs/whole");
    let root = tempfile::tempdir().unwrap();
    shipped_log(&store, &prefix, root.path()).await;
    let b = seglog_tier::restore(
        store.clone(),
        prefix.clone(),
        root.path().join("b"),
        options(),
    )
    .await
    .unwrap();
    assert!(b.read_through.is_none());
    assert!(b.log.offloaded_segments().is_empty());
    assert_eq!(b.report.segments_offloaded, 0);
    let manifest = b.tier.manifest().await;
    assert_eq!(b.report.segments, manifest.segments.len());
    let gets = fault.get_log.lock().unwrap().clone();
    for e in &manifest.segments {
        assert!(
            gets.iter().any(|(k, r)| *k == e.segment.key && r.is_none()),
            "segment {} downloaded whole",
            e.number
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_restore_of_compaction_outputs_numbered_above_the_active_segment_opens() {
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let prefix = Path::from("logs/compacted");
    let root = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.checkpoints = seglog::CheckpointMode::Inline;
    let log_a = seglog::Log::open(root.path().join("a"), opts)
        .await
        .unwrap();
    let a = Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap()
        .with_active_chunks();
    write_events(&log_a, 0, 200).await;
    a.ship(&log_a).await.unwrap();
    let plan = seglog::compaction::policy::drop_executions(
        &log_a.compaction_view(false).unwrap(),
        ["exec-1"],
    );
    log_a
        .compact(plan, seglog::CompactOptions::default())
        .await
        .unwrap();
    write_events(&log_a, 200, 210).await;
    a.ship(&log_a).await.unwrap();
    let manifest = a.manifest().await;
    let active = manifest.active.unwrap();
    assert!(
        manifest
            .segments
            .iter()
            .any(|e| e.number > active.number && e.checkpoint.is_some()),
        "a compaction output numbered above the active segment {}: {:?}",
        active.number,
        manifest
            .segments
            .iter()
            .map(|e| e.number)
            .collect::<Vec<_>>()
    );
    let expected = all_events(&log_a).await;
    // The compaction dropped exec-1's sealed events; those after it are in the active one.
    assert!(
        expected["exec-1"].len() <= 2,
        "{:?}",
        expected["exec-1"].len()
    );

    let gets_before = fault.get_log.lock().unwrap().len();
    let dir = root.path().join("b");
    let b = restore_lazily(store.clone(), &prefix, &dir).await;
    check_lazy_shape(&fault, &b, gets_before).await;
    assert_eq!(all_events(&b.log).await, expected);
    write_events(&b.log, 300, 320).await;
    b.tier.ship(&b.log).await.unwrap();
    let with_new = all_events(&b.log).await;
    drop(b);
    let reopened = seglog::Log::open(&dir, options()).await.unwrap();
    ReadThrough::new(store.clone(), ReadThroughOptions::default())
        .unwrap()
        .attach(&reopened);
    assert_eq!(all_events(&reopened).await, with_new);
}

/// The checkpoint's own checks: a manifest (forged, its CRCs right) that names another
/// segment's checkpoint for a segment is refused, never indexed as that segment's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_segments_checkpoint_is_refused_even_when_the_manifest_vouches_for_it() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let root = tempfile::tempdir().unwrap();
    shipped_log(&store, &prefix, root.path()).await;
    let mut m = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    let with: Vec<usize> = (0..m.segments.len())
        .filter(|&i| m.segments[i].checkpoint.is_some())
        .collect();
    assert!(with.len() >= 2);
    let (i, j) = (with[0], with[1]);
    let (ci, cj) = (
        m.segments[i].checkpoint.clone(),
        m.segments[j].checkpoint.clone(),
    );
    m.segments[i].checkpoint = cj;
    m.segments[j].checkpoint = ci;
    m.manifest_id += 1;
    let key = seglog_tier::manifest_key(&prefix, m.manifest_id);
    store
        .put(&key, PutPayload::from(serde_json::to_vec(&m).unwrap()))
        .await
        .unwrap();
    let err = restore_err(store.clone(), &prefix, &root.path().join("b")).await;
    assert!(
        matches!(&err, Error::Corruption { reason, .. } if reason.contains("not a checkpoint")),
        "{err:?}"
    );
}
