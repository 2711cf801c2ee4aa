//! `seglog remote status URL` and `seglog restore URL DIR` (`remote verify` and `remote dump`
//! are in `remote_inspect`): a log shipped to object storage
//! by seglog-tier (docs/scale-out.md). URLs: `s3://bucket/prefix` (credentials, region and
//! endpoint from the usual `AWS_*` variables, e.g. `AWS_ENDPOINT`, `AWS_ALLOW_HTTP=true`)
//! and `file:///path/prefix`. `status` only reads; `restore` claims the log, which fences
//! its current owner.

use crate::output::{escape_path, escape_str};
use anyhow::{bail, Context, Result};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::PathBuf;
use std::sync::Arc;

/// Options of `seglog remote`.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    #[command(subcommand)]
    pub command: RemoteCommand,
}

/// Subcommands of `seglog remote`.
#[derive(clap::Subcommand, Debug)]
pub enum RemoteCommand {
    /// The newest manifest: owner epoch, segments, LSNs, bytes; checks every object it
    /// names is there with its length (exit 2 if one is not).
    #[command(
        after_help = "Reads only: claims nothing, fences nobody.\n\nExamples:\n  seglog remote status s3://my-bucket/logs/partition-7\n  AWS_ENDPOINT=http://127.0.0.1:9000 AWS_ALLOW_HTTP=true seglog remote status s3://b/p\n  seglog remote status file:///srv/bucket/logs/partition-7"
    )]
    Status(StatusArgs),
    /// Download and check every object the newest manifest names (length, CRC-32, segment
    /// header, as a restore does), then every record and checkpoint, as `seglog verify`.
    #[command(
        after_help = "Reads only: claims nothing, fences nobody. Downloads the log into a temporary directory\n(under $TMPDIR, removed at the end).\n\nExit status: 0 every object matches the manifest and every record and checkpoint\nverifies; 2 an object is missing or differs, or a record is damaged (a shipped segment\nis sealed: no damage in it is a torn tail); 3 the bucket could not be read.\n\nExamples:\n  seglog remote verify s3://my-bucket/logs/partition-7\n  seglog remote verify file:///srv/bucket/logs/partition-7 --json | jq 'select(.kind == \"remote_verdict\")'"
    )]
    Verify(super::remote_inspect::RemoteVerifyArgs),
    /// One line per record of the segments the newest manifest names, as `seglog dump`
    /// (each object checked against the manifest first).
    #[command(
        after_help = "Reads only: claims nothing, fences nobody. Downloads the segments into a temporary\ndirectory (under $TMPDIR, removed at the end). The options are dump's.\n\nExamples:\n  seglog remote dump s3://my-bucket/logs/partition-7 --execution exec_42 --decode\n  seglog remote dump file:///srv/bucket/logs/partition-7 --from-lsn 100 --json"
    )]
    Dump(super::remote_inspect::RemoteDumpArgs),
    /// The events of one execution in the segments the newest manifest names, as `seglog
    /// events` (each object checked against the manifest first).
    #[command(
        after_help = "Reads only: claims nothing, fences nobody. Downloads the segments into a temporary\ndirectory (under $TMPDIR, removed at the end). The options are events'. Events only in\nthe active segment's shipped chunks are not shown (as remote dump).\n\nExamples:\n  seglog remote events s3://my-bucket/logs/partition-7 exec_42\n  seglog remote events file:///srv/bucket/logs/partition-7 exec_42 --from-seq 100 --json"
    )]
    Events(super::remote_inspect::RemoteEventsArgs),
}

/// Options of `seglog remote status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The log's location: s3://bucket/prefix or file:///path/prefix.
    pub url: String,
}

/// Options of `seglog restore`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Claims the log first: its current owner is fenced (its next ship fails and its log\nrefuses appends). Everything not in a shipped sealed segment is not in the bucket and is\nnot restored (docs/scale-out.md, \"Loss window\"). DIR must not exist or be empty.\n\nWith --lazy, sealed segments stay in the bucket: only their checkpoints and headers are\ndownloaded, and offload stubs record where they are (docs/format.md §7). Reading old events\nfrom the directory needs an application that reads through the bucket (seglog_tier::ReadThrough).\n\nExample:\n  seglog restore s3://my-bucket/logs/partition-7 /var/lib/app/partition-7"
)]
pub struct RestoreArgs {
    /// The log's location: s3://bucket/prefix or file:///path/prefix.
    pub url: String,
    /// Where to restore it: a new or empty directory.
    pub dir: PathBuf,
    /// Leave the sealed segments in the bucket (download their checkpoints and headers,
    /// write offload stubs); segments shipped without a checkpoint are downloaded whole.
    #[arg(long)]
    pub lazy: bool,
}

