//! Review 47: fetching ahead (`FetchAhead`) against a bucket whose LIST sizes are not the
//! objects' real sizes (a lying or broken store: the sizes are untrusted input).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use seglog_tier::{FetchAheadLimits, RestoreOptions, Tier};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{events_of, write_events, Events};

type Lie = Arc<dyn Fn(u64, u64) -> u64 + Send + Sync>;

/// A store whose LIST reports, for chunk keys, the size `lie(index, real size)` says, and
/// whose chunk GETs are slowed down, counting the real bytes of chunk GETs in flight.
struct LyingList {
    inner: Arc<dyn ObjectStore>,
    lie: Mutex<Option<Lie>>,
    delay: Mutex<Option<Duration>>,
    in_flight_bytes: AtomicU64,
    max_in_flight_bytes: AtomicU64,
}

impl std::fmt::Debug for LyingList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LyingList")
    }
}

impl std::fmt::Display for LyingList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LyingList({})", self.inner)
    }
}

fn chunk_index(location: &Path) -> Option<u64> {
    if !location.as_ref().contains("/chunks/") {
        return None;
    }
    let name = location.filename()?;
    (name.len() == 20).then(|| name.parse().ok()).flatten()
}

#[async_trait]
impl ObjectStore for LyingList {
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
        let result = self.inner.get_opts(location, options).await?;
        let delay = *self.delay.lock().unwrap();
        if let (Some(delay), Some(_)) = (delay, chunk_index(location)) {
            let size = result.meta.size;
            let now = self.in_flight_bytes.fetch_add(size, Ordering::SeqCst) + size;
            self.max_in_flight_bytes.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            self.in_flight_bytes.fetch_sub(size, Ordering::SeqCst);
        }
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let lie = self.lie.lock().unwrap().clone();
        self.inner
            .list(prefix)
            .map(move |m| {
                let mut m = m?;
                if let (Some(lie), Some(index)) = (&lie, chunk_index(&m.location)) {
                    m.size = lie(index, m.size);
                }
                Ok(m)
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
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

fn prefix() -> Path {
    Path::from("p")
}

#[allow(clippy::field_reassign_with_default)]
fn options() -> seglog::Options {
    let mut o = support::options();
    o.segment_size_bytes = 16 * 1024;
    o
}

async fn all_events(log: &seglog::Log) -> Events {
    let log = log.clone();
    tokio::task::spawn_blocking(move || events_of(&log, u64::MAX))
        .await
        .unwrap()
}

/// Sealed segments, then an active segment shipped as `rounds` chunks; node A lost.
async fn shipped_log(root: &std::path::Path, rounds: usize) -> (Arc<LyingList>, Events) {
    let store = Arc::new(LyingList {
        inner: Arc::new(InMemory::new()),
        lie: Mutex::new(None),
        delay: Mutex::new(None),
        in_flight_bytes: AtomicU64::new(0),
        max_in_flight_bytes: AtomicU64::new(0),
    });
    let dir_a = root.join("a");
    let log = seglog::Log::open(&dir_a, options()).await.unwrap();
    write_events(&log, 0, 400).await;
    log.roll().await.unwrap();
    let tier = Tier::claim(store.clone() as Arc<dyn ObjectStore>, prefix())
        .await
        .unwrap()
        .with_active_chunks();
    tier.ship(&log).await.unwrap();
    let mut next = 400;
    for _ in 0..rounds {
        write_events(&log, next, next + 2).await;
        next += 2;
        tier.ship(&log).await.unwrap();
    }
    let expected = all_events(&log).await;
    drop(tier);
    drop(log);
    std::fs::remove_dir_all(&dir_a).unwrap();
    (store, expected)
}

/// The largest chunk's real size.
async fn largest_chunk(store: &LyingList) -> u64 {
    let metas: Vec<ObjectMeta> = futures_util::TryStreamExt::try_collect(store.inner.list(None))
        .await
        .unwrap();
    metas
        .iter()
        .filter(|m| chunk_index(&m.location).is_some())
        .map(|m| m.size)
        .max()
        .unwrap()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("LOCK"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The byte budget is the memory bound the docs promise ("a restore holds at most the budget
/// ahead of the object it is writing"), and for chunks it is taken from the LIST's sizes: a
/// LIST that said 1 byte per chunk had 16 chunks (each up to MAX_CHUNK_BYTES, 4 GiB) in
/// flight whatever the budget (review 47). Each GET is now bounded by its listed size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review47_a_lying_list_drives_chunk_fetches_past_the_byte_budget() {
    for lying in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let (store, expected) = shipped_log(root.path(), 24).await;
        let chunk = largest_chunk(&store).await;
        let budget = 2 * chunk;
        if lying {
            *store.lie.lock().unwrap() = Some(Arc::new(|_, _| 1));
        }
        *store.delay.lock().unwrap() = Some(Duration::from_millis(15));
        let b = seglog_tier::restore_with(
            store.clone() as Arc<dyn ObjectStore>,
            prefix(),
            root.path().join("b"),
            options(),
            RestoreOptions::default().fetch_ahead(FetchAheadLimits {
                objects: 16,
                bytes: budget,
            }),
        )
        .await;
        match b {
            Ok(b) => {
                assert!(b.report.active_bytes > 0);
                assert_eq!(all_events(&b.log).await, expected);
            }
            // A chunk longer than its listing is refused before its body is read (chunks are
            // never overwritten: the listing is the object's size), and the destination is
            // left empty. (The store's own count of the bytes it serves at once says nothing
            // of the client's memory then: those bodies are never read.)
            Err(e) => {
                assert!(lying, "{e}");
                assert!(matches!(e, seglog_tier::Error::Corruption { .. }), "{e}");
                assert!(e.to_string().contains("more than the 1 expected"), "{e}");
                assert_eq!(files_in(&root.path().join("b")), Vec::<String>::new());
                continue;
            }
        }
        let most = store.max_in_flight_bytes.load(Ordering::SeqCst);
        assert!(
            most <= budget,
            "lying LIST: {lying}: {most} real bytes of chunks fetched at once, budget {budget}"
        );
    }
}

/// `FetchAhead` summed sizes with `saturating_add` but freed them with a plain `-=`: with
/// `bytes: u64::MAX` (no byte limit) and a LIST size near u64::MAX, the count saturated and
/// a later subtraction underflowed: the restore task panicked mid-way (overflow checks), so
/// `restore_with` returned `Error::Task` and the destination kept the restore's files and
/// its RESTORE_IN_PROGRESS marker (no `abandon` ran on a panic). Review 47.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review47_a_list_size_near_u64_max_panics_the_restore_with_no_byte_limit() {
    let root = tempfile::tempdir().unwrap();
    let (store, expected) = shipped_log(root.path(), 8).await;
    *store.lie.lock().unwrap() = Some(Arc::new(
        |index, real| {
            if index == 0 {
                u64::MAX - 1
            } else {
                real
            }
        },
    ));
    let dest = root.path().join("b");
    let restored = seglog_tier::restore_with(
        store.clone() as Arc<dyn ObjectStore>,
        prefix(),
        &dest,
        options(),
        RestoreOptions::default().fetch_ahead(FetchAheadLimits {
            objects: 16,
            bytes: u64::MAX,
        }),
    )
    .await;
    match restored {
        Ok(b) => assert_eq!(all_events(&b.log).await, expected),
        Err(e) => {
            let left = files_in(&dest);
            panic!("the restore failed ({e}), leaving {left:?} in the destination");
        }
    }
}

/// A panic in the restore's own task (here: the store's listing of the chunks panics) is an
/// error like any other: the destination is left empty, its marker gone, and it restores
/// cleanly once the store behaves. Before, a panic skipped the clean-up and left the
/// restore's files and its RESTORE_IN_PROGRESS marker behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review47_a_panic_during_a_restore_leaves_the_destination_empty() {
    let root = tempfile::tempdir().unwrap();
    let (store, expected) = shipped_log(root.path(), 4).await;
    *store.lie.lock().unwrap() = Some(Arc::new(|_, _| panic!("a store that panics")));
    let dest = root.path().join("b");
    let restored = seglog_tier::restore_with(
        store.clone() as Arc<dyn ObjectStore>,
        prefix(),
        &dest,
        options(),
        RestoreOptions::default(),
    )
    .await;
    let e = restored.expect_err("a restore whose store panicked");
    assert!(e.to_string().contains("a store that panics"), "{e}");
    assert_eq!(files_in(&dest), Vec::<String>::new());
    *store.lie.lock().unwrap() = None;
    let b = seglog_tier::restore_with(
        store.clone() as Arc<dyn ObjectStore>,
        prefix(),
        &dest,
        options(),
        RestoreOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(all_events(&b.log).await, expected);
}
