//! `seglog remote verify URL` and `seglog remote dump URL`: a shipped log, read only (no
//! claim, nobody fenced). Both read the newest manifest and download every segment it names
//! (and, for verify, every checkpoint; and the active segment's durable prefix from its
//! chunks, when chunks are shipped), checking each object as a restore does (length and
//! CRC-32 of the manifest; a segment's header is the segment named), into a temporary
//! directory (under `$TMPDIR`, removed at the end: it needs the space of the log's
//! segments); then verify and dump read that copy with the local commands' code. An object
//! found missing or bad while the newest manifest moved on (the owner compacted, and its
//! collection deleted the inputs, during the download) sends them through the newer
//! manifest again (`seglog_tier::read_newest`), so a race is not reported as corruption.
//!
//! A shipped segment is sealed, so no damage in it is a torn tail: what the local commands
//! would call one (exit 1) is corruption here (exit 2).

use super::remote::{open_store, runtime};
use crate::output::{escape_str, json_line, JsonRecord};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// Options of `seglog remote verify`.
#[derive(clap::Args, Debug)]
pub struct RemoteVerifyArgs {
    /// The log's location: s3://bucket/prefix or file:///path/prefix.
    pub url: String,
    /// JSON lines, each with "schema" and "kind" (remote_object_problem, verified_segment,
    /// index_problem, verdict, remote_verdict).
    #[arg(long)]
    pub json: bool,
}

/// Options of `seglog remote dump`.
#[derive(clap::Args, Debug)]
pub struct RemoteDumpArgs {
    /// The log's location: s3://bucket/prefix or file:///path/prefix.
    pub url: String,
    #[command(flatten)]
    pub show: super::dump::DumpOptions,
}

/// Options of `seglog remote events`.
#[derive(clap::Args, Debug)]
pub struct RemoteEventsArgs {
    /// The log's location: s3://bucket/prefix or file:///path/prefix.
    pub url: String,
    /// The execution id.
    pub execution: String,
    /// Only events at this sequence or later (inclusive; sequences start at 1).
    #[arg(long, value_name = "SEQ")]
    pub from_seq: Option<u64>,
    /// JSON lines (one per event, payload decoded, with "schema" and "kind").
    #[arg(long)]
    pub json: bool,
}

/// An object the manifest names that is missing or differs from its entry.
#[derive(Serialize)]
struct ObjectProblemLine {
    key: String,
    reason: String,
}

impl JsonRecord for ObjectProblemLine {
    const KIND: &'static str = "remote_object_problem";
}

/// The outcome of `remote verify`: the objects, then (when they all match) the records.
#[derive(Serialize)]
struct RemoteVerdictLine {
    manifest_id: u64,
    writer_epoch: u64,
    objects: usize,
    object_problems: usize,
    /// `clean` or `corruption`.
    health: &'static str,
}

impl JsonRecord for RemoteVerdictLine {
    const KIND: &'static str = "remote_verdict";
}

/// What a download into the temporary copy found.
struct Copy {
    dir: tempfile::TempDir,
    manifest: seglog_tier::Manifest,
    objects: usize,
    /// Of `objects`: chunks of the active segment.
    chunks: usize,
    /// The active segment's chunks held records, written into the copy as a segment.
    active_written: bool,
    /// The newest manifest no longer named the active segment after its chunks were read:
    /// its owner sealed it, and may have collected chunks during the read, which then saw
    /// only some of them, or none. Read again through the newer manifest (review 48).
    active_moved: bool,
    problems: Vec<(String, String)>,
}

/// Downloads what the newest manifest names into a temporary directory, each object
/// checked; objects that are missing or differ are listed, not written. When one is and the
/// newest manifest has moved on meanwhile (the owner compacted and collected the inputs
/// while this read), downloads again what the newer manifest names (`read_newest`).
async fn download(url: &str, checkpoints: bool) -> Result<Option<Copy>> {
    let (store, prefix) = open_store(url)?;
    let newest = seglog_tier::read_newest(store.as_ref(), &prefix, |manifest| {
        let (store, prefix) = (store.clone(), prefix.clone());
        async move {
            let copy = download_manifest(&store, &prefix, manifest, checkpoints).await?;
            let bad = !copy.problems.is_empty() || copy.active_moved;
            Ok::<_, anyhow::Error>((copy, bad))
        }
    })
    .await
    .context("cannot read the newest manifest")?;
    if newest.as_ref().is_some_and(|(_, copy)| copy.active_moved) {
        // Each newer manifest sealed the active segment again while it was read: what was
        // read of its chunks may be part of them. Never shown as the whole.
        anyhow::bail!(
            "the log's owner kept sealing its active segment while it was read; run the \
             command again"
        );
    }
    Ok(newest.map(|(_, copy)| copy))
}

