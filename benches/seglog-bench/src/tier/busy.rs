//! Append latency per durability mode (no tier, sealed-segment shipping, chunk shipping,
//! `Durability::Remote`), and the requests a busy log makes.
//!
//! Each run opens a fresh log (segment size `segment_size_bytes`), claims a fresh prefix
//! (shipping modes), starts a `Shipper` every `ship_interval` on a 2-worker tokio runtime,
//! and drives `writers` closed-loop threads of durable `append_blocking` for `seconds`.
//! Modes alternate round by round (order reversed every other round). The request counts
//! of a run are those made between the shipper's start and the end of the timed window
//! (the claim, a one-off, and the shipper's last round at stop are left out). After the
//! last round, each shipping mode's claim runs one orphan collection (grace 1 h), counted
//! on its own.

use super::counting::{CountingStore, Counts};
use super::{fresh_prefix, prices, Bucket, Shape};
use anyhow::Result;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use seglog::{Log, Options};
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A durability mode that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No tier: the local log alone.
    Local,
    /// Sealed-segment shipping (the default of a `Tier`).
    Sealed,
    /// Chunk shipping (`Tier::with_active_chunks`).
    Chunks,
    /// `Durability::Remote` (`RemoteDurable`): each append returns once a ship round that
    /// started after it put its bytes in the bucket (a `Shipper` runs too, as in
    /// `SeglogEventStore::open_from_bucket`).
    Remote,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Local => "no tier (local log only)",
            Mode::Sealed => "sealed-segment shipping",
            Mode::Chunks => "chunk shipping (`with_active_chunks`)",
            Mode::Remote => "`Durability::Remote` (`RemoteDurable`)",
        }
    }
}

/// One mode on one bucket, over all rounds.
pub struct Row {
    pub bucket: String,
    pub mode: Mode,
    pub latency_us: Histogram<u64>,
    pub rounds_per_sec: Vec<f64>,
    pub rounds_p99_us: Vec<u64>,
    /// Requests in the timed windows, and the windows' total length.
    pub requests: Counts,
    pub window: Duration,
    /// Requests of one orphan collection after the last round.
    pub orphans: Counts,
}

impl Row {
    fn median_per_sec(&self) -> f64 {
        let mut v = self.rounds_per_sec.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
}

struct Run {
    appends: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    requests: Counts,
    orphans: Counts,
}

/// How the writers append.
#[derive(Clone, Copy)]
enum Appender<'a> {
    /// `Log::append_blocking`: acknowledged once durable locally.
    Local(&'a Log),
    /// `RemoteDurable::append`, driven from the writer thread: acknowledged once in the bucket.
    Remote(&'a seglog_tier::RemoteDurable, &'a tokio::runtime::Handle),
}

impl Appender<'_> {
    fn append(self, exec: &str, payload: &[u8]) -> Result<()> {
        match self {
            Appender::Local(log) => {
                log.append_blocking(exec, "bench", payload)?;
            }
            Appender::Remote(remote, rt) => {
                rt.block_on(remote.append(exec, "bench", payload))?;
            }
        }
        Ok(())
    }
}

