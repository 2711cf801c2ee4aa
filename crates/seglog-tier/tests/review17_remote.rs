//! Review 17 (hostile review of `Durability::Remote`): attacks on the acknowledgement point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;
use std::time::Duration;
use support::fault::{Fault, FaultStore};
use support::remote::{remote_writer, restored_events, snapshot};

/// Finding 1: a round whose chunk PUT was applied but reported failure, and whose read back
/// failed too, leaves its chunk at index i covering `from..to1`. The next round, with more
/// appends (`from..to2`, to2 > to1), PUTs at the same index, collides, reads the key, finds
/// "its own earlier attempt" (same epoch, same start) and adopts it, ending at `to1`: the
/// round returns `Ok` and acknowledges appends whose bytes (`to1..to2`) are in no object.
/// The node lost right then, a restore lacks an acknowledged event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review17_adopting_a_shorter_own_chunk_acknowledges_bytes_not_in_the_bucket() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, _log) = remote_writer(store.clone(), &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"first").await.unwrap();

    // Round 1: its chunk PUT lands but reports failure (a timeout after success), and the
    // GET that settles it fails as well: the round fails, its append is unacknowledged.
    let gate = faults.pause_next_put("/chunks/");
    let r1 = {
        let remote = remote.clone();
        tokio::spawn(async move { remote.append("exec-1", "tenant-a", b"second").await })
    };
    gate.reached.notified().await;
    faults.fail_put("/chunks/", 1, Fault::AfterSuccess);
    faults.arm(1, Fault::Before, false); // the next counted op: the settling GET
    gate.resume.notify_one();
    let err = r1.await.unwrap().unwrap_err();
    assert!(!err.is_fenced(), "{err}");
    faults.disarm();

    // Round 2: a new append; its chunk (same index, same start, longer) collides with
    // round 1's, which is adopted as "ours".
    let seq = remote
        .append("exec-2", "tenant-a", b"third: acknowledged")
        .await
        .unwrap();
    // The node is lost now: another node restores the bucket as it is.
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    let found = restored
        .get("exec-2")
        .is_some_and(|evs| evs.contains(&(seq, b"third: acknowledged".to_vec())));
    assert!(
        found,
        "an acknowledged append (exec-2 seq {seq}) is not in a restore made right after \
         its acknowledgement: restored {:?}",
        restored.keys().collect::<Vec<_>>()
    );
}

/// A store whose next PUT of a key containing a fragment times out on the client (an error
/// at once, nothing there yet) but is applied by the server a little later: the realistic
/// ambiguous PUT, with no second fault.
#[derive(Debug)]
struct LateStore {
    inner: Arc<dyn ObjectStore>,
    late: std::sync::Mutex<Option<(String, Duration)>>,
}

impl std::fmt::Display for LateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LateStore({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for LateStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        let late = {
            let mut late = self.late.lock().unwrap();
            match late.as_ref() {
                Some((f, _)) if location.as_ref().contains(f.as_str()) => late.take(),
                _ => None,
            }
        };
        if let Some((_, delay)) = late {
            let (inner, location) = (self.inner.clone(), location.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = inner.put_opts(&location, payload, opts).await;
            });
            return Err(object_store::Error::Generic {
                store: "LateStore",
                source: "request timed out".into(),
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

/// Finding 1 with a single, ordinary fault: a chunk PUT times out on the client and is
/// applied by the server after the round read the key back (nothing there: the round
/// fails, its append is not acknowledged). The next round's chunk collides with it, adopts
/// it as its own earlier attempt and acknowledges its append, whose bytes are past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review17_a_chunk_put_applied_late_makes_the_next_round_acknowledge_a_missing_event() {
    let late = Arc::new(LateStore {
        inner: Arc::new(InMemory::new()),
        late: std::sync::Mutex::new(None),
    });
    let store: Arc<dyn ObjectStore> = late.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, _log) = remote_writer(store.clone(), &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"first").await.unwrap();

    *late.late.lock().unwrap() = Some(("/chunks/".into(), Duration::from_millis(200)));
    let err = remote
        .append("exec-1", "tenant-a", b"second")
        .await
        .unwrap_err();
    assert!(!err.is_fenced(), "{err}");
    // The timed-out PUT lands on the server now.
    tokio::time::sleep(Duration::from_millis(400)).await;

    let seq = remote
        .append("exec-2", "tenant-a", b"third: acknowledged")
        .await
        .unwrap();
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    let found = restored
        .get("exec-2")
        .is_some_and(|evs| evs.contains(&(seq, b"third: acknowledged".to_vec())));
    assert!(
        found,
        "an acknowledged append (exec-2 seq {seq}) is not in a restore made right after \
         its acknowledgement: restored {:?}",
        restored.keys().collect::<Vec<_>>()
    );
}
