//! `seglog backup`: a consistent, durable copy of a log, live or closed, through the
//! library's read-only open (no lock, no write in the log's directory) and `Log::backup`.
//! Sealed segments are hard-linked when DEST is on the same file system, copied otherwise.

use crate::output::escape_path;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Options of `seglog backup`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Works on a log another process has open: it takes no lock and writes nothing in DIR.\nThe copy holds every event the writer's records prove durable (all but its newest commit\ngroup while it runs), and opens as a log of its own. DEST must not exist or be empty.\nSealed segments are hard-linked where DEST is on the same file system (the copy then shares\nthose files: never open it with salvage while the log runs), copied elsewhere.\n\nExample:\n  seglog backup ./log /backups/log-$(date +%F)"
)]
pub struct BackupArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// Where the copy goes: a new or empty directory.
    pub dest: PathBuf,
}

pub fn run(args: &BackupArgs) -> Result<i32> {
    let log = seglog::Log::open_read_only_blocking(&args.dir)
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    let report = log
        .backup_blocking(&args.dest)
        .with_context(|| format!("cannot back up into {}", args.dest.display()))?;
    println!(
        "backed up {} segments ({} linked, {} bytes copied) and {} checkpoints into {}: through LSN {}",
        report.segments,
        report.segments_linked,
        report.bytes_copied,
        report.checkpoints,
        escape_path(&args.dest),
        report.last_lsn
    );
    Ok(0)
}
