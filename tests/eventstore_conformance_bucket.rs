//! The EventStore conformance cases (`conformance/cases.rs`, the same as
//! `eventstore_conformance.rs`) against a store opened with
//! `SeglogEventStore::open_from_bucket` (issue 17) in `Durability::Remote`: every append
//! returns only once its bytes are in the bucket, and every reopen of a case's directory is
//! the owner continuing its log (a claim, then a ship round that checks the log continues
//! the bucket's). The bucket is `object_store`'s in-memory store; each directory has a
//! prefix of its own.
//!
//! `health_check_fails_when_the_log_is_poisoned` runs on the simulated file system, which
//! the tier (it ships from real files) does not use: it checks the local store there too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_eventstore::BucketOptions;
use seglog_tier::object_store::memory::InMemory;
use seglog_tier::object_store::ObjectStore;
use seglog_tier::Durability;
use std::sync::OnceLock;
use std::time::Duration;

/// The store under test: opened from the bucket, appends durable in the bucket.
type Store = SeglogEventStore;

/// A store opened from a bucket needs it.
const REQUIRES_NETWORK: bool = true;

/// One bucket for the whole binary (each store's prefix is its directory).
fn bucket() -> Arc<dyn ObjectStore> {
    static BUCKET: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    BUCKET.get_or_init(|| Arc::new(InMemory::new())).clone()
}

async fn open(dir: &Path) -> Store {
    let prefix = seglog_tier::object_store::path::Path::from(format!(
        "conformance-bucket/{}",
        dir.file_name().unwrap().to_string_lossy().replace('.', "_")
    ));
    let options = BucketOptions::default()
        .durability(Durability::Remote)
        .ship_interval(Duration::from_millis(50));
    SeglogEventStore::open_from_bucket(bucket(), prefix, dir, options)
        .await
        .unwrap()
}

include!("conformance/cases.rs");
