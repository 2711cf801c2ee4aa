//! A restore fetches ahead: the objects it needs (the active segment's chunks, the sealed
//! segments, a lazy restore's checkpoints and headers) are requested several at a time, so
//! that against a store with a first-byte latency (S3's tens of milliseconds) its time is
//! not one round trip per object. What must hold all the same: the restored events are the
//! shipped ones, in order, and a failed fetch leaves the destination empty, with no write
//! landing after the restore has returned its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::{FetchSegments, RestoreOptions, Tier};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::fault::FaultStore;
use support::{events_of, write_events, Events};

/// What a store's GET waits before it answers.
const GET_LATENCY: Duration = Duration::from_millis(15);

fn prefix() -> Path {
    Path::from("p")
}

async fn all_events(log: &seglog::Log) -> Events {
    let log = log.clone();
    tokio::task::spawn_blocking(move || events_of(&log, u64::MAX))
        .await
        .unwrap()
}

/// 16 KiB segments: the first 400 events seal several, the chunk rounds' fit in one.
#[allow(clippy::field_reassign_with_default)]
fn options() -> seglog::Options {
    let mut o = support::options();
    o.segment_size_bytes = 16 * 1024;
    o
}

/// A log of sealed segments, shipped with their checkpoints, and then an active segment
/// shipped as `rounds` chunks. Node A is then lost. Returns the store and every event A
/// acknowledged.
async fn shipped_log(root: &std::path::Path, rounds: usize) -> (Arc<FaultStore>, Events) {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    let dir_a = root.join("a");
    let log = seglog::Log::open(&dir_a, options()).await.unwrap();
    write_events(&log, 0, 400).await;
    log.roll().await.unwrap();
    let tier = Tier::claim(store.clone(), prefix())
        .await
        .unwrap()
        .with_active_chunks();
    tier.ship(&log).await.unwrap();
    let mut next = 400;
    for _ in 0..rounds {
        write_events(&log, next, next + 2).await;
        next += 2;
        let shipped = tier.ship(&log).await.unwrap();
        assert!(shipped.chunks_uploaded <= 1, "{shipped:?}");
    }
    let expected = all_events(&log).await;
    drop(tier);
    drop(log);
    std::fs::remove_dir_all(&dir_a).unwrap();
    (store, expected)
}

/// Restores the log of [`shipped_log`] (`rounds` chunk rounds) with every GET of a key
/// containing `fragment` slowed by [`GET_LATENCY`], fetching `fetch`; checks every event came
/// back and returns the report and the most such GETs seen in flight at once.
async fn restore_slowed(
    rounds: usize,
    fragment: &str,
    fetch: FetchSegments,
) -> (seglog_tier::RestoreReport, u64) {
    let root = tempfile::tempdir().unwrap();
    let (store, expected) = shipped_log(root.path(), rounds).await;
    store.delay_gets(fragment, GET_LATENCY);
    let b = seglog_tier::restore_with(
        store.clone() as Arc<dyn ObjectStore>,
        prefix(),
        root.path().join("b"),
        options(),
        RestoreOptions::default().fetch_segments(fetch),
    )
    .await
    .unwrap();
    assert_eq!(all_events(&b.log).await, expected);
    let most = store.delayed_gets_max_in_flight.load(Ordering::SeqCst);
    (b.report, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_fetches_the_chunks_of_the_active_segment_several_at_a_time() {
    let (report, most) = restore_slowed(24, "/chunks/", FetchSegments::Whole).await;
    assert!(report.active_bytes > 0, "{report:?}");
    assert!(most >= 4, "the chunks were fetched {most} at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_restore_fetches_sealed_segments_several_at_a_time() {
    let (report, most) = restore_slowed(1, "/segments/", FetchSegments::Whole).await;
    assert!(report.segments >= 4, "{report:?}");
    assert!(most >= 2, "the segments were fetched {most} at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_restore_fetches_checkpoints_several_at_a_time() {
    let (report, most) = restore_slowed(1, "/checkpoints/", FetchSegments::Lazily).await;
    assert!(report.segments_offloaded >= 4, "{report:?}");
    assert!(most >= 4, "the checkpoints were fetched {most} at a time");
}

/// Files in `dir` other than the restore's own lock (the directory may be gone).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("LOCK"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_fails_while_others_are_in_flight_leaves_the_destination_empty() {
    let root = tempfile::tempdir().unwrap();
    let (store, _) = shipped_log(root.path(), 12).await;
    for (fragment, nth) in [("/segments/", 3), ("/chunks/", 5), ("/checkpoints/", 2)] {
        store.delay_gets(fragment, GET_LATENCY);
        store.fail_get(fragment, nth);
        for lazily in [false, true] {
            let dest = root
                .path()
                .join(format!("b-{}-{lazily}", fragment.trim_matches('/')));
            let fetch = if lazily {
                FetchSegments::Lazily
            } else {
                FetchSegments::Whole
            };
            let restored = seglog_tier::restore_with(
                store.clone() as Arc<dyn ObjectStore>,
                prefix(),
                &dest,
                options(),
                RestoreOptions::default().fetch_segments(fetch),
            )
            .await;
            if restored.is_ok() {
                // The armed GET was not one this restore makes (a lazy restore fetches no
                // sealed segment whole): it stays armed for the next.
                continue;
            }
            assert_eq!(files_in(&dest), Vec::<String>::new(), "{fragment} {lazily}");
            // Nothing started before the error lands afterwards.
            tokio::time::sleep(GET_LATENCY * 4).await;
            assert_eq!(files_in(&dest), Vec::<String>::new(), "{fragment} {lazily}");
            // And the destination restores cleanly once the store answers.
            let again = seglog_tier::restore_with(
                store.clone() as Arc<dyn ObjectStore>,
                prefix(),
                &dest,
                options(),
                RestoreOptions::default().fetch_segments(fetch),
            )
            .await
            .unwrap();
            drop(again);
        }
    }
}
