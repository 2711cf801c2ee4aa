//! `SeglogEventStore::open_from_bucket` (seglog-eventstore's `tier` feature): node A opens
//! the store from a bucket, appends through enact-core's `EventStore` trait and ships; A is
//! lost (its directory deleted); node B opens the store from the bucket and reads every
//! shipped event through the trait with the same sequences, and the same record bytes;
//! A's next append fails (fenced). Then the owner restarting on its own directory
//! continues the log, and a third node finds everything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::persistence::{
    EventStore, ExecutionEventData, StorageBackend, StoredEvent,
};
use enact_core::kernel::{ExecutionId, StepId, StepType, TenantId};
use seglog_eventstore::{BucketOpening, BucketOptions, SeglogEventStore};
use seglog_tier::object_store::memory::InMemory;
use seglog_tier::object_store::path::Path as ObjectPath;
use seglog_tier::object_store::ObjectStore;
use seglog_tier::Durability;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXECUTIONS: usize = 4;

fn exec(i: usize) -> ExecutionId {
    ExecutionId::from_string(format!("exec-{}", i % EXECUTIONS))
}

fn tenant() -> TenantId {
    TenantId::from_string("tenant-a")
}

fn event(i: usize) -> ExecutionEventData {
    ExecutionEventData::StepStarted {
        step_id: StepId::from_string(format!("step-{i}")),
        parent_step_id: None,
        step_type: StepType::LlmNode,
        name: format!("step {i}: {}", "x".repeat(i % 300)),
    }
}

/// Small segments: the events cross seals, so a restore takes sealed segments and chunks.
/// Inline checkpoints: every sealed segment ships with its checkpoint, so a lazy restore
/// leaves each in the bucket (the background thread may lag behind a ship round).
fn options(durability: Durability) -> BucketOptions {
    BucketOptions::default()
        .log_options(
            seglog::Options::default()
                .segment_size_bytes(16 * 1024)
                .checkpoints(seglog::CheckpointMode::Inline),
        )
        .ship_interval(Duration::from_millis(50))
        .durability(durability)
}

/// Every event of every execution, as the trait returns it (sequence, tenant, event as
/// JSON, timestamp), and as the log stores it (sequence and record bytes).
type Seen = BTreeMap<
    String,
    (
        Vec<(u64, String, serde_json::Value, i64)>,
        Vec<(u64, Vec<u8>)>,
    ),
>;

async fn seen(store: &SeglogEventStore) -> Seen {
    let mut out = Seen::new();
    for e in 0..EXECUTIONS {
        let id = exec(e);
        let events: Vec<StoredEvent> = store.load_events(&id).await.unwrap();
        let via_trait = events
            .iter()
            .map(|s| {
                (
                    s.sequence,
                    s.tenant_id.as_str().to_owned(),
                    serde_json::to_value(&s.event).unwrap(),
                    s.timestamp.timestamp_nanos_opt().unwrap(),
                )
            })
            .collect();
        let bytes = store
            .log()
            .read(id.as_str())
            .unwrap()
            .into_iter()
            .map(|ev| (ev.seq, ev.payload.to_vec()))
            .collect();
        out.insert(id.as_str().to_owned(), (via_trait, bytes));
    }
    out
}

async fn append_events(store: &SeglogEventStore, from: usize, to: usize) {
    let mut i = from;
    while i < to {
        if i % 7 == 3 && i + 3 <= to {
            // A batch now and then: consecutive sequences, one record.
            let first = store
                .append_batch(&exec(i), &tenant(), (i..i + 3).map(event).collect())
                .await
                .unwrap();
            assert!(first >= 1);
            i += 3;
        } else {
            store.append(&exec(i), &tenant(), event(i)).await.unwrap();
            i += 1;
        }
    }
}

fn fenced(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<seglog_tier::Error>()
            .is_some_and(seglog_tier::Error::is_fenced)
            || e.to_string().contains("fenced")
    })
}

