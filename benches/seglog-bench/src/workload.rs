//! Closed-loop writers: each thread appends, waits for durability, appends again, timing
//! every append into an HDR histogram. Each run is bracketed by the process's CPU time and
//! the block device's counters (see [`crate::usage`]).

use crate::peers::{self, Peer, PeerKind};
use crate::usage::{Cpu, DevCounters, Device};
use anyhow::Result;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::{Duration, Instant};

/// One workload.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Name in reports (W1, W2 …).
    pub name: String,
    pub writers: usize,
    /// Events per append (1 = single appends).
    pub batch: usize,
    pub duration: Duration,
    pub payload_bytes: usize,
    pub executions: u64,
    /// Also run the durable-bandwidth floor (one thread, 1 MiB `pwrite` + `fdatasync`) in
    /// every round, and compare every peer's MB/s with it ("vs floor").
    pub bandwidth_floor: bool,
}

/// One peer's result on one workload, over all rounds.
pub struct Row {
    pub workload: String,
    pub peer: &'static str,
    pub writers: usize,
    pub batch: usize,
    pub payload_bytes: usize,
    /// Appends (calls) per second of each round.
    pub rounds_per_sec: Vec<f64>,
    /// Latencies of every append of every round, microseconds.
    pub latency_us: Histogram<u64>,
    /// Appends of all rounds, and the time they took.
    pub appends: u64,
    pub elapsed: Duration,
    /// Process CPU time over all rounds (the runs only: not opening or closing the peer).
    pub cpu: Cpu,
    /// Block-device counter changes over all rounds (`None` before the first round).
    pub dev: Option<DevCounters>,
}

impl Row {
    /// An empty row, to which rounds are added.
    pub fn new(spec: &Spec, peer: &'static str) -> Result<Row> {
        // The bandwidth floor's "appends" are single 1 MiB writes from one thread.
        let (writers, batch, payload_bytes) =
            if peer == peers::BANDWIDTH_FLOOR || peer == peers::APPENDING_FLOOR {
                (1, 1, peers::BANDWIDTH_WRITE_BYTES)
            } else {
                (spec.writers, spec.batch.max(1), spec.payload_bytes)
            };
        Ok(Row {
            workload: spec.name.clone(),
            peer,
            writers,
            batch,
            payload_bytes,
            rounds_per_sec: Vec::new(),
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            appends: 0,
            elapsed: Duration::ZERO,
            cpu: Cpu::default(),
            dev: None,
        })
    }

