//! `seglog backup`: a consistent, durable copy of a log, live or closed, through the
//! library's read-only open (no lock, no write in the log's directory) and `Log::backup`.
//! Sealed segments are hard-linked when DEST is on the same file system, copied otherwise.

use crate::output::{escape_path, json_line, JsonRecord};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `seglog backup`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Works on a log another process has open: it takes no lock and writes nothing in DIR.\nThe copy holds every event the writer's records prove durable (all but its newest commit\ngroup while it runs), and opens as a log of its own. DEST must not exist or be empty.\nSealed segments are hard-linked where DEST is on the same file system (the copy then shares\nthose files: never open it with salvage while the log runs), copied elsewhere.\nSegments offloaded to object storage are downloaded with --bucket (the log's bucket URL).\n\nExamples:\n  seglog backup ./log /backups/log-$(date +%F)\n  seglog backup ./log /backups/log --bucket s3://my-bucket/logs/partition-7"
)]
pub struct BackupArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// Where the copy goes: a new or empty directory.
    pub dest: PathBuf,
    /// The log's bucket URL: its offloaded segments are downloaded into the copy.
    #[arg(long, value_name = "URL")]
    pub bucket: Option<String>,
    /// One JSON line (with "schema" and "kind") instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the backup copied.
#[derive(Serialize)]
struct BackupLine {
    dest: String,
    segments: usize,
    segments_linked: usize,
    segments_downloaded: usize,
    bytes_copied: u64,
    checkpoints: usize,
    last_lsn: u64,
}

impl JsonRecord for BackupLine {
    const KIND: &'static str = "backup";
}

pub fn run(args: &BackupArgs) -> Result<i32> {
    let log = seglog::Log::open_read_only_blocking(&args.dir)
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    if let Some(url) = &args.bucket {
        let (store, _prefix) = super::remote::open_store(url)?;
        seglog_tier::ReadThrough::new(store, seglog_tier::ReadThroughOptions::default())
            .context("cannot read through the bucket")?
            .attach(&log);
    }
    let report = log
        .backup_blocking(&args.dest)
        .with_context(|| format!("cannot back up into {}", args.dest.display()))?;
    let line = BackupLine {
        dest: escape_path(&args.dest),
        segments: report.segments,
        segments_linked: report.segments_linked,
        segments_downloaded: report.segments_downloaded,
        bytes_copied: report.bytes_copied,
        checkpoints: report.checkpoints,
        last_lsn: report.last_lsn,
    };
    // The copy is made: its report stands even if the reader of stdout went away.
    let text = if args.json {
        json_line(&line)?
    } else {
        format!(
            "backed up {} segments ({} linked, {} downloaded, {} copied) and {} checkpoints into {}: through LSN {}",
            line.segments,
            line.segments_linked,
            line.segments_downloaded,
            indicatif::HumanBytes(line.bytes_copied),
            line.checkpoints,
            line.dest,
            line.last_lsn
        )
    };
    crate::output::ignore_broken_pipe(crate::outln!("{text}"))?;
    Ok(crate::exit::OK)
}
