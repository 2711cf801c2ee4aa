//! Open, read and index-memory workloads (W6–W8): build a log once, then time reopening it
//! with and without index checkpoints, reading one execution, and the index's size.

use anyhow::{Context, Result};
use seglog::{CheckpointMode, Log, Options, SyncMode};
use std::path::Path;
use std::time::{Duration, Instant};

/// Builds a log of `events` events of `payload_bytes` over `executions` executions, with a
/// dedicated execution of `long_execution` events for the read test. Bulk-loaded without
/// per-append fsync (the log is synced when closed).
pub fn build(
    dir: &Path,
    events: u64,
    executions: u64,
    payload_bytes: usize,
    long_execution: u64,
) -> Result<Duration> {
    let started = Instant::now();
    let opts = Options {
        sync_mode: SyncMode::Never,
        ..Options::default()
    };
    let log = Log::open_blocking(dir, opts)?;
    let payload = vec![0x5Au8; payload_bytes];
    let threads = 2u64;
    let per_thread = events.saturating_sub(long_execution) / threads;
    let every = (per_thread / long_execution.max(1)).max(1);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = log.clone();
                let payload = &payload;
                s.spawn(move || -> Result<()> {
                    for i in 0..per_thread {
                        let n = t * per_thread + i;
                        // Interleave the long execution's events through the whole log.
                        if t == 0 && i % every == 0 && i / every < long_execution {
                            log.append_blocking("long-execution", "tenant-0", payload)?;
                        }
                        let exec = format!("exec-{:06}", n % executions);
                        log.append_blocking(
                            &exec,
                            &format!("tenant-{}", n % executions % 10),
                            payload,
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("loader thread panicked"))??;
        }
        Ok(())
    })?;
    let have = log.count("long-execution")?;
    if have < long_execution {
        let missing = vec![payload.clone(); (long_execution - have) as usize];
        log.append_batch_blocking("long-execution", "tenant-0", &missing)?;
    }
    log.close()?;
    Ok(started.elapsed())
}

/// Median open time over `runs` opens (warm page cache), and the recovery figures of the last.
pub fn time_open(
    dir: &Path,
    checkpoints: CheckpointMode,
    runs: usize,
) -> Result<(Duration, seglog::RecoveryStats)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let log = Log::open_blocking(
            dir,
            Options {
                checkpoints,
                ..Options::default()
            },
        )?;
        times.push(t.elapsed());
        last = Some(log.stats().recovery);
        log.close()?;
    }
    times.sort();
    Ok((times[times.len() / 2], last.context("no run")?))
}

/// Median time to read every event of `execution` after a reopen, over `runs` reads.
pub fn time_read(dir: &Path, execution: &str, runs: usize) -> Result<(Duration, usize)> {
    let log = Log::open_blocking(dir, Options::default())?;
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let events = log.read(execution)?;
        times.push(t.elapsed());
        n = events.len();
    }
    log.close()?;
    times.sort();
    Ok((times[times.len() / 2], n))
}

/// Index memory per event of the log in `dir`.
pub fn index_memory(dir: &Path) -> Result<(usize, u64, usize)> {
    let log = Log::open_blocking(dir, Options::default())?;
    let s = log.stats();
    log.close()?;
    Ok((s.index_memory_bytes, s.indexed_events, s.executions))
}

/// Bytes of records in the log (not counting preallocated space).
fn log_bytes(dir: &Path) -> Result<u64> {
    let log = Log::open_blocking(dir, Options::default())?;
    let total = log.segments().iter().map(|s| s.data_end).sum();
    log.close()?;
    Ok(total)
}

/// W6, W7 and W8 on one log; prints a markdown table.
pub fn run(
    base: &Path,
    events: u64,
    executions: u64,
    payload_bytes: usize,
    runs: usize,
) -> Result<String> {
    let tmp = tempfile::tempdir_in(base)?;
    let dir = tmp.path().join("log");
    let built = build(&dir, events, executions, payload_bytes, 1000)?;
    let bytes = log_bytes(&dir)?;
    eprintln!(
        "built {events} events over {executions} executions ({} MiB) in {:.1?}",
        bytes >> 20,
        built
    );
    // The first open writes any checkpoint still missing; time the opens after it.
    let (_, _) = time_open(&dir, CheckpointMode::Background, 1)?;
    let (with_ckpt, r1) = time_open(&dir, CheckpointMode::Background, runs)?;
    let (without, r2) = time_open(&dir, CheckpointMode::Off, runs)?;
    let (read, n) = time_read(&dir, "long-execution", runs.max(5))?;
    let (mem, indexed, execs) = index_memory(&dir)?;
    let mut out = String::new();
    use std::fmt::Write;
    let _ = writeln!(out, "| figure | value |");
    let _ = writeln!(out, "|---|---:|");
    let _ = writeln!(out, "| log | {events} events × {payload_bytes} B over {executions} executions, {} MiB in {} segments |", bytes >> 20, r1.checkpoints_loaded + 1);
    let _ = writeln!(out, "| open with checkpoints (median of {runs}) | {:.1} ms ({} checkpoints, {} segment scanned, {} KiB read) |", with_ckpt.as_secs_f64() * 1e3, r1.checkpoints_loaded, r1.segments_scanned, r1.bytes_scanned >> 10);
    let _ = writeln!(
        out,
        "| open without checkpoints (median of {runs}) | {:.1} ms ({} MiB scanned, {:.0} MB/s) |",
        without.as_secs_f64() * 1e3,
        r2.bytes_scanned >> 20,
        r2.bytes_scanned as f64 / without.as_secs_f64() / 1e6
    );
    let _ = writeln!(
        out,
        "| read one {n}-event execution after reopen (median) | {:.3} ms |",
        read.as_secs_f64() * 1e3
    );
    let _ = writeln!(out, "| index memory | {:.1} MiB for {indexed} events in {execs} executions = {:.2} bytes/event |", mem as f64 / 1048576.0, mem as f64 / indexed.max(1) as f64);
    Ok(out)
}
