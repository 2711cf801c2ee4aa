//! The set-up and checks of the restore-directory reviews (`review21.rs`, `review23.rs`,
//! `review24.rs`): a shipped log, and what a directory holds.

use super::{events_of, options, write_events, Events};
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::Tier;
use std::path::Path as FsPath;
use std::sync::Arc;

/// Ships a log of several sealed segments (inline checkpoints) under `prefix`; returns the
/// events shipped.
pub async fn ship_log(store: Arc<dyn ObjectStore>, prefix: &str, dir: &FsPath) -> Events {
    let options = options().checkpoints(seglog::CheckpointMode::Inline);
    let log = seglog::Log::open(dir, options).await.unwrap();
    let tier = Tier::claim(store.clone(), Path::from(prefix))
        .await
        .unwrap();
    write_events(&log, 0, 200).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    let m = tier.manifest().await;
    assert!(m.segments.len() >= 3, "{} segments", m.segments.len());
    let events = events_of(&log, m.last_lsn());
    log.close().unwrap();
    events
}

/// Every name in `dir` (none when it is absent), sorted.
pub fn names(dir: &FsPath) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The names in `dir` but `LOCK`, which is no data: a restore leaves it (removing a lock
/// file lets two processes hold it).
pub fn data_names(dir: &FsPath) -> Vec<String> {
    let mut names = names(dir);
    names.retain(|n| n != "LOCK");
    names
}

/// How many events `e` holds.
pub fn count(e: &Events) -> usize {
    e.values().map(Vec::len).sum()
}