async fn node_a_lost_node_b_takes_over(durability: Durability) {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("enact/partition-3");
    let root = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (root.path().join("a"), root.path().join("b"));

    let a = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        &dir_a,
        options(durability),
    )
    .await
    .unwrap();
    assert!(matches!(
        a.bucket_opening(),
        Some(BucketOpening::Restored(_))
    ));
    assert!(a.requires_network());
    append_events(&a, 0, 200).await;
    if durability == Durability::Local {
        // Local durability: the bucket follows at the next round; run one now.
        a.tier().unwrap().ship(a.log()).await.unwrap();
    }
    assert!(
        a.log().segments().iter().filter(|s| s.sealed).count() >= 2,
        "the events crossed seals"
    );
    let expected = seen(&a).await;
    // Node A is lost: its directory goes (the process lingers, as a zombie would).
    std::fs::remove_dir_all(&dir_a).unwrap();

    let b = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        &dir_b,
        options(durability),
    )
    .await
    .unwrap();
    // By default the restore fetched the checkpoints, not the segments (issue 17).
    match b.bucket_opening() {
        Some(BucketOpening::Restored(report)) => assert!(
            report.segments_offloaded >= 1 && report.segments_offloaded + report.segments >= 2,
            "{report:?}"
        ),
        other => panic!("B restored: {other:?}"),
    }
    assert_eq!(
        seen(&b).await,
        expected,
        "every shipped event, same sequence, event, timestamp and bytes"
    );
    assert!(b.tier().unwrap().epoch() > a.tier().unwrap().epoch());

    // A's next append fails: at once with remote durability (its round is fenced); with
    // local durability once its shipper's next round (within the interval) is fenced.
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match a.append(&exec(0), &tenant(), event(9_999)).await {
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    durability == Durability::Local,
                    "a remote append after the claim was acknowledged"
                );
                assert!(Instant::now() < deadline, "A was never fenced");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        fenced(&err) || a.log().is_poisoned(),
        "A's append fails because it is fenced: {err:#}"
    );
    assert!(a.health_check().await.is_err());
    assert!(a.append(&exec(1), &tenant(), event(1)).await.is_err());
    let err = a.shutdown().await.unwrap_err();
    assert!(fenced(&err), "A's shutdown reports the fence: {err:#}");

    // B goes on, shuts down cleanly (its shipper's last round ships the rest), and
    // restarts on its own directory: it continues the log.
    append_events(&b, 200, 260).await;
    let after_b = seen(&b).await;
    b.shutdown().await.unwrap();
    let b2 = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        &dir_b,
        options(durability),
    )
    .await
    .unwrap();
    assert_eq!(b2.bucket_opening(), Some(&BucketOpening::Continued));
    assert_eq!(seen(&b2).await, after_b);
    append_events(&b2, 260, 300).await;
    let expected = seen(&b2).await;
    b2.shutdown().await.unwrap();

    // A third node finds every event B wrote, before and after its restart.
    let c = SeglogEventStore::open_from_bucket(
        bucket,
        prefix,
        root.path().join("c"),
        options(durability),
    )
    .await
    .unwrap();
    assert_eq!(seen(&c).await, expected);
    assert_eq!(
        c.get_latest_sequence(&exec(0)).await.unwrap(),
        expected["exec-0"].0.last().map(|e| e.0)
    );
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opened_from_a_bucket_fails_over_with_local_durability() {
    node_a_lost_node_b_takes_over(Durability::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opened_from_a_bucket_fails_over_with_remote_durability() {
    node_a_lost_node_b_takes_over(Durability::Remote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_durability_acknowledges_an_event_only_once_a_restore_finds_it() {
    // No ship round is run by hand: each acknowledged append must already be restorable.
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("p");
    let root = tempfile::tempdir().unwrap();
    let a = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("a"),
        options(Durability::Remote).ship_interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    append_events(&a, 0, 40).await;
    let expected = seen(&a).await;
    // Node A is lost right after its last acknowledgement (its shipper never ran a round).
    let b = SeglogEventStore::open_from_bucket(
        bucket,
        prefix,
        root.path().join("b"),
        options(Durability::Local),
    )
    .await
    .unwrap();
    assert_eq!(seen(&b).await, expected);
    b.shutdown().await.unwrap();
}

/// Opens the stale directory `dir` from the bucket twice: with its claim record it is refused
/// as taken over; without it (a directory of an older build) the divergence check refuses it.
async fn refused_with_and_without_claim_record(
    bucket: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    dir: &std::path::Path,
    options: impl Fn() -> BucketOptions,
) {
    for with_record in [true, false] {
        if !with_record {
            std::fs::remove_file(dir.join(seglog_tier::CLAIM_RECORD_FILE_NAME)).unwrap();
        }
        let err = SeglogEventStore::open_from_bucket(
            bucket.clone(),
            prefix.clone(),
            dir.to_path_buf(),
            options(),
        )
        .await
        .unwrap_err();
        if with_record {
            assert!(matches!(err, seglog_tier::Error::TakenOver { .. }), "{err}");
        } else {
            assert!(matches!(err, seglog_tier::Error::Diverged(_)), "{err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_behind_the_bucket_is_refused_without_claiming() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("p");
    let root = tempfile::tempdir().unwrap();
    let a = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("a"),
        options(Durability::Remote),
    )
    .await
    .unwrap();
    append_events(&a, 0, 20).await;
    a.shutdown().await.unwrap();
    // B takes over and writes enough to seal segments past A's end.
    let b = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("b"),
        options(Durability::Remote),
    )
    .await
    .unwrap();
    append_events(&b, 20, 300).await;
    let newest = b.tier().unwrap().manifest().await;
    // A restarts on its stale directory: refused, and B still owns the log. Its claim record
    // shows another node's claim since (`TakenOver`); without the record (a directory of an
    // older build) the divergence check refuses it as behind the bucket.
    refused_with_and_without_claim_record(&bucket, &prefix, &root.path().join("a"), || {
        options(Durability::Remote)
    })
    .await;
    let still = seglog_tier::latest_manifest(bucket.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.writer_epoch, newest.writer_epoch, "nobody claimed");
    append_events(&b, 300, 310).await;
    b.shutdown().await.unwrap();
}

/// A directory a lazy restore made (its sealed segments only in the bucket, `.off` stubs
/// here), continued by `open_from_bucket`: the continued store reads the offloaded events
/// through the bucket (review 20: it opened without a segment source, and every read of
/// them failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_directory_with_offloaded_segments_reads_through_the_bucket() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("p");
    let root = tempfile::tempdir().unwrap();
    let a = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("a"),
        options(Durability::Remote),
    )
    .await
    .unwrap();
    append_events(&a, 0, 120).await;
    let expected = seen(&a).await;
    drop(a);
    // Node B restores lazily, closes, and later continues its own directory.
    let dir = root.path().join("b");
    let restored = seglog_tier::restore_with(
        bucket.clone(),
        prefix.clone(),
        &dir,
        seglog::Options::default()
            .segment_size_bytes(16 * 1024)
            .checkpoints(seglog::CheckpointMode::Inline),
        seglog_tier::RestoreOptions::default().fetch_segments(seglog_tier::FetchSegments::Lazily),
    )
    .await
    .unwrap();
    assert!(!restored.log.offloaded_segments().is_empty());
    restored.log.close().unwrap();
    drop(restored);
    let b = SeglogEventStore::open_from_bucket(bucket, prefix, &dir, options(Durability::Local))
        .await
        .unwrap();
    assert!(matches!(b.bucket_opening(), Some(BucketOpening::Continued)));
    assert_eq!(seen(&b).await, expected);
    b.shutdown().await.unwrap();
}

/// Local retention (`BucketOptions::keep_local_segments`): the background ship rounds
/// offload the older shipped sealed segments, the store still reads every event (through
/// the bucket), and a node that takes over finds them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_retention_offloads_shipped_segments_in_the_background() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("retained");
    let root = tempfile::tempdir().unwrap();
    let a = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("a"),
        options(Durability::Local).keep_local_segments(Some(1)),
    )
    .await
    .unwrap();
    append_events(&a, 0, 300).await;
    a.log().roll().await.unwrap();
    let expected = seen(&a).await;
    // Numbers, once each: an offload puts a segment in the offloaded table before it leaves
    // the segment table.
    let sealed_numbers = |log: &seglog::Log| {
        let mut n: std::collections::BTreeSet<u64> = log
            .segments()
            .iter()
            .filter(|s| s.sealed)
            .map(|s| s.number)
            .collect();
        n.extend(log.offloaded_segments().iter().map(|o| o.number));
        n
    };
    let sealed = sealed_numbers(a.log()).len();
    assert!(sealed >= 4, "the events crossed seals: {sealed}");
    // Rounds every 50 ms: wait (generously, CI is slow) for the retention to catch up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let local_sealed = a.log().segments().iter().filter(|s| s.sealed).count();
        if local_sealed <= 1 && a.log().offloaded_segments().len() + 1 >= sealed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never left one local sealed segment: {local_sealed} local, {} offloaded",
            a.log().offloaded_segments().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen(&a).await, expected, "read through the bucket");
    append_events(&a, 300, 320).await;
    let expected = seen(&a).await;
    a.shutdown().await.unwrap();
    let b = SeglogEventStore::open_from_bucket(
        bucket,
        prefix,
        root.path().join("b"),
        options(Durability::Local),
    )
    .await
    .unwrap();
    assert_eq!(seen(&b).await, expected);
    b.shutdown().await.unwrap();
}

