//! seglog's benchmark: durable append latency and throughput against SQLite, raft-engine and
//! the fsync floor, in one process run with peers alternating round by round (A B A B …) so
//! ratios survive a noisy machine; and open / read / index-memory figures against raft-engine.
//! See docs/benchmarks.md for the figures and how to read them.
//!
//! Workloads:
//! - W1–W4: 256-byte appends from 1, 16 and 64 closed-loop writers, and batches of 10 from 1.
//! - W5: 4 KiB payloads, 16 writers (MB/s).
//! - W6–W8: open after 1M events, read a 1,000-event execution, index memory; W6 and W7 warm
//!   and cold (every file evicted from the page cache before the open), SQLite the cold peer.
//! - W9: 256 KiB records, 16 writers (MB/s), against the durable-bandwidth floor (one thread,
//!   1 MiB `pwrite` + `fdatasync` in a loop into a file of written zeros) measured in the same run,
//!   and beside the appending floor (the same loop writing new data at a file's end, its pages
//!   dropped 256 MiB behind).
//! - W10: bulk import of 1M events in batches of 10 with one sync at the end (seglog's
//!   buffered appends against raft-engine's `write(sync = false)`).
//! - C1: compaction rewrite throughput.
//! - S1–S5: enact-core's streaming `EventStore`: seglog against `JsonlEventStore` and
//!   `InMemoryEventStore` (appends from 1 and 64 writers, get_by_execution, get_after, open).
//! - `tier` (issue 17): restore from a bucket against log size, append latency with and
//!   without shipping and with `Durability::Remote`, and the requests (and S3 dollars) of a busy log.
//!
//! Every append run reports, per peer, throughput, the ratios to the floor and to
//! raft-engine, latency percentiles, process CPU per append (user + sys, `getrusage`), and the
//! block device's write requests, flushes and jbd2 commits per second; and writes SVG figures
//! (throughput, latency) into `--plots`.

