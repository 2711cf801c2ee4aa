//! An object store that counts the requests it forwards, by S3 price class: PUT (and COPY,
//! multipart create), GET, range GET, HEAD, LIST pages and DELETE, plus the bytes PUT and
//! the bytes GETs returned.
//!
//! A LIST call is counted as the pages S3 would serve: one per 1,000 keys returned, at least
//! one (ListObjectsV2's page size); a local store does not page, so this is S3's count, not
//! the local store's. DELETEs are counted per key (S3 deletes in batches of up to 1,000 keys
//! per request, and does not charge for them).

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// S3 ListObjectsV2 returns at most this many keys per request.
const LIST_PAGE_KEYS: u64 = 1000;

/// Requests and bytes, a snapshot of a [`CountingStore`] (or a difference of two).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub puts: u64,
    pub gets: u64,
    pub range_gets: u64,
    pub heads: u64,
    pub list_pages: u64,
    pub deletes: u64,
    pub bytes_put: u64,
    pub bytes_got: u64,
    /// Of `puts`: chunks of an active segment (keys under `chunks/`), and their bytes.
    pub chunk_puts: u64,
    pub chunk_bytes: u64,
    /// Of `puts`: manifests (keys under `manifest/`).
    pub manifest_puts: u64,
}

impl Counts {
    /// `self - earlier`, field by field.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            puts: self.puts - earlier.puts,
            gets: self.gets - earlier.gets,
            range_gets: self.range_gets - earlier.range_gets,
            heads: self.heads - earlier.heads,
            list_pages: self.list_pages - earlier.list_pages,
            deletes: self.deletes - earlier.deletes,
            bytes_put: self.bytes_put - earlier.bytes_put,
            bytes_got: self.bytes_got - earlier.bytes_got,
            chunk_puts: self.chunk_puts - earlier.chunk_puts,
            chunk_bytes: self.chunk_bytes - earlier.chunk_bytes,
            manifest_puts: self.manifest_puts - earlier.manifest_puts,
        }
    }

    /// `self + other`, field by field.
    pub fn plus(self, other: Counts) -> Counts {
        Counts {
            puts: self.puts + other.puts,
            gets: self.gets + other.gets,
            range_gets: self.range_gets + other.range_gets,
            heads: self.heads + other.heads,
            list_pages: self.list_pages + other.list_pages,
            deletes: self.deletes + other.deletes,
            bytes_put: self.bytes_put + other.bytes_put,
            bytes_got: self.bytes_got + other.bytes_got,
            chunk_puts: self.chunk_puts + other.chunk_puts,
            chunk_bytes: self.chunk_bytes + other.chunk_bytes,
            manifest_puts: self.manifest_puts + other.manifest_puts,
        }
    }

    /// Requests S3 bills at the PUT rate (PUT, COPY, POST, LIST).
    pub fn put_class(&self) -> u64 {
        self.puts + self.list_pages
    }

    /// Requests S3 bills at the GET rate (GET, range GET, HEAD).
    pub fn get_class(&self) -> u64 {
        self.gets + self.range_gets + self.heads
    }
}

#[derive(Debug, Default)]
struct Counters {
    puts: AtomicU64,
    gets: AtomicU64,
    range_gets: AtomicU64,
    heads: AtomicU64,
    list_pages: AtomicU64,
    deletes: AtomicU64,
    bytes_put: AtomicU64,
    bytes_got: AtomicU64,
    chunk_puts: AtomicU64,
    chunk_bytes: AtomicU64,
    manifest_puts: AtomicU64,
}

/// The counting wrapper.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<Counters>,
    /// Added before every GET reaches the store: an emulated first-byte latency (loopback
    /// has none; S3's is tens of milliseconds). Zero: none.
    get_latency: std::time::Duration,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Self::with_get_latency(inner, std::time::Duration::ZERO)
    }

    /// A counting store whose GETs wait `get_latency` first.
    pub fn with_get_latency(
        inner: Arc<dyn ObjectStore>,
        get_latency: std::time::Duration,
    ) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            counters: Arc::default(),
            get_latency,
        })
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::SeqCst);
        Counts {
            puts: load(&c.puts),
            gets: load(&c.gets),
            range_gets: load(&c.range_gets),
            heads: load(&c.heads),
            list_pages: load(&c.list_pages),
            deletes: load(&c.deletes),
            bytes_put: load(&c.bytes_put),
            bytes_got: load(&c.bytes_got),
            chunk_puts: load(&c.chunk_puts),
            chunk_bytes: load(&c.chunk_bytes),
            manifest_puts: load(&c.manifest_puts),
        }
    }

    /// Counts a listing's pages when its stream ends.
    fn counted_list(
        &self,
        inner: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let keys = Arc::new(AtomicU64::new(0));
        let (seen, counters) = (keys.clone(), self.counters.clone());
        let end = futures_util::stream::once(async move {
            let n = keys.load(Ordering::SeqCst);
            counters
                .list_pages
                .fetch_add(n.div_ceil(LIST_PAGE_KEYS).max(1), Ordering::SeqCst);
            None
        })
        .filter_map(futures_util::future::ready);
        inner
            .inspect(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .chain(end)
            .boxed()
    }
}

impl std::fmt::Display for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CountingStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let c = &self.counters;
        let len = payload.content_length() as u64;
        c.puts.fetch_add(1, Ordering::SeqCst);
        c.bytes_put.fetch_add(len, Ordering::SeqCst);
        if location.parts().any(|p| p.as_ref() == "chunks") {
            c.chunk_puts.fetch_add(1, Ordering::SeqCst);
            c.chunk_bytes.fetch_add(len, Ordering::SeqCst);
        } else if location.parts().any(|p| p.as_ref() == "manifest") {
            c.manifest_puts.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // The create request only; the tier does not upload in parts.
        self.counters.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let counter = if options.head {
            &self.counters.heads
        } else if options.range.is_some() {
            &self.counters.range_gets
        } else {
            &self.counters.gets
        };
        counter.fetch_add(1, Ordering::SeqCst);
        if !self.get_latency.is_zero() {
            tokio::time::sleep(self.get_latency).await;
        }
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            self.counters
                .bytes_got
                .fetch_add(result.range.end - result.range.start, Ordering::SeqCst);
        }
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let counters = self.counters.clone();
        let counted = locations
            .inspect(move |_| {
                counters.deletes.fetch_add(1, Ordering::SeqCst);
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counted_list(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counted_list(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let result = self.inner.list_with_delimiter(prefix).await?;
        let keys = (result.objects.len() + result.common_prefixes.len()) as u64;
        self.counters
            .list_pages
            .fetch_add(keys.div_ceil(LIST_PAGE_KEYS).max(1), Ordering::SeqCst);
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.counters.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.copy_opts(from, to, options).await
    }
}
