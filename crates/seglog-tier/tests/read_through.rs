//! Read-through (issue 17): shipped sealed segments leave the local disk and their records
//! are read from the bucket by ranged GETs, cached. What must hold: only segments a
//! committed manifest names leave the disk; a restart reads through; later ship rounds keep
//! naming offloaded segments (orphan collection never deletes them); a damaged or truncated
//! object is a clear error, never wrong data or a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use seglog_tier::{ReadThrough, ReadThroughOptions, Tier};
use std::sync::Arc;
use std::time::Duration;
use support::{events_of, options, write_events};

fn local_sealed(log: &seglog::Log) -> usize {
    log.segments().iter().filter(|s| s.sealed).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_shipped_segments_leave_the_disk_and_the_newest_are_kept() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("logs/rt");
    let dir = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(dir.path().join("a"), options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    let rt = ReadThrough::new(
        store.clone(),
        ReadThroughOptions::default().keep_local_segments(2),
    )
    .unwrap();
    rt.attach(&log);
    write_events(&log, 0, 300).await;
    let sealed = local_sealed(&log);
    assert!(sealed >= 6, "{sealed} sealed segments");
    // Nothing shipped yet: nothing leaves the disk.
    let report = rt.offload(&tier, &log).await.unwrap();
    assert_eq!(report.segments_offloaded, 0);
    assert_eq!(report.not_shipped, sealed - 2);
    assert_eq!(local_sealed(&log), sealed);
    // Shipped: all but the newest two sealed segments go.
    let (_, report) = rt.ship_and_offload(&tier, &log).await.unwrap();
    assert_eq!(report.segments_offloaded, sealed - 2);
    assert_eq!(local_sealed(&log), 2);
    assert_eq!(
        events_of(&log, u64::MAX)
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        300
    );
    assert!(rt.stats().range_gets > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_offloaded_segments_reopens_reads_through_and_ships_on() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("logs/restart");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    let log = seglog::Log::open(&path, options()).await.unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    let rt = ReadThrough::new(store.clone(), ReadThroughOptions::default()).unwrap();
    rt.attach(&log);
    write_events(&log, 0, 200).await;
    rt.ship_and_offload(&tier, &log).await.unwrap();
    let expected = events_of(&log, u64::MAX);
    let offloaded = log.offloaded_segments().len();
    assert!(offloaded >= 4);
    assert_eq!(local_sealed(&log), 0);
    log.close().unwrap();
    drop(tier);

    let log = seglog::Log::open(&path, options()).await.unwrap();
    assert_eq!(log.offloaded_segments().len(), offloaded);
    let report = log.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.offloaded.len(), offloaded);
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    let rt = ReadThrough::new(store.clone(), ReadThroughOptions::default()).unwrap();
    rt.attach(&log);
    let read = tokio::task::spawn_blocking({
        let log = log.clone();
        move || events_of(&log, u64::MAX)
    })
    .await
    .unwrap();
    assert_eq!(read, expected);
    // Ship rounds go on (the offloaded segments stay named), and orphan collection leaves
    // every offloaded segment's object alone.
    write_events(&log, 200, 260).await;
    rt.ship_and_offload(&tier, &log).await.unwrap();
    let named: Vec<String> = tier
        .manifest()
        .await
        .segments
        .iter()
        .map(|s| s.segment.key.clone())
        .collect();
    for o in log.offloaded_segments() {
        assert!(
            named.contains(&o.location),
            "segment {} no longer named",
            o.number
        );
    }
    tier.collect_orphans(Duration::ZERO).await.unwrap();
    for o in log.offloaded_segments() {
        store.head(&Path::from(o.location.as_str())).await.unwrap();
    }
    let all = tokio::task::spawn_blocking({
        let log = log.clone();
        move || events_of(&log, u64::MAX)
    })
    .await
    .unwrap();
    assert_eq!(all.values().map(Vec::len).sum::<usize>(), 260);
    // A restore elsewhere from the bucket has every shipped event (the active segment is
    // not shipped).
    let shipped_up_to = tier.manifest().await.last_lsn();
    let shipped = tokio::task::spawn_blocking({
        let log = log.clone();
        move || events_of(&log, shipped_up_to)
    })
    .await
    .unwrap();
    assert!(shipped.values().map(Vec::len).sum::<usize>() >= 200);
    let restored = seglog_tier::restore(store.clone(), prefix, dir.path().join("b"), options())
        .await
        .unwrap();
    assert_eq!(events_of(&restored.log, u64::MAX), shipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_truncated_bucket_object_is_a_clear_error_not_wrong_data() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("logs/damaged");
    let dir = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(dir.path().join("a"), options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    write_events(&log, 0, 200).await;
    let expected = events_of(&log, u64::MAX);
    let rt = ReadThrough::new(store.clone(), ReadThroughOptions::default()).unwrap();
    rt.attach(&log);
    rt.ship_and_offload(&tier, &log).await.unwrap();
    let victim = log.offloaded_segments()[1].clone();
    let key = Path::from(victim.location.as_str());
    let good = store.get(&key).await.unwrap().bytes().await.unwrap();

    let read_all = |log: seglog::Log| async move {
        tokio::task::spawn_blocking(move || {
            (0..support::EXECUTIONS)
                .map(|e| log.read(&format!("exec-{e}")))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap()
    };
    // Bit flips in the object, each read by a fresh read-through (no cache): every read
    // either returns exactly the right events or fails, and at least one fails.
    for at in [80usize, 500, good.len() / 2, good.len() - 10] {
        let mut bad = good.to_vec();
        bad[at] ^= 0x10;
        store.put(&key, PutPayload::from(bad)).await.unwrap();
        let fresh = ReadThrough::new(store.clone(), ReadThroughOptions::default()).unwrap();
        fresh.attach(&log);
        let results = read_all(log.clone()).await;
        let mut failed = 0;
        for (e, r) in results.into_iter().enumerate() {
            match r {
                Ok(events) => {
                    let got: Vec<_> = events.iter().map(|x| (x.seq, x.payload.to_vec())).collect();
                    assert_eq!(
                        Some(&got),
                        expected.get(&format!("exec-{e}")),
                        "flip at {at}"
                    );
                }
                Err(err) => {
                    failed += 1;
                    assert!(
                        matches!(err, seglog::Error::Corruption(_)),
                        "flip at {at}: {err}"
                    );
                }
            }
        }
        assert!(failed > 0, "the flip at {at} went unnoticed");
    }
    // A truncated object: the GET of its missing bytes fails.
    store
        .put(&key, PutPayload::from(good.slice(..good.len() / 3)))
        .await
        .unwrap();
    let fresh = ReadThrough::new(store.clone(), ReadThroughOptions::default()).unwrap();
    fresh.attach(&log);
    let results = read_all(log.clone()).await;
    assert!(results.iter().any(Result::is_err));
    // The object restored: the same read-through reads right again (the bad bytes it cached
    // were forgotten when they failed their checks).
    store.put(&key, PutPayload::from(good)).await.unwrap();
    let results = read_all(log.clone()).await;
    for (e, r) in results.into_iter().enumerate() {
        let got: Vec<_> = r
            .unwrap()
            .iter()
            .map(|x| (x.seq, x.payload.to_vec()))
            .collect();
        assert_eq!(Some(&got), expected.get(&format!("exec-{e}")));
    }
}
