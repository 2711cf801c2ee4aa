//! Review 27 (hostile) of the directory's claim record (`TIER_CLAIM`, b08295f). Each test
//! failed before its fix. `open_from_bucket`'s continue is `check_continues`, then
//! `Tier::claim_for_directory`, then a ship round; these tests call the same functions so
//! that the fault-injecting store can be used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::{Error, Tier};
use std::sync::Arc;
use support::fault::FaultStore;

/// A `TIER_CLAIM` that is a FIFO: opening it blocked for ever (holding the log's `LOCK` and
/// a blocking-pool thread). It is refused as not a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_record_that_is_a_fifo_does_not_hang_the_continue() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("p");
    let dir = root.path().join("a");
    let a = seglog_tier::restore(store.clone(), prefix.clone(), &dir, support::options())
        .await
        .unwrap();
    support::write_events(&a.log, 0, 20).await;
    a.tier.ship(&a.log).await.unwrap();
    a.log.close().unwrap();
    drop(a);
    let record = dir.join(seglog_tier::CLAIM_RECORD_FILE_NAME);
    std::fs::remove_file(&record).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&record)
        .status()
        .unwrap();
    assert!(made.success());

    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    let checked = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        seglog_tier::check_continues(store.as_ref(), &prefix, &log),
    )
    .await;
    let claimed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        Tier::claim_for_directory(store.clone(), prefix.clone(), &dir),
    )
    .await;
    // Unblock the reader threads (else the runtime's shutdown waits for them forever).
    for _ in 0..20 {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: fails (ENXIO) once no reader is left.
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000)
            .open(&record);
        drop(opened);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    log.close().unwrap();
    assert!(checked.is_ok(), "check_continues hung on a FIFO TIER_CLAIM");
    assert!(
        claimed.is_ok(),
        "claim_for_directory hung on a FIFO TIER_CLAIM"
    );
}

/// A store whose PUTs of one key, while `hold` is set, report failure and are not applied
/// yet: the first one's request lands later ([`Held::release`]), as a PUT that timed out
/// client-side but reached the store afterwards.
#[derive(Debug)]
struct Held {
    inner: Arc<dyn ObjectStore>,
    key: std::sync::Mutex<Option<Path>>,
    held: std::sync::Mutex<Option<(Path, object_store::PutPayload, object_store::PutOptions)>>,
}

impl Held {
    fn release(&self) -> impl std::future::Future<Output = ()> + '_ {
        let held = self.held.lock().unwrap().take();
        *self.key.lock().unwrap() = None;
        async move {
            let (location, payload, opts) = held.expect("a held PUT");
            self.inner.put_opts(&location, payload, opts).await.unwrap();
        }
    }
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held")
    }
}

#[async_trait::async_trait]
impl ObjectStore for Held {
    async fn put_opts(
        &self,
        location: &Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        if self.key.lock().unwrap().as_ref() == Some(location) {
            let mut held = self.held.lock().unwrap();
            if held.is_none() {
                *held = Some((location.clone(), payload, opts));
            }
            return Err(object_store::Error::Generic {
                store: "Held",
                source: "timeout".into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures_util::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
    {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// The owner's continue claim PUT times out and lands late, after its retry wrote a new
/// record (same epoch, new nonce): the retry lost to the node's own earlier claim
/// (`ClaimLost`), and from then on the node's own manifest looked like a stranger's claim:
/// `TakenOver` for ever, although nobody else ever claimed the log. Now a retry of an
/// unconfirmed claim uses its nonce again, and settles against the late one as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_own_late_landing_claim_does_not_lock_it_out() {
    let root = tempfile::tempdir().unwrap();
    let held = Arc::new(Held {
        inner: Arc::new(InMemory::new()),
        key: std::sync::Mutex::new(None),
        held: std::sync::Mutex::new(None),
    });
    let fault = FaultStore::new(held.clone());
    let store: Arc<dyn ObjectStore> = fault.clone();
    let prefix = Path::from("p");
    let dir = root.path().join("a");

    let a = seglog_tier::restore(store.clone(), prefix.clone(), &dir, support::options())
        .await
        .unwrap();
    support::write_events(&a.log, 0, 50).await;
    a.log.roll().await.unwrap();
    a.tier.ship(&a.log).await.unwrap();
    a.log.close().unwrap();
    drop(a);
    let newest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    let next_key = seglog_tier::manifest_key(&prefix, newest.manifest_id + 1);

    // Restart 1: the claim's PUTs (and its resends) time out; the first one is in flight.
    *held.key.lock().unwrap() = Some(next_key.clone());
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    seglog_tier::check_continues(store.as_ref(), &prefix, &log)
        .await
        .unwrap();
    let first = Tier::claim_for_directory(store.clone(), prefix.clone(), &dir).await;
    assert!(first.is_err(), "the claim's outcome was unknown");
    log.close().unwrap();

    // Restart 2: its claim PUT is issued just as the first one lands.
    let gate = fault.pause_next_put(next_key.as_ref());
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    seglog_tier::check_continues(store.as_ref(), &prefix, &log)
        .await
        .unwrap();
    let second = {
        let (store, prefix, dir) = (store.clone(), prefix.clone(), dir.clone());
        tokio::spawn(async move { Tier::claim_for_directory(store, prefix, &dir).await })
    };
    gate.reached.notified().await;
    held.release().await;
    gate.resume.notify_one();
    let second = second.await.unwrap();
    assert!(
        !matches!(second, Err(Error::ClaimLost { .. })),
        "the retry lost to the node's own earlier claim"
    );
    log.close().unwrap();

    // Restart 3: nobody but this node ever claimed the log.
    let log = seglog::Log::open(&dir, support::options()).await.unwrap();
    let third = seglog_tier::check_continues(store.as_ref(), &prefix, &log).await;
    log.close().unwrap();
    assert!(
        third.is_ok(),
        "the owner is locked out of its own log by its own claim: {:?}",
        third.err()
    );
}