/// Closed-loop durable appends from `shape.writers` threads for `shape.seconds`.
fn drive(appender: Appender<'_>, shape: &Shape) -> Result<(u64, Duration, Histogram<u64>)> {
    let deadline = Instant::now() + Duration::from_secs_f64(shape.seconds);
    let started = Instant::now();
    let per_thread: Vec<Result<(u64, Histogram<u64>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..shape.writers)
            .map(|t| {
                s.spawn(move || -> Result<(u64, Histogram<u64>)> {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(t as u64);
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                    let payload: Vec<u8> = (0..shape.payload_bytes)
                        .map(|_| b'a' + rng.random_range(0..26u8))
                        .collect();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let exec = format!("exec-{:06}", rng.random_range(0..shape.executions));
                        let t0 = Instant::now();
                        appender.append(&exec, &payload)?;
                        hist.saturating_record(t0.elapsed().as_micros() as u64);
                        n += 1;
                    }
                    Ok((n, hist))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("writer thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut total = 0;
    for r in per_thread {
        let (n, h) = r?;
        total += n;
        hist.add(h)?;
    }
    Ok((total, elapsed, hist))
}

fn run_once(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    bucket: &Bucket,
    mode: Mode,
    shape: &Shape,
    collect_orphans: bool,
) -> Result<Run> {
    let options = Options::default().segment_size_bytes(shape.segment_size_bytes);
    let log = Log::open_blocking(dir.join("log"), options)?;
    let store = CountingStore::new(bucket.store.clone());
    let mut remote = None;
    let shipping = match mode {
        Mode::Local => None,
        Mode::Remote => {
            let claim = rt.block_on(seglog_tier::Tier::claim(
                store.clone(),
                fresh_prefix("busy"),
            ))?;
            let _entered = rt.enter();
            let durable = seglog_tier::RemoteDurable::spawn(claim, log.clone());
            let tier = durable.tier().clone();
            let shipper =
                seglog_tier::Shipper::spawn(tier.clone(), log.clone(), shape.ship_interval);
            remote = Some(durable);
            Some((tier, shipper))
        }
        Mode::Sealed | Mode::Chunks => {
            let claim = rt.block_on(seglog_tier::Tier::claim(
                store.clone(),
                fresh_prefix("busy"),
            ))?;
            let tier = Arc::new(if mode == Mode::Chunks {
                claim.with_active_chunks()
            } else {
                claim
            });
            let _entered = rt.enter();
            let shipper =
                seglog_tier::Shipper::spawn(tier.clone(), log.clone(), shape.ship_interval);
            Some((tier, shipper))
        }
    };
    let counted_from = store.counts();
    let appender = match &remote {
        Some(remote) => Appender::Remote(remote, rt.handle()),
        None => Appender::Local(&log),
    };
    let (appends, elapsed, latency_us) = drive(appender, shape)?;
    let requests = store.counts().since(counted_from);
    if let Some(remote) = &remote {
        let stats = remote.stats();
        eprintln!(
            "remote durability: {} rounds for {} acknowledgements (largest round {}), {} failed",
            stats.rounds, stats.confirmed, stats.largest_round, stats.failed_rounds
        );
        rt.block_on(remote.stop())?;
    }
    let mut orphans = Counts::default();
    if let Some((tier, shipper)) = shipping {
        rt.block_on(shipper.stop())?;
        if collect_orphans {
            let before = store.counts();
            let report = rt.block_on(tier.collect_orphans(Duration::from_secs(3600)))?;
            orphans = store.counts().since(before);
            eprintln!(
                "orphan collection ({}): {} deleted, {} kept young",
                mode.name(),
                report.deleted.len(),
                report.kept_young
            );
        }
    }
    log.close()?;
    Ok(Run {
        appends,
        elapsed,
        latency_us,
        requests,
        orphans,
    })
}

/// Every mode on every bucket (the local mode once, on the first bucket's runs: it touches
/// no bucket), `shape.rounds` rounds, alternating.
pub fn run(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    buckets: &[Bucket],
    shape: &Shape,
) -> Result<Vec<Row>> {
    let mut contestants: Vec<(usize, Mode)> = vec![(0, Mode::Local)];
    for b in 0..buckets.len() {
        contestants.extend([(b, Mode::Sealed), (b, Mode::Chunks), (b, Mode::Remote)]);
    }
    let mut rows: Vec<Row> = contestants
        .iter()
        .map(|&(b, mode)| {
            Ok(Row {
                bucket: if mode == Mode::Local {
                    "–".into()
                } else {
                    buckets[b].name.clone()
                },
                mode,
                latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
                rounds_per_sec: Vec::new(),
                rounds_p99_us: Vec::new(),
                requests: Counts::default(),
                window: Duration::ZERO,
                orphans: Counts::default(),
            })
        })
        .collect::<Result<_>>()?;
    let rounds = shape.rounds.max(1);
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..contestants.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (b, mode) = contestants[i];
            let tmp = tempfile::tempdir_in(base)?;
            let run = run_once(
                rt,
                tmp.path(),
                &buckets[b],
                mode,
                shape,
                round + 1 == rounds,
            )?;
            let per_sec = run.appends as f64 / run.elapsed.as_secs_f64().max(1e-9);
            let p99 = run.latency_us.value_at_quantile(0.99);
            eprintln!(
                "tier round {round} {:<40} {:<40}: {per_sec:>8.0} appends/s p50 {:>6} µs p99 {:>6} µs; {} PUT, {} GET, {} LIST pages",
                mode.name(),
                rows[i].bucket,
                run.latency_us.value_at_quantile(0.5),
                p99,
                run.requests.puts,
                run.requests.get_class(),
                run.requests.list_pages,
            );
            let row = &mut rows[i];
            row.latency_us.add(&run.latency_us)?;
            row.rounds_per_sec.push(per_sec);
            row.rounds_p99_us.push(p99);
            row.requests = row.requests.plus(run.requests);
            row.window += run.elapsed;
            if round + 1 == rounds {
                row.orphans = run.orphans;
            }
        }
    }
    Ok(rows)
}

/// The latency table.
pub fn latency_markdown(rows: &[Row], shape: &Shape) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| mode | bucket | writers | appends/s (median of {} rounds) | p50 µs | p99 µs | p99.9 µs | max µs | p99 per round µs |",
        shape.rounds
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let per_round: Vec<String> = r.rounds_p99_us.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            r.mode.name(),
            r.bucket,
            shape.writers,
            r.median_per_sec(),
            r.latency_us.value_at_quantile(0.5),
            r.latency_us.value_at_quantile(0.99),
            r.latency_us.value_at_quantile(0.999),
            r.latency_us.max(),
            per_round.join(", ")
        );
    }
    out
}

