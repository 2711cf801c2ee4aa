//! Issue 17, acceptance 5: the EventStore conformance cases (`conformance/cases.rs`, the
//! same as `eventstore_conformance.rs`) against a store whose log ships every sealed segment
//! to the bucket and keeps **zero** sealed segments locally (read-through), its active
//! segment rolled after every append so the data spans many segments: every read goes to
//! the bucket, by ranged GETs through the block cache. The bucket is `object_store`'s in-memory
//! store; `eventstore_conformance_moto.rs` runs the same cases on moto's S3 server.
//!
//! `health_check_fails_when_the_log_is_poisoned` runs on the simulated file system, which the
//! tier (it ships from real files) does not use: it checks the local store there too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "conformance/tiered.rs"]
mod tiered;

use seglog_tier::object_store::memory::InMemory;
use seglog_tier::object_store::ObjectStore;
use std::sync::OnceLock;

/// The store under test: local retention zero, reads through an in-memory bucket.
type Store = tiered::TieredStore;

/// One bucket for the whole binary (each store's prefix is its directory): moto's S3
/// server at `SEGLOG_S3_ENDPOINT` (bucket `SEGLOG_S3_BUCKET`, default `seglog-test`), else
/// an in-memory store.
fn bucket() -> Arc<dyn ObjectStore> {
    static BUCKET: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    BUCKET
        .get_or_init(|| match std::env::var("SEGLOG_S3_ENDPOINT") {
            Ok(endpoint) => {
                let bucket =
                    std::env::var("SEGLOG_S3_BUCKET").unwrap_or_else(|_| "seglog-test".into());
                let store = seglog_tier::object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(endpoint)
                    .with_allow_http(true)
                    .with_virtual_hosted_style_request(false)
                    .with_bucket_name(bucket)
                    .with_region("us-east-1")
                    .with_access_key_id("test")
                    .with_secret_access_key("test")
                    .with_conditional_put(
                        seglog_tier::object_store::aws::S3ConditionalPut::ETagMatch,
                    )
                    .build()
                    .unwrap();
                eprintln!("conformance over read-through: moto's S3 server");
                Arc::new(store)
            }
            Err(_) => {
                assert!(
                    std::env::var_os("SEGLOG_REQUIRE_S3").is_none(),
                    "SEGLOG_REQUIRE_S3 is set but SEGLOG_S3_ENDPOINT is not"
                );
                Arc::new(InMemory::new())
            }
        })
        .clone()
}

async fn open(dir: &Path) -> Store {
    // Unique per run and directory (moto's bucket outlives the run).
    let prefix = seglog_tier::object_store::path::Path::from(format!(
        "conformance/{}-{}",
        std::process::id(),
        dir.file_name().unwrap().to_string_lossy().replace('.', "_")
    ));
    tiered::open_tiered(bucket(), prefix, dir).await
}

/// The log is local (the bucket only backs its sealed segments).
const REQUIRES_NETWORK: bool = false;

include!("conformance/cases.rs");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_of_a_sealed_segment_goes_to_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (e, t) = (exec("many"), tenant("t"));
    let variants = every_variant();
    for round in 0..6 {
        for v in &variants {
            store.append(&e, &t, v.clone()).await.unwrap();
        }
        store
            .append(
                &exec(&format!("other-{round}")),
                &tenant("u"),
                variants[2].clone(),
            )
            .await
            .unwrap();
    }
    let log = store.log();
    let offloaded = log.offloaded_segments().len();
    assert!(offloaded >= 10, "the data spans many segments: {offloaded}");
    let seg_files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert_eq!(seg_files, 1, "only the active segment is on disk");
    let before = store.read_through().stats();
    let loaded = store.load_events(&e).await.unwrap();
    assert_eq!(loaded.len(), 6 * variants.len());
    for (i, got) in loaded.iter().enumerate() {
        assert_eq!(as_json(&got.event), as_json(&variants[i % variants.len()]));
        assert_eq!(got.tenant_id, t);
    }
    let after = store.read_through().stats();
    assert!(
        after.range_gets > before.range_gets,
        "the read went to the bucket"
    );
    // Read again: from the cache, no GET.
    assert_eq!(store.load_events(&e).await.unwrap().len(), loaded.len());
    let again = store.read_through().stats();
    assert_eq!(
        again.range_gets, after.range_gets,
        "the second read hit the cache"
    );
    assert!(again.cache_hits > after.cache_hits);
    // Another tenant's executions, in the same segments, are not in this read.
    assert!(loaded.iter().all(|x| x.execution_id == e));
    assert!(log.verify().unwrap().is_clean());
    store.shutdown().await.unwrap();
}
