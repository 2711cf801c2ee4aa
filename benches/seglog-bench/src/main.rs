//! seglog's benchmark: durable append latency against peers (alternating rounds in one
//! process, so ratios survive a noisy machine), and open / read / index-memory figures.
//! See docs/benchmarks.md for the figures and how to read them.

mod peers;
mod probe;
mod recovery;
mod report;
mod workload;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// seglog benchmarks. `--quick` runs every workload briefly (CI smoke test).
///
/// Examples:
///   seglog-bench append --writers 1,16,64 --seconds 3 --rounds 3
///   seglog-bench open --events 1000000 --executions 1000
///   seglog-bench --quick
#[derive(Parser, Debug)]
#[command(version, about, verbatim_doc_comment)]
struct Args {
    /// Every workload, briefly (a few seconds in all).
    #[arg(long)]
    quick: bool,
    /// Directory for the temporary logs (default: the system temp dir).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    workload: Option<Workload>,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// W1–W3: closed-loop durable appends from N writers; every peer, alternating rounds.
    Append {
        /// Comma-separated writer counts (each is one workload).
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        writers: Vec<usize>,
        /// Seconds per peer per round.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Rounds; each runs every peer once, order reversed every other round.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
        /// Executions the appends are spread over (chosen uniformly).
        #[arg(long, default_value_t = 1000)]
        executions: u64,
    },
    /// W6–W8: build a log, then time open (with and without checkpoints), reading one
    /// 1,000-event execution, and index memory per event.
    Open {
        /// Events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Executions they are spread over.
        #[arg(long, default_value_t = 1000)]
        executions: u64,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
        /// Timed opens per mode (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

fn append(
    base: &std::path::Path,
    writers: &[usize],
    seconds: f64,
    rounds: usize,
    payload_bytes: usize,
    executions: u64,
) -> Result<()> {
    let probe_before = probe::fdatasync_p50(base)?;
    println!(
        "fdatasync probe before: p50 {:.0} µs",
        probe_before.as_secs_f64() * 1e6
    );
    let mut rows = Vec::new();
    for &w in writers {
        let spec = workload::Spec {
            writers: w,
            duration: Duration::from_secs_f64(seconds),
            payload_bytes,
            executions,
        };
        rows.extend(workload::run_alternating(base, &spec, rounds)?);
    }
    let probe_after = probe::fdatasync_p50(base)?;
    println!(
        "fdatasync probe after:  p50 {:.0} µs\n",
        probe_after.as_secs_f64() * 1e6
    );
    print!("{}", report::markdown(&rows));
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    match (args.quick, args.workload) {
        (
            false,
            Some(Workload::Append {
                writers,
                seconds,
                rounds,
                payload_bytes,
                executions,
            }),
        ) => append(&base, &writers, seconds, rounds, payload_bytes, executions),
        (
            false,
            Some(Workload::Open {
                events,
                executions,
                payload_bytes,
                runs,
            }),
        ) => {
            print!(
                "{}",
                recovery::run(&base, events, executions, payload_bytes, runs)?
            );
            Ok(())
        }
        // --quick, or no workload named: everything, briefly.
        _ => {
            append(&base, &[1, 4], 0.3, 1, 256, 1000)?;
            println!();
            print!("{}", recovery::run(&base, 20_000, 100, 256, 2)?);
            Ok(())
        }
    }
}