/// Downloads what `manifest` names into a new temporary directory: its sealed segments
/// (and with `checkpoints`, theirs), and the active segment's durable prefix from its chunks
/// (read only: the owner may ship more meanwhile, and no end marker closes them).
async fn download_manifest(
    store_arc: &std::sync::Arc<dyn seglog_tier::object_store::ObjectStore>,
    prefix: &seglog_tier::object_store::path::Path,
    manifest: seglog_tier::Manifest,
    checkpoints: bool,
) -> Result<Copy> {
    let store = store_arc.as_ref();
    let dir = tempfile::Builder::new()
        .prefix("seglog-remote-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut copy = Copy {
        dir,
        manifest,
        objects: 0,
        chunks: 0,
        active_written: false,
        active_moved: false,
        problems: Vec::new(),
    };
    for entry in &copy.manifest.segments {
        copy.objects += 1;
        let fetched = seglog_tier::fetch_segment(store, entry).await;
        let name = seglog_segment::format::segment_file_name(entry.first_lsn);
        keep(
            &mut copy.problems,
            copy.dir.path(),
            &name,
            &entry.segment.key,
            fetched,
        )?;
        if let Some(checkpoint) = entry.checkpoint.as_ref().filter(|_| checkpoints) {
            copy.objects += 1;
            let fetched = seglog_tier::fetch_object(store, checkpoint).await;
            let name = seglog_index::checkpoint::checkpoint_file_name(entry.first_lsn);
            keep(
                &mut copy.problems,
                copy.dir.path(),
                &name,
                &checkpoint.key,
                fetched,
            )?;
        }
    }
    if let Some(active) = copy.manifest.active {
        let folder = seglog_tier::chunk_folder(prefix, &active);
        let fetched = seglog_tier::fetch_active_segment(store_arc, prefix, &active).await;
        if let Ok((_, chunks)) = &fetched {
            copy.chunks = *chunks;
            copy.objects += chunks;
        }
        let newest = seglog_tier::latest_manifest(store, prefix)
            .await
            .context("cannot read the newest manifest")?;
        copy.active_moved = newest.is_some_and(|n| n.active != Some(active));
        copy.active_written = matches!(fetched, Ok((Some(_), _)));
        if let Ok((Some(_), _)) | Err(_) = &fetched {
            let name = seglog_segment::format::segment_file_name(active.first_lsn);
            let fetched = fetched.map(|(bytes, _)| bytes.unwrap_or_default());
            keep(
                &mut copy.problems,
                copy.dir.path(),
                &name,
                folder.as_ref(),
                fetched,
            )?;
        }
    }
    Ok(copy)
}

/// Whether the copy holds a segment: a sealed one, or the active segment's chunks' records.
fn holds_segments(copy: &Copy) -> bool {
    !copy.manifest.segments.is_empty() || copy.active_written
}

