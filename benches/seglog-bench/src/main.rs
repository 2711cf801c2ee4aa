//! seglog's append-latency benchmark: seglog against the physical floor of a durable append,
//! in one process, alternating peers round by round (A B A B …) so ratios survive a noisy
//! machine. See docs/benchmarks.md for the figures and how to read them.

mod peers;
mod probe;
mod report;
mod workload;

use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Durable append latency and throughput: seglog vs. write+fdatasync.
///
/// Example: `cargo run --release -p seglog-bench -- --writers 1,16 --seconds 3 --rounds 3`
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Comma-separated writer counts to run (each is one workload).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    writers: Vec<usize>,
    /// Seconds per peer per round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds; each round runs every peer once, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// Number of executions the appends are spread over.
    #[arg(long, default_value_t = 1000)]
    executions: u64,
    /// Directory for the temporary logs (default: the system temp dir). Use the file system
    /// you care about.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A few seconds in all: every workload once, briefly (CI smoke test).
    #[arg(long)]
    quick: bool,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.seconds = 0.3;
        args.rounds = 1;
    }
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let probe_before = probe::fdatasync_p50(&base)?;
    println!(
        "fdatasync probe before: p50 {:.0} µs",
        probe_before.as_secs_f64() * 1e6
    );
    let mut rows = Vec::new();
    for &writers in &args.writers {
        let spec = workload::Spec {
            writers,
            duration: Duration::from_secs_f64(args.seconds),
            payload_bytes: args.payload_bytes,
            executions: args.executions,
        };
        let results = workload::run_alternating(&base, &spec, args.rounds)?;
        rows.extend(results);
    }
    let probe_after = probe::fdatasync_p50(&base)?;
    println!(
        "fdatasync probe after:  p50 {:.0} µs",
        probe_after.as_secs_f64() * 1e6
    );
    println!();
    print!("{}", report::markdown(&rows));
    Ok(())
}
