//! C2: what automatic retention costs the appends running beside it. A log of `events`
//! events over 1,000 executions is reopened with retention by size set far above its size
//! (every pass builds its view and plans; none drops anything) and a short interval, and one
//! writer appends to it for `seconds` at a steady `rate`, with retention on and off in
//! alternating rounds. The appends are buffered (no fsync), so the disk does not hide what a
//! pass holds them up by: the tail of their latency is the stall. (Paced, so that the log
//! stays near its size through the run.)

use anyhow::Result;
use hdrhistogram::Histogram;
use seglog::{Log, Options, Retention, SyncMode};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const EXECUTIONS: u64 = 1000;

/// The shape of a run.
pub struct Shape {
    pub events: u64,
    pub payload_bytes: usize,
    pub seconds: f64,
    pub rounds: usize,
    pub interval: Duration,
    /// Appends per second.
    pub rate: u64,
}

struct Round {
    retention: bool,
    appends: u64,
    passes: u64,
    latency: Histogram<u64>,
}

fn build(dir: &Path, shape: &Shape) -> Result<()> {
    let log = Log::open_blocking(dir, Options::default().sync_mode(SyncMode::Never))?;
    let payload = vec![b'r'; shape.payload_bytes];
    for i in 0..shape.events {
        log.append_batch_buffered(&format!("exec-{:06}", i % EXECUTIONS), "t", &[&payload])?;
    }
    log.close()?;
    Ok(())
}

fn round(dir: &Path, shape: &Shape, retention: bool) -> Result<Round> {
    let mut options = Options::default();
    if retention {
        options = options.retention(
            Retention::default()
                .max_log_bytes(u64::MAX / 2)
                .interval(shape.interval),
        );
    }
    let log = Log::open_blocking(dir, options)?;
    let payload = vec![b'a'; shape.payload_bytes];
    let mut latency = Histogram::<u64>::new(3)?;
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(shape.seconds);
    let period = Duration::from_secs(1) / u32::try_from(shape.rate.max(1)).unwrap_or(u32::MAX);
    let mut appends = 0u64;
    while Instant::now() < until {
        let due = start + period * u32::try_from(appends).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = Instant::now();
        log.append_batch_buffered(
            &format!("live-{:06}", appends % EXECUTIONS),
            "t",
            &[&payload],
        )?;
        latency.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))?;
        appends += 1;
    }
    let passes = log.stats().retention.passes;
    log.close()?;
    Ok(Round {
        retention,
        appends,
        passes,
        latency,
    })
}

/// Runs C2 and returns a markdown table, a row per round.
pub fn run(base: &Path, shape: &Shape) -> Result<String> {
    let tmp = tempfile::tempdir_in(base)?;
    build(tmp.path(), shape)?;
    let mut out = String::new();
    writeln!(
        out,
        "| round | retention passes (every {} ms) | appends/s | p50 µs | p99 µs | p99.9 µs | max µs |",
        shape.interval.as_millis()
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
    for r in 0..shape.rounds {
        for retention in [r % 2 == 0, r % 2 != 0] {
            let row = round(tmp.path(), shape, retention)?;
            let us = |q: f64| row.latency.value_at_quantile(q) as f64 / 1e3;
            writeln!(
                out,
                "| {} {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
                r + 1,
                if row.retention { "on" } else { "off" },
                row.passes,
                row.appends as f64 / shape.seconds,
                us(0.5),
                us(0.99),
                us(0.999),
                row.latency.max() as f64 / 1e3
            )?;
        }
    }
    Ok(out)
}
