//! The tier against a real S3 server over the wire (moto's, started by
//! `tests/s3/run-moto.sh`): object_store's own conditional-put conformance checks first (the
//! server must honour If-None-Match on PUT, or nothing else here means anything), then the
//! zombie, racing-claims and failover scenarios that `ownership.rs` runs in memory.
//!
//! Runs when `SEGLOG_S3_ENDPOINT` is set (`SEGLOG_S3_BUCKET`, default `seglog-test`, and
//! `SEGLOG_S3_CONFORMANCE_BUCKET`, default `seglog-conformance`, must exist); otherwise each test says so and passes without checking anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

fn s3_store() -> Option<Arc<dyn ObjectStore>> {
    let bucket = std::env::var("SEGLOG_S3_BUCKET").unwrap_or_else(|_| "seglog-test".into());
    s3_store_in(&bucket)
}

fn s3_store_in(bucket: &str) -> Option<Arc<dyn ObjectStore>> {
    let Ok(endpoint) = std::env::var("SEGLOG_S3_ENDPOINT") else {
        // Where the S3 server must be there (tests/s3/run-moto.sh sets it), a missing
        // endpoint is a broken setup, not a skip.
        assert!(
            std::env::var_os("SEGLOG_REQUIRE_S3").is_none(),
            "SEGLOG_REQUIRE_S3 is set but SEGLOG_S3_ENDPOINT is not"
        );
        eprintln!("SEGLOG_S3_ENDPOINT is not set: not run (tests/s3/run-moto.sh runs it)");
        return None;
    };
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .build()
        .unwrap();
    Some(Arc::new(store))
}

/// A prefix no earlier run used.
fn fresh_prefix(name: &str) -> Path {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Path::from(format!("runs/{}-{nanos}/{name}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_honours_conditional_puts() {
    // object_store's own checks (create-only and update-if-match) empty their bucket first:
    // they get one of their own (`SEGLOG_S3_CONFORMANCE_BUCKET`, default
    // `seglog-conformance`), never the one the other tests use.
    let bucket = std::env::var("SEGLOG_S3_CONFORMANCE_BUCKET")
        .unwrap_or_else(|_| "seglog-conformance".into());
    let Some(store) = s3_store_in(&bucket) else {
        return;
    };
    object_store::integration::put_opts(store.as_ref(), true).await;
    // And ours, spelled out: a second create of the same key fails with AlreadyExists and
    // leaves the first object's bytes.
    let key = fresh_prefix("probe").join("k");
    let create = || PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    store
        .put_opts(&key, PutPayload::from_static(b"first"), create())
        .await
        .unwrap();
    let second = store
        .put_opts(&key, PutPayload::from_static(b"second"), create())
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "{second:?}"
    );
    let got = object_store::ObjectStoreExt::get(store.as_ref(), &key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], b"first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_fenced_zombie_stops_appending_and_deletes_nothing_of_the_new_owner() {
    let Some(store) = s3_store() else { return };
    let root = tempfile::tempdir().unwrap();
    support::scenario_zombie(store, fresh_prefix("zombie"), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_an_owner_prunes_its_own_manifests_and_a_zombie_is_still_fenced() {
    let Some(store) = s3_store() else { return };
    let root = tempfile::tempdir().unwrap();
    support::scenario_manifest_pruning(store, fresh_prefix("pruning"), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_every_round_of_racing_claims_has_exactly_one_winner() {
    let Some(store) = s3_store() else { return };
    support::scenario_racing_claims(store, fresh_prefix("racing"), 10, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failover_restores_every_shipped_event_with_its_sequence_and_bytes() {
    let Some(store) = s3_store() else { return };
    let root = tempfile::tempdir().unwrap();
    support::scenario_failover(store, fresh_prefix("failover"), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_after_an_erasure_and_the_grace_period_no_object_holds_the_erased_tenants_bytes() {
    let Some(store) = s3_store() else { return };
    let root = tempfile::tempdir().unwrap();
    // S3's Last-Modified has one-second resolution: a grace of a few seconds.
    support::scenario_erasure(
        store,
        fresh_prefix("erasure"),
        root.path(),
        std::time::Duration::from_secs(8),
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_an_erasure_of_offloaded_segments_reaches_the_bucket_too() {
    let Some(store) = s3_store() else { return };
    let root = tempfile::tempdir().unwrap();
    support::scenario_erasure(
        store,
        fresh_prefix("erasure-offloaded"),
        root.path(),
        std::time::Duration::from_secs(8),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_chunk_shipping_restores_the_active_segment_and_fences_the_zombie() {
    let Some(store) = s3_store() else { return };
    let root = tempfile::tempdir().unwrap();
    support::scenario_chunk_failover(store, fresh_prefix("chunks"), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_remote_durability_acknowledges_only_what_a_restore_finds_and_fences_the_zombie() {
    let Some(store) = s3_store() else { return };
    let root = tempfile::tempdir().unwrap();
    support::scenario_remote_durability(store, fresh_prefix("remote"), root.path()).await;
}
