//! The orphan collection's tests (`review29.rs`, `review30.rs`, `review31.rs`): a store whose
//! DELETEs can be held, slowed down or refused, and an owner whose failed round left an
//! upload in the bucket that no manifest names.

use super::fault::{Fault, FaultStore, Gate};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use seglog_tier::Tier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A store whose DELETEs can be held at a gate (a DELETE in flight), slowed down (S3 takes
/// tens of milliseconds per DELETE request) or refused (a bucket with Object Lock, or an IAM
/// role without `s3:DeleteObject`); it counts the DELETEs tried and the LISTs sent.
/// Everything else goes straight to the inner store.
#[derive(Debug)]
pub struct ControlledDeletes {
    inner: Arc<dyn ObjectStore>,
    /// Held at the next DELETE.
    gate: Arc<Mutex<Option<Gate>>>,
    /// Every DELETE takes this long.
    pub delay: Arc<Mutex<Option<Duration>>>,
    /// Every DELETE fails with `PermissionDenied`.
    pub refuse: Arc<AtomicBool>,
    pub deletes: Arc<AtomicU64>,
    pub lists: Arc<AtomicU64>,
}

impl ControlledDeletes {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(ControlledDeletes {
            inner,
            gate: Arc::default(),
            delay: Arc::default(),
            refuse: Arc::default(),
            deletes: Arc::default(),
            lists: Arc::default(),
        })
    }

    pub fn pause_next_delete(&self) -> Gate {
        let gate = Gate::default();
        *self.gate.lock().unwrap() = Some(gate.clone());
        gate
    }
}

impl std::fmt::Display for ControlledDeletes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControlledDeletes({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for ControlledDeletes {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let (inner, gate, delay, refuse, deletes) = (
            self.inner.clone(),
            self.gate.clone(),
            self.delay.clone(),
            self.refuse.clone(),
            self.deletes.clone(),
        );
        locations
            .then(move |location| {
                let (inner, gate, delay, refuse, deletes) = (
                    inner.clone(),
                    gate.clone(),
                    delay.clone(),
                    refuse.clone(),
                    deletes.clone(),
                );
                async move {
                    let location = location?;
                    deletes.fetch_add(1, Ordering::SeqCst);
                    if refuse.load(Ordering::SeqCst) {
                        return Err(object_store::Error::PermissionDenied {
                            path: location.to_string(),
                            source: "AccessDenied: DELETE refused by the bucket policy".into(),
                        });
                    }
                    let held = gate.lock().unwrap().take();
                    if let Some(gate) = held {
                        gate.reached.notify_one();
                        gate.resume.notified().await;
                    }
                    let wait = *delay.lock().unwrap();
                    if let Some(wait) = wait {
                        tokio::time::sleep(wait).await;
                    }
                    let mut one = inner.delete_stream(
                        futures_util::stream::once(async move { Ok(location) }).boxed(),
                    );
                    one.next().await.unwrap_or_else(|| {
                        Err(object_store::Error::Generic {
                            store: "ControlledDeletes",
                            source: "the inner store deleted nothing".into(),
                        })
                    })
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// An owner whose second round failed before its manifest commit (its outcome unknown to
/// it): that round's segment (and its checkpoint, when the log had written it before the
/// round: it is written after the seal, in the background) are in the bucket, unnamed, and
/// the next round reuses them (same keys). Orphans to a collection with grace zero.
pub struct UnnamedUpload {
    pub deletes: Arc<ControlledDeletes>,
    pub faults: Arc<FaultStore>,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    pub log: seglog::Log,
    pub owner: Arc<Tier>,
    /// The objects in the bucket no manifest names.
    pub unnamed: Vec<String>,
}

impl UnnamedUpload {
    pub async fn new(dir: &std::path::Path) -> UnnamedUpload {
        let deletes = ControlledDeletes::new(Arc::new(InMemory::new()));
        let faults = FaultStore::new(deletes.clone());
        let store: Arc<dyn ObjectStore> = faults.clone();
        let prefix = Path::from("p");
        let log = seglog::Log::open(dir, super::options()).await.unwrap();
        let owner = Arc::new(Tier::claim(store.clone(), prefix.clone()).await.unwrap());
        super::ship_a_round(&log, &owner, 0).await;
        super::write_events(&log, 20, 40).await;
        log.roll().await.unwrap();
        faults.fail_put("manifest/", 1, Fault::Before);
        faults.fail_get("manifest/", 1);
        assert!(owner.ship(&log).await.is_err());
        let named: Vec<String> = owner
            .manifest()
            .await
            .named_keys()
            .map(String::from)
            .collect();
        let unnamed: Vec<String> = super::keys(store.as_ref(), &prefix)
            .await
            .into_iter()
            .filter(|k| !k.contains("manifest/") && !named.contains(k))
            .collect();
        assert!(
            unnamed.iter().any(|k| k.contains("/segments/")),
            "{unnamed:?}"
        );
        UnnamedUpload {
            deletes,
            faults,
            store,
            prefix,
            log,
            owner,
            unnamed,
        }
    }
}
