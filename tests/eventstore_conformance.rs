//! Conformance of `SeglogEventStore` to enact-core's `EventStore` / `StorageBackend`:
//! every method and every guarantee of the trait's documentation, checked on a fresh store
//! and again after the store is shut down and reopened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The store under test: a local log.
type Store = SeglogEventStore;

async fn open(dir: &Path) -> Store {
    SeglogEventStore::open(dir).await.unwrap()
}

/// A local log needs no network.
const REQUIRES_NETWORK: bool = false;

include!("conformance/cases.rs");