/// Writes a checked object into the copy, or lists why it is not there. Store and I/O
/// errors end the command (exit 3): they say nothing about the bucket's contents.
fn keep(
    problems: &mut Vec<(String, String)>,
    dir: &Path,
    name: &str,
    key: &str,
    fetched: seglog_tier::Result<impl AsRef<[u8]>>,
) -> Result<()> {
    match fetched {
        Ok(bytes) => std::fs::write(dir.join(name), bytes.as_ref())
            .with_context(|| format!("cannot write the temporary copy of {}", escape_str(key))),
        Err(seglog_tier::Error::Corruption { reason, .. }) => {
            problems.push((key.to_owned(), reason));
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", escape_str(key))),
    }
}

/// One line on stdout; a reader that went away is no error (the exit status stands).
pub(super) fn out(line: String) -> Result<()> {
    Ok(crate::output::ignore_broken_pipe(crate::outln!("{line}"))?)
}

fn no_manifest(url: &str) -> Result<i32> {
    out(format!(
        "no manifest under {}: nothing was shipped there",
        escape_str(url)
    ))?;
    Ok(crate::exit::ERROR)
}

pub fn verify(args: &RemoteVerifyArgs) -> Result<i32> {
    let Some(copy) = runtime()?.block_on(download(&args.url, true))? else {
        return no_manifest(&args.url);
    };
    let m = &copy.manifest;
    if !args.json {
        let active = match m.active {
            Some(_) => format!(", the active segment in {} chunks", copy.chunks),
            None => String::new(),
        };
        out(format!(
            "manifest {}: owner epoch {}, {} segments{active}, {} objects",
            m.manifest_id,
            m.writer_epoch,
            m.segments.len(),
            copy.objects
        ))?;
    }
    for (key, reason) in &copy.problems {
        out(if args.json {
            json_line(&ObjectProblemLine {
                key: escape_str(key),
                reason: escape_str(reason),
            })?
        } else {
            format!("object {}: {}", escape_str(key), escape_str(reason))
        })?;
    }
    // The records are checked only in a whole copy: a missing segment would show as a gap.
    let mut clean = copy.problems.is_empty();
    if clean && holds_segments(&copy) {
        let report = super::verify::report(copy.dir.path())?;
        if let Some(p) = super::verify::print(&report, args.json)? {
            eprintln!("seglog: {}", escape_str(&p));
        }
        clean = report.health() == seglog::Health::Clean;
    }
    out(if args.json {
        json_line(&RemoteVerdictLine {
            manifest_id: m.manifest_id,
            writer_epoch: m.writer_epoch,
            objects: copy.objects,
            object_problems: copy.problems.len(),
            health: if clean { "clean" } else { "corruption" },
        })?
    } else if !copy.problems.is_empty() {
        format!(
            "{} of {} objects the manifest names are missing or differ from it: CORRUPTION FOUND",
            copy.problems.len(),
            copy.objects
        )
    } else if clean {
        format!("remote: all {} objects match the manifest", copy.objects)
    } else {
        format!(
            "remote: all {} objects match the manifest, but their records are damaged (a \
             shipped segment is sealed: any damage is corruption)",
            copy.objects
        )
    })?;
    Ok(if clean {
        crate::exit::OK
    } else {
        crate::exit::CORRUPT
    })
}

pub fn dump(args: &RemoteDumpArgs) -> Result<i32> {
    let copy = match whole_copy(&args.url)? {
        Ok(copy) => copy,
        Err(code) => return Ok(code),
    };
    if !holds_segments(&copy) {
        out(format!(
            "manifest {} names no segment",
            copy.manifest.manifest_id
        ))?;
        return Ok(crate::exit::OK);
    }
    Ok(sealed_only(super::dump::dump(copy.dir.path(), &args.show)?))
}

pub fn events(args: &RemoteEventsArgs) -> Result<i32> {
    let copy = match whole_copy(&args.url)? {
        Ok(copy) => copy,
        Err(code) => return Ok(code),
    };
    let local = super::events::EventsArgs {
        dir: copy.dir.path().to_path_buf(),
        execution: args.execution.clone(),
        from_seq: args.from_seq,
        json: args.json,
        all_sealed: true,
    };
    super::events::run(&local)
}

/// The segments of the newest manifest, downloaded and every one checked; else the exit
/// status, said: no manifest, or an object missing or differing from it.
fn whole_copy(url: &str) -> Result<Result<Copy, i32>> {
    let Some(copy) = runtime()?.block_on(download(url, false))? else {
        return no_manifest(url).map(Err);
    };
    if let Some((key, reason)) = copy.problems.first() {
        eprintln!(
            "seglog: {} of the manifest's segments are missing or differ from it; first: {}: {}",
            copy.problems.len(),
            escape_str(key),
            escape_str(reason)
        );
        return Ok(Err(crate::exit::CORRUPT));
    }
    Ok(Ok(copy))
}

/// A shipped segment is sealed: what the local commands call a torn tail is corruption.
fn sealed_only(code: i32) -> i32 {
    match code {
        crate::exit::TORN_TAIL => crate::exit::CORRUPT,
        code => code,
    }
}
