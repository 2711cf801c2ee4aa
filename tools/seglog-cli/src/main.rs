//! `seglog`: run the demo and inspect seglog logs.
//!
//! Read-only commands (dump, verify, stats, events, tail, compact --dry-run, repair --dry-run,
//! and backup, which writes only its destination) take no lock and never write in the log's
//! directory, so they are safe on a log another process has open (tail only asks whether a
//! writer holds the lock). `compact` and `repair` write, so they take the lock and refuse a
//! log another process has open; `demo` clears only a directory it made, never one in use.
//! `remote status`, `remote verify`, `remote dump` and `remote events` only read a bucket
//! (the last three write a temporary copy under `$TMPDIR`); `restore` claims a log in a bucket (fencing its
//! owner) and writes only a new or empty directory.
//! Everything printed goes through `output`, which escapes untrusted strings. Exit statuses
//! are the same for every command: [`exit`] has them and the table `--help` prints.

mod commands;
mod confirm;
mod exit;
mod lockfile;
mod logdir;
mod output;

use clap::{Parser, Subcommand};
use commands::{backup, compact, demo, dump, events, remote, repair, stats, tail, verify};

/// seglog: an embedded segmented write-ahead log. Inspect logs, or run the demo.
#[derive(Parser, Debug)]
#[command(
    name = "seglog",
    version,
    about,
    after_help = exit::TABLE
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a realistic multi-tenant Enact workload, reopen, verify, and show it.
    Demo(demo::DemoArgs),
    /// One line per record of a log directory or segment file.
    Dump(dump::DumpArgs),
    /// Check every record and checkpoint (exit 0 clean, 1 torn tail, 2 corruption).
    Verify(verify::VerifyArgs),
    /// Salvage a damaged log: print exactly what goes, ask, cut (the log must be closed).
    Repair(repair::RepairArgs),
    /// Segments, bytes, records, events, executions, tenants, checkpoints.
    Stats(stats::StatsArgs),
    /// One execution's events, decoded (exit 4 when the log holds none).
    Events(events::EventsArgs),
    /// Follow an execution, or the whole log (--all), durable events only (like tail -f).
    Tail(tail::TailArgs),
    /// Drop tenants or old executions and merge small segments (the log must be closed).
    Compact(compact::CompactArgs),
    /// Copy a log, live or closed, into a new directory (hard links where possible).
    Backup(backup::BackupArgs),
    /// A log in object storage (s3://, file://): its newest manifest and objects.
    Remote(remote::RemoteArgs),
    /// Claim a log in object storage and restore it into an empty directory.
    Restore(remote::RestoreArgs),
}

/// Errors caused by a file's contents (not by the OS) exit with [`exit::CORRUPT`].
fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<seglog_segment::Error>().is_some_and(|s| {
            s.is_corruption() || matches!(s, seglog_segment::Error::UnsupportedVersion { .. })
        }) || c
            .downcast_ref::<seglog::Error>()
            .is_some_and(seglog::Error::is_corruption)
            || c.downcast_ref::<seglog_tier::Error>().is_some_and(|t| {
                matches!(
                    t,
                    seglog_tier::Error::Corruption { .. }
                        | seglog_tier::Error::UnsupportedVersion { .. }
                )
            })
    })
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let result = match &cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Dump(a) => dump::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Events(a) => events::run(a),
        Command::Tail(a) => tail::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Backup(a) => backup::run(a),
        Command::Repair(a) => repair::run(a),
        Command::Remote(a) => remote::run(a),
        Command::Restore(a) => remote::restore(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        // The reader of stdout went away (`seglog dump ./log | head`): it has all it wanted.
        Err(e) if output::is_broken_pipe(&e) => std::process::exit(exit::OK),
        Err(e) => {
            // One line: the error and its causes (which may quote ids, paths and file contents).
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("seglog: error: {}", output::escape_str(&message));
            std::process::exit(if is_bad_input(&e) {
                exit::CORRUPT
            } else {
                exit::ERROR
            });
        }
    }
}