/// A directory an interrupted restore left (its `RESTORE_IN_PROGRESS` marker and part of the
/// log) is restored again by `open_from_bucket`, not "continued" (which would fail: no open
/// reads such a directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restores_directory_is_restored_again() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("interrupted");
    let root = tempfile::tempdir().unwrap();
    let a = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("a"),
        options(Durability::Remote),
    )
    .await
    .unwrap();
    append_events(&a, 0, 120).await;
    let expected = seen(&a).await;
    let a_dir = a.log().dir().to_path_buf();
    a.shutdown().await.unwrap();
    let dir = root.path().join("b");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("RESTORE_IN_PROGRESS"), b"").unwrap();
    let segment = std::fs::read_dir(&a_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    std::fs::copy(&segment, dir.join(segment.file_name().unwrap())).unwrap();
    let b = SeglogEventStore::open_from_bucket(bucket, prefix, &dir, options(Durability::Local))
        .await
        .unwrap();
    assert!(matches!(
        b.bucket_opening(),
        Some(BucketOpening::Restored(_))
    ));
    assert_eq!(seen(&b).await, expected);
    b.shutdown().await.unwrap();
}

/// A node whose directory is *ahead* of the bucket (it acknowledged appends it never
/// shipped, with local durability, before it was lost) and whose log another node took
/// over and continued: restarting on its stale directory is refused as `Diverged` before it
/// claims, so the new owner is not fenced (it claimed first, then found the divergence, and
/// the owner's next appends failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_directory_ahead_of_the_bucket_is_refused_without_claiming() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("ahead");
    let root = tempfile::tempdir().unwrap();
    let rare_rounds = options(Durability::Local).ship_interval(Duration::from_secs(3600));
    let a = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("a"),
        rare_rounds.clone(),
    )
    .await
    .unwrap();
    append_events(&a, 0, 100).await;
    a.tier().unwrap().ship(a.log()).await.unwrap();
    // Acknowledged (durable locally), never shipped: A is lost before its next round.
    append_events(&a, 100, 250).await;
    a.log().close().unwrap();
    // B takes over and appends; its events are in the bucket.
    let b = SeglogEventStore::open_from_bucket(
        bucket.clone(),
        prefix.clone(),
        root.path().join("b"),
        options(Durability::Remote),
    )
    .await
    .unwrap();
    append_events(&b, 1000, 1040).await;
    let newest = b.tier().unwrap().manifest().await;
    // A restarts on its directory, which reaches further than the bucket: refused, unclaimed
    // (by its claim record; without one, an older build's directory, by the divergence check).
    refused_with_and_without_claim_record(&bucket, &prefix, &root.path().join("a"), || {
        rare_rounds.clone()
    })
    .await;
    let still = seglog_tier::latest_manifest(bucket.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.writer_epoch, newest.writer_epoch, "nobody claimed");
    append_events(&b, 1040, 1050).await;
    b.shutdown().await.unwrap();
}