mod bulk;
mod cold;
mod compaction;
mod crash_open;
mod peers;
mod plots;
mod probe;
mod recovery;
mod report;
mod retention_stall;
mod streaming;
mod tier;
mod usage;
mod wakeup;
mod workload;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// seglog benchmarks (W1–W10). `--quick` runs every workload briefly (CI smoke test).
///
/// Workloads (256-byte payloads, 1,000 executions, every append durable):
///   W1 1 writer · W2 16 writers · W3 64 writers · W4 batches of 10, 1 writer
///   W5 4 KiB payloads, 16 writers (MB/s, vs. the disk's sequential bandwidth)
///   W6 open after 1M events · W7 read a 1,000-event execution · W8 index memory
///      (W6/W7 warm, then cold: every file evicted from the page cache before the open,
///      against SQLite evicted the same way)
///   W9 256 KiB records, 16 writers (MB/s, vs. the durable-bandwidth floor: one thread
///      looping 1 MiB pwrite + fdatasync, measured in the same rounds; beside it the
///      appending floor, the same loop writing new data at a file's end)
///   W10 bulk import, 1M events in batches of 10, one sync at the end (vs. raft-engine)
///   C1 compaction rewrite throughput (MB/s, vs. the disk's sequential bandwidth)
///   R1 open after the writing process died, the last segment prepared (zeroed throughout)
///      or not, its tail clean or torn, warm and cold page cache
///   S1–S5 enact-core's streaming EventStore: seglog vs JsonlEventStore (no fsync) and
///      InMemoryEventStore: appends from 1 and 64 writers, get_by_execution of a
///      1,000-event execution, get_after of 10,000 from the middle, open after N events
///   tier (issue 17): restore from a bucket against log size; append latency with no
///      tier, sealed-segment shipping, chunk shipping and Durability::Remote; requests and S3 cost of a busy
///      log (file:// bucket; plus S3 when SEGLOG_BENCH_S3_ENDPOINT is set)
///
/// Append runs report per peer: appends/s, MB/s, vs floor, vs raft-engine, p50/p99/p99.9,
/// process CPU µs per append (user, sys) and context switches per append (against the
/// wake-up floors: what one sleep + wake-up of a blocked thread costs, no I/O, woken alone
/// or with its group by one call), and the
/// block device's writes, flushes, MB and jbd2 commits per second; and write SVG figures
/// (throughput, latency per workload) to --plots.
///
/// Examples:
///   seglog-bench all                     # the documented full run (~16 minutes)
///   seglog-bench append --writers 64 --seconds 3 --rounds 3
///   seglog-bench open --events 1000000 --executions 1000
///   seglog-bench compact --mib 1024
///   seglog-bench streaming --events 1000000
///   seglog-bench import --events 1000000 --batch 10
///   seglog-bench crash-open --runs 5
///   seglog-bench tier --events 10000,100000,1000000 --seconds 20 --rounds 3
///   seglog-bench --quick
#[derive(Parser, Debug)]
#[command(version, about, verbatim_doc_comment)]
struct Args {
    /// Every workload, briefly (seconds in all).
    #[arg(long)]
    quick: bool,
    /// Directory for the temporary logs (default: the system temp dir; created if missing).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Directory for the SVG figures of append runs (created if missing).
    #[arg(long, global = true, default_value = "target/bench-plots")]
    plots: PathBuf,
    #[command(subcommand)]
    workload: Option<Workload>,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// W1–W10, the full documented run.
    All {
        /// Seconds per peer per round for W1–W5 and W9.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Rounds for W1–W5 and W9.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Events in the W6–W8 logs.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Closed-loop durable appends from N writers; every peer, alternating rounds.
    Append {
        /// Comma-separated writer counts (each is one workload).
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        writers: Vec<usize>,
        /// Events per append.
        #[arg(long, default_value_t = 1)]
        batch: usize,
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
        /// Only peers whose name contains one of these (comma-separated), e.g. `raft,Log`.
        /// (The bandwidth floor of --bandwidth-floor runs regardless.)
        #[arg(long, value_delimiter = ',')]
        peers: Vec<String>,
        /// Also run the durable-bandwidth floor (1 writer looping 1 MiB pwrite + fdatasync)
        /// in every round, and compare MB/s with it, as W9 does; and the appending floor
        /// (the same loop writing new data at a file's end).
        #[arg(long)]
        bandwidth_floor: bool,
    },
    /// W6–W8: open (with and without checkpoints), read one execution, index memory;
    /// seglog and raft-engine on the same events.
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
        /// Timed opens per system (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// W10: bulk import without an fsync per batch, one sync at the end; seglog's buffered
    /// appends against raft-engine's `write(sync = false)`.
    Import {
        /// Events imported.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events per batch.
        #[arg(long, default_value_t = 10)]
        batch: u64,
        /// Executions the batches go to, in turn.
        #[arg(long, default_value_t = 1000)]
        executions: u64,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
        /// Runs per system (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// C1: compaction rewrite throughput (erase a tenant; merge everything).
    Compact {
        /// Size of the log to compact, in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 1024)]
        payload_bytes: usize,
        /// Runs per shape (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// C2: what automatic retention's passes cost the appends beside them: one writer's
    /// buffered appends to a log of `events` events, retention by size on (a limit far above
    /// the log, so passes plan and drop nothing) and off, in alternating rounds.
    RetentionStall {
        /// Events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
        /// Seconds per round.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Rounds (each runs retention on and off).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Retention's interval, ms.
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
        /// Appends per second of the writer.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
    },
    /// R1: opening a log after its process died, with a prepared (zeroed) last segment and
    /// without, the tail clean and torn; warm and cold page cache.
    CrashOpen {
        /// Timed opens per cell (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// R1's crashing child (run by `crash-open`, not by hand).
    #[command(hide = true)]
    CrashChild {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        prepared: bool,
        #[arg(long)]
        torn: bool,
    },
    /// S1–S5: enact-core's streaming EventStore, seglog against JSONL and in-memory.
    Streaming {
        /// Seconds per append workload (S1, S2).
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Events in the S3–S5 log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Only S2 through seglog (for a profiler).
        #[arg(long)]
        s2_seglog_only: bool,
    },
    /// Issue 17: restore from a bucket against log size; append latency with no tier,
    /// sealed-segment shipping, chunk shipping and Durability::Remote; requests (and S3 dollars) of a busy log.
    /// A file:// bucket always; an S3 server too when SEGLOG_BENCH_S3_ENDPOINT is set
    /// (bucket SEGLOG_BENCH_S3_BUCKET, default seglog-bench, must exist). The defaults are
    /// brief (~10 s; `seglog-bench --quick tier`: ~6 s); the documented run:
    /// `tier --events 10000,100000,1000000 --seconds 20 --rounds 3`.
    #[command(verbatim_doc_comment)]
    Tier {
        /// Comma-separated log sizes for the restore figures, in events.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        events: Vec<u64>,
        /// Executions the events are spread over.
        #[arg(long, default_value_t = 1000)]
        executions: u64,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
        /// Timed restores per size and bucket (the median is reported).
        #[arg(long, default_value_t = 3)]
        restores: usize,
        /// Writer threads of the append runs.
        #[arg(long, default_value_t = 16)]
        writers: usize,
        /// Seconds per mode per round of the append runs.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Rounds of the append runs (modes alternate).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// The shipper's interval (and the chunk mode's ship_interval), ms.
        #[arg(long, default_value_t = 1000)]
        ship_interval_ms: u64,
        /// Segment size of the append runs' logs, MiB (the engine's default is 128).
        #[arg(long, default_value_t = 128)]
        segment_mib: u64,
        /// Only the restore figures (whole and lazy), not the append runs.
        #[arg(long)]
        restore_only: bool,
        /// Chunk rounds of the chunk-restore figure: an active segment shipped as this many
        /// chunks, restored fetching ahead and one object at a time (0: not run).
        #[arg(long, default_value_t = 100)]
        chunks: usize,
        /// Emulated first-byte latency added to every GET of the restore figures, ms
        /// (loopback has none; S3's is tens of ms).
        #[arg(long, default_value_t = 0)]
        get_latency_ms: u64,
    },
}

fn spec(
    name: &str,
    writers: usize,
    batch: usize,
    payload_bytes: usize,
    seconds: f64,
) -> workload::Spec {
    workload::Spec {
        name: name.to_owned(),
        writers,
        batch,
        duration: Duration::from_secs_f64(seconds),
        payload_bytes,
        executions: 1000,
        bandwidth_floor: false,
    }
}

fn appends(
    base: &Path,
    specs: &[workload::Spec],
    rounds: usize,
    bandwidth: bool,
    plots_dir: &Path,
) -> Result<()> {
    let device = usage::Device::of(base);
    let before = probe::fdatasync_p50(base)?;
    let mut rows = Vec::new();
    for s in specs {
        rows.extend(workload::run_alternating(base, s, rounds, &device)?);
    }
    let after = probe::fdatasync_p50(base)?;
    println!(
        "fdatasync probe (4 KiB write + fdatasync, p50): before {:.0} µs, after {:.0} µs",
        before.as_secs_f64() * 1e6,
        after.as_secs_f64() * 1e6
    );
    let mut writer_counts: Vec<usize> = specs.iter().map(|s| s.writers).collect();
    writer_counts.sort_unstable();
    writer_counts.dedup();
    for threads in writer_counts.into_iter().filter(|&n| n > 1) {
        for (by, how) in [
            (wakeup::WakeBy::EachThread, "each unparked by another"),
            (wakeup::WakeBy::OneCall, "woken together by one call"),
        ] {
            let f = wakeup::measure(threads, 2000, by)?;
            println!(
                "wake-up floor ({} threads, {how}, no I/O): {:.1} µs CPU and \
                 {:.2} voluntary switches per sleep + wake-up, {:.0} wake-ups/s",
                f.threads, f.cpu_us, f.voluntary_switches, f.wakeups_per_sec
            );
        }
    }
    if bandwidth {
        println!(
            "disk sequential write bandwidth (512 MiB, 1 MiB writes, one fdatasync): {:.0} MB/s",
            probe::sequential_write_mb_s(base)?
        );
    }
    println!("{}", device.describe());
    println!();
    print!("{}", report::markdown(&rows));
    println!();
    for path in plots::write(plots_dir, &rows)? {
        println!("plot: {}", path.display());
    }
    Ok(())
}

fn opens(
    base: &Path,
    events: u64,
    executions: u64,
    payload_bytes: usize,
    runs: usize,
) -> Result<()> {
    let shape = recovery::Shape {
        events,
        executions,
        payload_bytes,
        long_execution: 1000.min(events / 2),
    };
    let before = probe::fdatasync_p50(base)?;
    let table = recovery::run(base, &shape, runs)?;
    let after = probe::fdatasync_p50(base)?;
    println!(
        "fdatasync probe (4 KiB write + fdatasync, p50): before {:.0} µs, after {:.0} µs",
        before.as_secs_f64() * 1e6,
        after.as_secs_f64() * 1e6
    );
    print!("{table}");
    Ok(())
}

fn compactions(base: &Path, mib: u64, payload_bytes: usize, runs: usize) -> Result<()> {
    let before = probe::fdatasync_p50(base)?;
    let table = compaction::run(base, mib << 20, payload_bytes, runs, true)?;
    let after = probe::fdatasync_p50(base)?;
    println!(
        "fdatasync probe (p50): before {:.0} µs, after {:.0} µs; disk sequential write bandwidth: {:.0} MB/s",
        before.as_secs_f64() * 1e6,
        after.as_secs_f64() * 1e6,
        probe::sequential_write_mb_s(base)?
    );
    println!();
    print!("{table}");
    Ok(())
}

fn all(base: &Path, plots_dir: &Path, seconds: f64, rounds: usize, events: u64) -> Result<()> {
    let specs = [
        spec("W1", 1, 1, 256, seconds),
        spec("W2", 16, 1, 256, seconds),
        spec("W3", 64, 1, 256, seconds),
        spec("W4", 1, 10, 256, seconds),
        spec("W5", 16, 1, 4096, seconds),
        workload::Spec {
            bandwidth_floor: true,
            ..spec("W9", 16, 1, 256 << 10, seconds)
        },
    ];
    appends(base, &specs, rounds, true, plots_dir)?;
    println!("\nW6, W7 (1,000 executions):\n");
    opens(base, events, 1000, 256, 5)?;
    println!("\nW8 (10,000 executions):\n");
    opens(base, events, 10_000, 256, 3)?;
    println!("\nW10:\n");
    imports(base, events, 3)
}

fn imports(base: &Path, events: u64, runs: usize) -> Result<()> {
    let shape = bulk::Shape {
        events,
        batch: 10,
        executions: 1000,
        payload_bytes: 256,
    };
    print!("{}", bulk::run(base, &shape, runs)?);
    Ok(())
}

fn streaming_shape(seconds: f64, events: u64) -> streaming::Shape {
    streaming::Shape {
        seconds,
        events,
        // One writer of 64 writes it (see streaming::fill).
        long_execution: 1000.min(events / 64),
        get_after: 10_000,
        s2_seglog_only: false,
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)
        .with_context(|| format!("cannot create the bench directory {}", base.display()))?;
    match (args.quick, args.workload) {
        (
            false,
            Some(Workload::All {
                seconds,
                rounds,
                events,
            }),
        ) => all(&base, &args.plots, seconds, rounds, events),
        (
            false,
            Some(Workload::Append {
                writers,
                batch,
                seconds,
                rounds,
                payload_bytes,
                executions,
                peers,
                bandwidth_floor,
            }),
        ) => {
            workload::set_peer_filter(peers);
            let specs: Vec<workload::Spec> = writers
                .iter()
                .map(|&w| workload::Spec {
                    executions,
                    bandwidth_floor,
                    ..spec(&format!("append-{w}"), w, batch, payload_bytes, seconds)
                })
                .collect();
            appends(&base, &specs, rounds, false, &args.plots)
        }
        (
            false,
            Some(Workload::Open {
                events,
                executions,
                payload_bytes,
                runs,
            }),
        ) => opens(&base, events, executions, payload_bytes, runs),
        (
            false,
            Some(Workload::Compact {
                mib,
                payload_bytes,
                runs,
            }),
        ) => compactions(&base, mib, payload_bytes, runs),
        (
            false,
            Some(Workload::RetentionStall {
                events,
                payload_bytes,
                seconds,
                rounds,
                interval_ms,
                rate,
            }),
        ) => {
            let shape = retention_stall::Shape {
                events,
                payload_bytes,
                seconds,
                rounds,
                interval: Duration::from_millis(interval_ms),
                rate,
            };
            print!("{}", retention_stall::run(&base, &shape)?);
            Ok(())
        }
        (false, Some(Workload::CrashOpen { runs })) => {
            print!("{}", crash_open::run(&base, runs)?);
            Ok(())
        }
        (
            _,
            Some(Workload::CrashChild {
                dir,
                prepared,
                torn,
            }),
        ) => crash_open::child(&dir, prepared, torn),
        (
            false,
            Some(Workload::Streaming {
                seconds,
                events,
                s2_seglog_only,
            }),
        ) => {
            let shape = streaming::Shape {
                s2_seglog_only,
                ..streaming_shape(seconds, events)
            };
            print!("{}", streaming::run(&base, &shape)?);
            Ok(())
        }
        (
            false,
            Some(Workload::Import {
                events,
                batch,
                executions,
                payload_bytes,
                runs,
            }),
        ) => {
            let shape = bulk::Shape {
                events,
                batch,
                executions,
                payload_bytes,
            };
            print!("{}", bulk::run(&base, &shape, runs)?);
            Ok(())
        }
        (
            quick,
            Some(Workload::Tier {
                events,
                executions,
                payload_bytes,
                restores,
                writers,
                seconds,
                rounds,
                ship_interval_ms,
                segment_mib,
                restore_only,
                chunks,
                get_latency_ms,
            }),
        ) => {
            let mut shape = tier::Shape {
                sizes: events,
                executions,
                payload_bytes,
                restores,
                writers,
                seconds,
                rounds,
                ship_interval: Duration::from_millis(ship_interval_ms),
                segment_size_bytes: segment_mib << 20,
                restore_only,
                chunks,
                get_latency: Duration::from_millis(get_latency_ms),
            };
            if quick {
                shape.sizes = vec![10_000];
                shape.chunks = shape.chunks.min(20);
                shape.restores = 1;
                shape.seconds = 1.0;
                shape.rounds = 1;
            }
            tier::run(&base, &shape)
        }
        // --quick, or no workload named: everything, briefly.
        _ => {
            all(&base, &args.plots, 0.25, 1, 20_000)?;
            println!("\nC1 (8 MiB log):\n");
            print!("{}", compaction::run(&base, 8 << 20, 1024, 1, false)?);
            println!("\nS1–S5 (20,000 events):\n");
            print!("{}", streaming::run(&base, &streaming_shape(0.25, 20_000))?);
            Ok(())
        }
    }
}