/// The store and prefix of `url`, configured from the `AWS_*` environment for s3://.
pub(crate) fn open_store(url: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let parsed = url::Url::parse(url).with_context(|| format!("not a URL: {}", escape_str(url)))?;
    if !matches!(parsed.scheme(), "s3" | "file") {
        bail!(
            "unsupported URL scheme {} (s3:// and file:// are)",
            escape_str(parsed.scheme())
        );
    }
    let options = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v));
    let (store, prefix) = object_store::parse_url_opts(&parsed, options)
        .with_context(|| format!("cannot open {}", escape_str(url)))?;
    Ok((Arc::from(store), prefix))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(args: &RemoteArgs) -> Result<i32> {
    match &args.command {
        RemoteCommand::Status(a) => status(a),
        RemoteCommand::Verify(a) => super::remote_inspect::verify(a),
        RemoteCommand::Dump(a) => super::remote_inspect::dump(a),
        RemoteCommand::Events(a) => super::remote_inspect::events(a),
    }
}

/// The newest manifest and whether every object it names is there; the exit status is the
/// verdict, and stands even if the reader of stdout went away.
fn status(args: &StatusArgs) -> Result<i32> {
    use super::remote_inspect::out;
    let (store, prefix) = open_store(&args.url)?;
    runtime()?.block_on(async move {
        let manifest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
            .await
            .context("cannot read the newest manifest")?;
        let Some(m) = manifest else {
            out(format!("no manifest under {}: nothing was shipped there", escape_str(prefix.as_ref())))?;
            return Ok(crate::exit::ERROR);
        };
        let bytes: u64 = m.segments.iter().map(|s| s.segment.len).sum();
        let checkpoints = m.segments.iter().filter(|s| s.checkpoint.is_some()).count();
        let first = m.segments.first().map_or(0, |s| s.first_lsn);
        out(format!(
            "manifest {}: owner epoch {} (nonce {}), {} segments, LSNs {}..={}, {} bytes, {} checkpoints",
            m.manifest_id,
            m.writer_epoch,
            escape_str(&m.writer_nonce),
            m.segments.len(),
            first,
            m.last_lsn(),
            bytes,
            checkpoints
        ))?;
        // Validated by the manifest's decode: 32 hex digits, nothing to escape.
        match &m.log_id {
            Some(id) => out(format!("log id {id}"))?,
            None => out("log id: none named (written before identities; the next ship names it)".to_owned())?,
        }
        let mut bad = 0usize;
        let named: Vec<(&str, u64)> = m
            .segments
            .iter()
            .flat_map(|s| std::iter::once(&s.segment).chain(s.checkpoint.as_ref()))
            .map(|o| (o.key.as_str(), o.len))
            .collect();
        for (key, len) in &named {
            match store.head(&ObjectPath::from(*key)).await {
                Ok(meta) if meta.size == *len => {}
                Ok(meta) => {
                    bad += 1;
                    out(format!("  {}: {} bytes, the manifest says {len}", escape_str(key), meta.size))?;
                }
                Err(object_store::Error::NotFound { .. }) => {
                    bad += 1;
                    out(format!("  {}: missing", escape_str(key)))?;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot check {}", escape_str(key))),
            }
        }
        if bad == 0 {
            out(format!("all {} objects it names are present", named.len()))?;
            Ok(crate::exit::OK)
        } else {
            out(format!("{bad} of {} objects it names are missing or of the wrong length", named.len()))?;
            Ok(crate::exit::CORRUPT)
        }
    })
}

pub fn restore(args: &RestoreArgs) -> Result<i32> {
    let (store, prefix) = open_store(&args.url)?;
    let dir = args.dir.clone();
    let lazy = args.lazy;
    runtime()?.block_on(async move {
        let fetch = if lazy {
            seglog_tier::FetchSegments::Lazily
        } else {
            seglog_tier::FetchSegments::Whole
        };
        let restored = seglog_tier::restore_with(
            store,
            prefix,
            dir.clone(),
            seglog::Options::default(),
            seglog_tier::RestoreOptions::default().fetch_segments(fetch),
        )
        .await
        .with_context(|| format!("cannot restore into {}", escape_path(&dir)))?;
        let r = &restored.report;
        // The restore is done: a reader of stdout gone away must not skip the close.
        let printed = crate::outln!(
            "restored manifest {} into {}: {} segments, {} checkpoints, {} bytes, through LSN {}; claimed with epoch {}",
            r.manifest_id,
            escape_path(&dir),
            r.segments,
            r.checkpoints,
            r.bytes,
            r.last_lsn,
            restored.tier.epoch()
        )
        .and_then(|()| {
            if lazy {
                crate::outln!(
                    "{} segments left in the bucket (offload stubs written)",
                    r.segments_offloaded
                )
            } else {
                Ok(())
            }
        });
        restored.log.close().context("cannot close the restored log")?;
        crate::output::ignore_broken_pipe(printed)?;
        Ok(crate::exit::OK)
    })
}
