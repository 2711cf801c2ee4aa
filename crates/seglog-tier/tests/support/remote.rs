//! The set-up of the `Durability::Remote` tests (`remote_durability.rs`,
//! `review17_remote.rs`): a writer under test, and what a node restoring right now finds.

use futures_util::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use seglog_tier::{RemoteDurable, Tier};
use std::sync::Arc;

pub fn prefix() -> Path {
    Path::from("p")
}

/// A copy of every object of `store`: the bucket as a node restoring right now finds it
/// (the restore then claims the copy, leaving the writer under test unfenced).
pub async fn snapshot(store: &dyn ObjectStore) -> Arc<dyn ObjectStore> {
    let copy = InMemory::new();
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    for meta in metas {
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        copy.put(&meta.location, bytes.into()).await.unwrap();
    }
    Arc::new(copy)
}

/// Restores `store` into a fresh directory under `root` and returns its events.
pub async fn restored_events(store: Arc<dyn ObjectStore>, root: &std::path::Path) -> super::Events {
    let dir = tempfile::tempdir_in(root).unwrap();
    let restored = seglog_tier::restore(store, prefix(), dir.path().join("log"), super::options())
        .await
        .unwrap();
    let events = super::events_of(&restored.log, u64::MAX);
    restored.log.close().unwrap();
    events
}

pub async fn remote_writer(
    store: Arc<dyn ObjectStore>,
    dir: &std::path::Path,
) -> (RemoteDurable, seglog::Log) {
    let log = seglog::Log::open(dir, super::options()).await.unwrap();
    let tier = Tier::claim(store, prefix()).await.unwrap();
    (RemoteDurable::spawn(tier, log.clone()), log)
}
