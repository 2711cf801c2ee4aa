//! Review 16: a chunk read back from the bucket must never panic the shipper, whatever its
//! (checksummed) header says. Each test is a finding: it fails on the code under review.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use futures_util::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use seglog_tier::Tier;
use std::sync::Arc;

fn prefix() -> Path {
    Path::from("p")
}

/// Rewrites a chunk's `start` field (offset 48) and its CRC-32 (over bytes 0..72 and the
/// payload, stored at 72..76), as a damaged or hostile bucket may hold it.
fn forge_start(chunk: &[u8], start: u64) -> Vec<u8> {
    let mut b = chunk.to_vec();
    b[48..56].copy_from_slice(&start.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[..72]);
    crc.update(&b[76..]);
    let sum = crc.finalize();
    b[72..76].copy_from_slice(&sum.to_le_bytes());
    b
}

/// The owner restarts on its disk and claims again with chunk shipping: its first round
/// reads the last chunk back to learn where the chunks end (`chunk_progress`). A last
/// chunk whose `start` is near `u64::MAX` (valid magic, version, kind, payload length and
/// checksum) makes `h.start + h.payload_len` overflow: the shipper panics (debug builds)
/// instead of reporting the bucket as corrupt or diverged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_whose_start_overflows_is_reported_not_panicked_on() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(root.path().join("a"), support::options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), prefix())
        .await
        .unwrap()
        .with_active_chunks();
    support::write_events(&log, 0, 5).await;
    let report = tier.ship(&log).await.unwrap();
    assert!(report.chunks_uploaded >= 1, "{report:?}");
    drop(tier);

    let mut chunks: Vec<Path> = store
        .list(Some(&prefix()))
        .map_ok(|m| m.location)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.as_ref().contains("chunk"))
        .collect();
    chunks.sort();
    let last = chunks.last().expect("a chunk was shipped").clone();
    let bytes = store.get(&last).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"SEGLOGCK");
    let forged = forge_start(&bytes, u64::MAX - 1);
    store.put(&last, PutPayload::from(forged)).await.unwrap();

    let shipping = tokio::spawn(async move {
        let tier = Tier::claim(store.clone(), prefix())
            .await
            .unwrap()
            .with_active_chunks();
        let result = tier.ship(&log).await;
        format!("{result:?}")
    });
    match shipping.await {
        Ok(result) => assert!(result.starts_with("Err"), "{result}"),
        Err(e) => panic!("the shipper panicked on a chunk read from the bucket: {e}"),
    }
}