/// The requests table: counts in the windows, per hour, per 30-day month, in dollars.
pub fn requests_markdown(rows: &[Row], shape: &Shape) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Requests while shipping ({} writers, ship interval {:.1} s, segments of {} MiB); S3 prices: ${} per 1,000 PUT/COPY/POST/LIST, ${} per 1,000 GET/HEAD, ${} per GB-month.\n",
        shape.writers,
        shape.ship_interval.as_secs_f64(),
        shape.segment_size_bytes >> 20,
        prices::PUT_CLASS_PER_1000,
        prices::GET_CLASS_PER_1000,
        prices::STORAGE_PER_GB_MONTH
    );
    let _ = writeln!(
        out,
        "| mode | bucket | window | PUT (chunks / manifests / other) | GET | range GET | HEAD | LIST pages | DELETE | MB uploaded (chunks) | PUT-class / h | GET-class / h | GB uploaded / h | requests $ / month | GB uploaded / month (of it chunks) |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows.iter().filter(|r| r.mode != Mode::Local) {
        let q = &r.requests;
        let secs = r.window.as_secs_f64().max(1e-9);
        let per_hour = |n: u64| n as f64 * 3600.0 / secs;
        let month = |n: u64| per_hour(n) * 720.0;
        let dollars = month(q.put_class()) / 1000.0 * prices::PUT_CLASS_PER_1000
            + month(q.get_class()) / 1000.0 * prices::GET_CLASS_PER_1000;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} s | {} ({} / {} / {}) | {} | {} | {} | {} | {} | {:.1} ({:.1}) | {:.0} | {:.0} | {:.1} | ${:.2} | {:.0} ({:.0}) |",
            r.mode.name(),
            r.bucket,
            secs,
            q.puts,
            q.chunk_puts,
            q.manifest_puts,
            q.puts - q.chunk_puts - q.manifest_puts,
            q.gets,
            q.range_gets,
            q.heads,
            q.list_pages,
            q.deletes,
            q.bytes_put as f64 / 1e6,
            q.chunk_bytes as f64 / 1e6,
            per_hour(q.put_class()),
            per_hour(q.get_class()),
            per_hour(q.bytes_put) / 1e9,
            dollars,
            month(q.bytes_put) / 1e9,
            month(q.chunk_bytes) / 1e9,
        );
    }
    let _ = writeln!(
        out,
        "\nOne orphan collection (grace 1 h) after the last round, per mode: PUT / GET / HEAD / LIST pages / DELETE"
    );
    for r in rows.iter().filter(|r| r.mode != Mode::Local) {
        let o = &r.orphans;
        let _ = writeln!(
            out,
            "- {} on {}: {} / {} / {} / {} / {}",
            r.mode.name(),
            r.bucket,
            o.puts,
            o.gets + o.range_gets,
            o.heads,
            o.list_pages,
            o.deletes
        );
    }
    out
}
