//! Issue 17's figures (scale-out on object storage, `crates/seglog-tier`):
//!
//! 1. **Open from the bucket**: a log of N events is shipped whole (rolled, so every
//!    record is in a sealed segment), then `seglog_tier::restore` into an empty directory
//!    is timed (claim, downloads, checks, fdatasyncs, the engine's open and roll), whole
//!    and lazily (`FetchSegments::Lazily`: checkpoints and headers only, offload stubs).
//! 2. **Append latency per durability mode**: closed-loop durable appends from `writers`
//!    threads with no tier, with sealed-segment shipping and with chunk shipping (a
//!    `Shipper` every `ship_interval`, in the background), and with `Durability::Remote`
//!    (`RemoteDurable`: each append waits for a ship round that puts it in the bucket),
//!    modes alternating round by round.
//! 3. **Requests for a busy log**: the same runs count every request the shipper makes
//!    (a counting `ObjectStore` wrapper), extrapolated to an hour and a 30-day month and
//!    priced at S3 Standard list prices ([`prices`]); plus one orphan collection.
//!
//! Stores: a `file://` bucket (`LocalFileSystem` in a temporary directory on the same disk
//! as the logs), and an S3 server when `SEGLOG_BENCH_S3_ENDPOINT` is set (moto's in the
//! documented runs: its latency is a loopback Python server's, not S3's).

mod busy;
mod chunk_restore;
mod counting;
mod restore;

use anyhow::{Context, Result};
use object_store::ObjectStore;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// S3 Standard list prices used to price the counts (us-east-1, as commonly published;
/// not checked against the live price page from this machine: check before quoting).
pub mod prices {
    /// Dollars per 1,000 PUT, COPY, POST or LIST requests.
    pub const PUT_CLASS_PER_1000: f64 = 0.005;
    /// Dollars per 1,000 GET (and HEAD, SELECT) requests.
    pub const GET_CLASS_PER_1000: f64 = 0.0004;
    /// Dollars per GB-month of storage (first 50 TB).
    pub const STORAGE_PER_GB_MONTH: f64 = 0.023;
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Log sizes for the restore figures, in events.
    pub sizes: Vec<u64>,
    /// Executions the events are spread over.
    pub executions: u64,
    pub payload_bytes: usize,
    /// Timed restores per size and store (the median is reported).
    pub restores: usize,
    /// Writer threads of the append runs.
    pub writers: usize,
    /// Seconds per mode per round of the append runs.
    pub seconds: f64,
    /// Rounds of the append runs (modes alternate, order reversed every other round).
    pub rounds: usize,
    /// The shipper's interval (the chunk mode's `ship_interval`).
    pub ship_interval: Duration,
    /// The logs' segment size during the append runs.
    pub segment_size_bytes: u64,
    /// Only the restore figures.
    pub restore_only: bool,
    /// Chunk rounds of the chunk-restore figure (0: not run).
    pub chunks: usize,
    /// Emulated first-byte latency added to every GET of the restore figures.
    pub get_latency: Duration,
}

/// A bucket to measure against.
pub struct Bucket {
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
    /// Kept until the end of the run (the `file://` bucket's directory).
    _dir: Option<tempfile::TempDir>,
}

fn buckets(base: &Path) -> Result<Vec<Bucket>> {
    let dir = tempfile::tempdir_in(base)?;
    let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path())?;
    let mut out = vec![Bucket {
        name: "file:// (LocalFileSystem, same disk)".into(),
        store: Arc::new(local),
        _dir: Some(dir),
    }];
    if let Ok(endpoint) = std::env::var("SEGLOG_BENCH_S3_ENDPOINT") {
        out.push(Bucket {
            name: format!("S3 server at {endpoint}"),
            store: s3_store(&endpoint)?,
            _dir: None,
        });
    } else {
        eprintln!("SEGLOG_BENCH_S3_ENDPOINT is not set: file:// bucket only");
    }
    Ok(out)
}

/// The S3 store at `endpoint` (moto's, in the documented runs): bucket
/// `SEGLOG_BENCH_S3_BUCKET` (default `seglog-bench`, which must exist), credentials from
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (default `test` / `test`, as moto takes).
fn s3_store(endpoint: &str) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
    let bucket = std::env::var("SEGLOG_BENCH_S3_BUCKET").unwrap_or_else(|_| "seglog-bench".into());
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_bucket_name(bucket)
        .with_region(env("AWS_REGION", "us-east-1"))
        .with_access_key_id(env("AWS_ACCESS_KEY_ID", "test"))
        .with_secret_access_key(env("AWS_SECRET_ACCESS_KEY", "test"))
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .build()
        .context("S3 store")?;
    Ok(Arc::new(store))
}

/// A prefix in the bucket no other run uses.
fn fresh_prefix(what: &str) -> object_store::path::Path {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    object_store::path::Path::from(format!(
        "seglog-bench/{}-{nanos}/{what}",
        std::process::id()
    ))
}

/// The median of restore times (0 for none).
fn median(times: &[Duration]) -> Duration {
    let mut v = times.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs the three figures on every bucket and prints Markdown tables.
pub fn run(base: &Path, shape: &Shape) -> Result<()> {
    let rt = runtime()?;
    let buckets = buckets(base)?;
    let before = crate::probe::fdatasync_p50(base)?;
    let mut restore_rows = Vec::new();
    for bucket in &buckets {
        for &events in &shape.sizes {
            restore_rows.extend(restore::run(&rt, base, bucket, events, shape)?);
        }
    }
    let mut chunk_rows = Vec::new();
    if shape.chunks > 0 {
        for bucket in &buckets {
            chunk_rows.extend(chunk_restore::run(&rt, base, bucket, shape)?);
        }
    }
    if shape.restore_only {
        print!("{}", restore::markdown(&restore_rows, shape));
        if !chunk_rows.is_empty() {
            println!();
            print!("{}", chunk_restore::markdown(&chunk_rows, shape));
        }
        return Ok(());
    }
    let busy_rows = busy::run(&rt, base, &buckets, shape)?;
    let after = crate::probe::fdatasync_p50(base)?;
    println!(
        "fdatasync probe (4 KiB write + fdatasync, p50): before {:.0} µs, after {:.0} µs",
        before.as_secs_f64() * 1e6,
        after.as_secs_f64() * 1e6
    );
    println!();
    print!("{}", restore::markdown(&restore_rows, shape));
    if !chunk_rows.is_empty() {
        println!();
        print!("{}", chunk_restore::markdown(&chunk_rows, shape));
    }
    println!();
    print!("{}", busy::latency_markdown(&busy_rows, shape));
    println!();
    print!("{}", busy::requests_markdown(&busy_rows, shape));
    Ok(())
}
