//! Acceptance test 6 of issue 17: an erasure reaches the bucket. After a tenant is erased,
//! the swap is shipped and orphan collection has run past its grace period, no object in
//! the bucket holds any byte of that tenant; before the grace period, nothing is deleted.
//! (`s3.rs` runs the same scenario against moto's S3 server.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_erasure_and_the_grace_period_no_object_holds_the_erased_tenants_bytes() {
    let root = tempfile::tempdir().unwrap();
    support::scenario_erasure(
        Arc::new(InMemory::new()),
        Path::from("logs/p1"),
        root.path(),
        Duration::from_secs(5),
        false,
    )
    .await;
}

/// The same with every shipped sealed segment offloaded (read-through retention) before the
/// erasure: it rehydrates the segments holding the tenant's records, and the bucket and the
/// local disk end with none of the tenant's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_of_offloaded_segments_reaches_the_bucket_too() {
    let root = tempfile::tempdir().unwrap();
    support::scenario_erasure(
        Arc::new(InMemory::new()),
        Path::from("logs/p2"),
        root.path(),
        Duration::from_secs(5),
        true,
    )
    .await;
}
