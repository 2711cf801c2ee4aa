//! Closed-loop writers: each thread appends, waits for durability, appends again, timing
//! every append into an HDR histogram.

use crate::peers::{self, Peer};
use anyhow::Result;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::{Duration, Instant};

/// One workload.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Name in reports (W1, W2 …).
    pub name: &'static str,
    pub writers: usize,
    /// Events per append (1 = single appends).
    pub batch: usize,
    pub duration: Duration,
    pub payload_bytes: usize,
    pub executions: u64,
}

/// One peer's result on one workload, over all rounds.
pub struct Row {
    pub workload: &'static str,
    pub peer: &'static str,
    pub writers: usize,
    pub batch: usize,
    pub payload_bytes: usize,
    /// Appends (calls) per second of each round.
    pub rounds_per_sec: Vec<f64>,
    /// Latencies of every append of every round, microseconds.
    pub latency_us: Histogram<u64>,
}

impl Row {
    /// Median over rounds of appends per second.
    pub fn median_per_sec(&self) -> f64 {
        let mut v = self.rounds_per_sec.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
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
                    // ASCII, so the trait peer can carry it as a string of the same size.
                    let payload: Vec<u8> = (0..spec.payload_bytes)
                        .map(|i| b'a' + ((i * 7 + t) % 26) as u8)
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

/// Runs every peer `rounds` times on `spec`, alternating the order each round.
pub fn run_alternating(base: &Path, spec: &Spec, rounds: usize) -> Result<Vec<Row>> {
    let filter = PEER_FILTER.get().cloned().unwrap_or_default();
    let kinds: Vec<_> = peers::all()
        .into_iter()
        .filter(|k| filter.is_empty() || filter.iter().any(|f| k.name.contains(f.as_str())))
        .collect();
    let mut rows: Vec<Row> = kinds
        .iter()
        .map(|k| -> Result<Row> {
            Ok(Row {
                workload: spec.name,
                peer: k.name,
                writers: spec.writers,
                batch: spec.batch.max(1),
                payload_bytes: spec.payload_bytes,
                rounds_per_sec: Vec::new(),
                latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            })
        })
        .collect::<Result<_>>()?;
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..kinds.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let dir = tempfile::tempdir_in(base)?;
            let peer = (kinds[i].open)(dir.path())?;
            let (n, elapsed, hist) = run_once(peer.as_ref(), spec)?;
            drop(peer);
            let per_sec = n as f64 / elapsed.as_secs_f64();
            eprintln!(
                "{} round {round} {:<30} writers {:>3}: {per_sec:>9.0} appends/s p50 {:>6} µs p99 {:>6} µs",
                spec.name,
                kinds[i].name,
                spec.writers,
                hist.value_at_quantile(0.5),
                hist.value_at_quantile(0.99)
            );
            rows[i].rounds_per_sec.push(per_sec);
            rows[i].latency_us.add(hist)?;
        }
    }
    Ok(rows)
}