    /// Median over rounds of appends per second.
    pub fn median_per_sec(&self) -> f64 {
        let mut v = self.rounds_per_sec.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    /// Payload megabytes (10^6 bytes) made durable per second, at the median rate.
    pub fn mb_per_sec(&self) -> f64 {
        self.median_per_sec() * (self.batch * self.payload_bytes) as f64 / 1e6
    }

    /// Whether the workload is read as bandwidth (MB/s) rather than appends/s: payloads of
    /// 4 KiB and more (W5, W9).
    pub fn is_bandwidth(&self) -> bool {
        self.payload_bytes >= 4096
    }

    /// Process CPU per append, µs: (user + sys, user, sys).
    pub fn cpu_us_per_append(&self) -> Option<(f64, f64, f64)> {
        if self.appends == 0 {
            return None;
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / self.appends as f64;
        Some((
            per(self.cpu.user + self.cpu.sys),
            per(self.cpu.user),
            per(self.cpu.sys),
        ))
    }

    /// Context switches per append, over the whole process: (voluntary, involuntary).
    pub fn switches_per_append(&self) -> Option<(f64, f64)> {
        let n = self.appends as f64;
        (self.appends > 0).then(|| {
            (
                self.cpu.voluntary_switches as f64 / n,
                self.cpu.involuntary_switches as f64 / n,
            )
        })
    }

    /// A device counter's change per second of run time (`None` where not counted).
    pub fn dev_per_sec(&self, counter: impl Fn(&DevCounters) -> Option<u64>) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        let n = counter(self.dev.as_ref()?)?;
        (secs > 0.0).then(|| n as f64 / secs)
    }

    fn add_round(&mut self, run: Run) -> Result<()> {
        self.rounds_per_sec
            .push(run.appends as f64 / run.elapsed.as_secs_f64().max(1e-9));
        self.latency_us.add(run.latency_us)?;
        self.appends += run.appends;
        self.elapsed += run.elapsed;
        self.cpu = self.cpu.plus(run.cpu);
        self.dev = Some(match self.dev {
            None => run.dev,
            Some(d) => d.plus(run.dev),
        });
        Ok(())
    }
}

/// One timed run of one contestant.
struct Run {
    appends: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    cpu: Cpu,
    dev: DevCounters,
}

fn run_once(peer: &dyn Peer, spec: &Spec) -> Result<(u64, Duration, Histogram<u64>)> {
    let deadline = Instant::now() + spec.duration;
    let started = Instant::now();
    let per_thread: Vec<Result<(u64, Histogram<u64>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..spec.writers)
            .map(|t| {
                s.spawn(move || -> Result<(u64, Histogram<u64>)> {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(t as u64);
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                    // ASCII, so the trait peer can carry it as a string of the same size;
                    // random letters, so a peer that compresses large batches (raft-engine
                    // LZ4-compresses batches of 8 KiB and more) writes what the others write.
                    let payload: Vec<u8> = (0..spec.payload_bytes)
                        .map(|_| b'a' + rng.random_range(0..26u8))
                        .collect();
                    let batch: Vec<&[u8]> = vec![payload.as_slice(); spec.batch.max(1)];
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let exec = rng.random_range(0..spec.executions);
                        let t0 = Instant::now();
                        if batch.len() == 1 {
                            peer.append(exec, &payload)?;
                        } else {
                            peer.append_batch(exec, &batch)?;
                        }
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
    let mut total = 0;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for r in per_thread {
        let (n, h) = r?;
        total += n;
        hist.add(h)?;
    }
    Ok((total, elapsed, hist))
}

static PEER_FILTER: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Restricts later runs to peers whose name contains one of `names` (empty: all).
pub fn set_peer_filter(names: Vec<String>) {
    let _ = PEER_FILTER.set(names);
}

/// Who takes part in a workload.
enum Contestant {
    /// The durable-bandwidth floor: not a peer, a loop of its own (1 writer, 1 MiB writes).
    BandwidthFloor,
    /// The same loop writing new data at the end of a file (`peers::appending_floor`).
    AppendingFloor,
    Peer(PeerKind),
}

impl Contestant {
    fn name(&self) -> &'static str {
        match self {
            Contestant::BandwidthFloor => peers::BANDWIDTH_FLOOR,
            Contestant::AppendingFloor => peers::APPENDING_FLOOR,
            Contestant::Peer(k) => k.name,
        }
    }

    /// Opens a fresh instance in `dir`, runs it for the spec's duration, measures.
    fn run(&self, dir: &Path, spec: &Spec, device: &Device) -> Result<Run> {
        let peer = match self {
            Contestant::BandwidthFloor | Contestant::AppendingFloor => None,
            Contestant::Peer(k) => Some((k.open)(dir)?),
        };
        let cpu0 = Cpu::now()?;
        let dev0 = device.sample();
        let (appends, elapsed, latency_us) = match (self, &peer) {
            (_, Some(p)) => run_once(p.as_ref(), spec)?,
            (Contestant::AppendingFloor, None) => peers::appending_floor(dir, spec.duration)?,
            (_, None) => peers::bandwidth_floor(dir, spec.duration)?,
        };
        let dev = device.sample().since(dev0);
        let cpu = Cpu::now()?.since(cpu0);
        drop(peer);
        Ok(Run {
            appends,
            elapsed,
            latency_us,
            cpu,
            dev,
        })
    }
}

/// Runs every peer `rounds` times on `spec`, alternating the order each round (the
/// bandwidth floor, where the spec asks for it, takes part whatever the peer filter says).
/// `device` is the block device under `base`, whose counters bracket every run.
pub fn run_alternating(
    base: &Path,
    spec: &Spec,
    rounds: usize,
    device: &Device,
) -> Result<Vec<Row>> {
    let filter = PEER_FILTER.get().cloned().unwrap_or_default();
    let mut contestants: Vec<Contestant> = Vec::new();
    if spec.bandwidth_floor {
        contestants.push(Contestant::BandwidthFloor);
        contestants.push(Contestant::AppendingFloor);
    }
    contestants.extend(
        peers::all()
            .into_iter()
            .filter(|k| filter.is_empty() || filter.iter().any(|f| k.name.contains(f.as_str())))
            .map(Contestant::Peer),
    );
    let mut rows: Vec<Row> = contestants
        .iter()
        .map(|c| Row::new(spec, c.name()))
        .collect::<Result<_>>()?;
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..contestants.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let dir = tempfile::tempdir_in(base)?;
            let run = contestants[i].run(dir.path(), spec, device)?;
            let per_sec = run.appends as f64 / run.elapsed.as_secs_f64().max(1e-9);
            let mb_s = per_sec * (rows[i].batch * rows[i].payload_bytes) as f64 / 1e6;
            eprintln!(
                "{} round {round} {:<40} writers {:>3}: {per_sec:>9.0} appends/s {mb_s:>8.1} MB/s p50 {:>6} µs p99 {:>6} µs",
                spec.name,
                contestants[i].name(),
                rows[i].writers,
                run.latency_us.value_at_quantile(0.5),
                run.latency_us.value_at_quantile(0.99)
            );
            rows[i].add_round(run)?;
        }
    }
    Ok(rows)
}
