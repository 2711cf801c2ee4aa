//! W10: bulk import. One writer loads `events` events in batches of `batch`, spread over
//! `executions` executions in turn, without waiting for durability per batch, then makes
//! everything durable with one call: seglog's buffered appends and `Log::sync`, raft-engine's
//! `write(batch, sync = false)` with the last batch written `sync = true`. The clock stops when
//! that last call returns (everything is on stable storage). For scale, seglog's durable
//! appends (one fsync per batch, shared by nobody) load a tenth of the events.

use crate::peers::raft_engine_peer::{entry, open_engine, BenchEntries};
use anyhow::Result;
use raft_engine::LogBatch;
use seglog::{Log, Options};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The import's shape.
pub struct Shape {
    pub events: u64,
    pub batch: u64,
    pub executions: u64,
    pub payload_bytes: usize,
}

impl Shape {
    /// `(execution, events in this batch)` for every batch, in order.
    fn batches(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let batches = self.events.div_ceil(self.batch);
        (0..batches).map(move |b| {
            let n = self.batch.min(self.events - b * self.batch);
            (b % self.executions, n)
        })
    }
}

fn payload(shape: &Shape) -> Vec<u8> {
    vec![b'x'; shape.payload_bytes]
}

/// seglog, buffered appends then one `sync`.
fn seglog_buffered(dir: &Path, shape: &Shape) -> Result<Duration> {
    let log = Log::open_blocking(dir, Options::default())?;
    let payload = payload(shape);
    let started = Instant::now();
    for (exec, n) in shape.batches() {
        let payloads = vec![payload.as_slice(); n as usize];
        log.append_batch_buffered(&format!("exec-{exec:06}"), "tenant", &payloads)?;
    }
    log.sync_blocking()?;
    let took = started.elapsed();
    log.close()?;
    Ok(took)
}

/// seglog, a durable append (and fsync) per batch.
fn seglog_durable(dir: &Path, shape: &Shape) -> Result<Duration> {
    let log = Log::open_blocking(dir, Options::default())?;
    let payload = payload(shape);
    let started = Instant::now();
    for (exec, n) in shape.batches() {
        let payloads = vec![payload.as_slice(); n as usize];
        log.append_batch_blocking(&format!("exec-{exec:06}"), "tenant", &payloads)?;
    }
    let took = started.elapsed();
    log.close()?;
    Ok(took)
}

/// raft-engine, `write(sync = false)` per batch, the last one `sync = true`.
fn raft_engine(dir: &Path, shape: &Shape) -> Result<Duration> {
    std::fs::create_dir_all(dir)?;
    let engine = open_engine(dir)?;
    let payload = payload(shape);
    let mut next = std::collections::HashMap::<u64, u64>::new();
    let batches = shape.events.div_ceil(shape.batch);
    let started = Instant::now();
    for (i, (exec, n)) in shape.batches().enumerate() {
        let group = exec + 1;
        let index = next.entry(group).or_insert(1);
        let entries: Vec<_> = (0..n).map(|k| entry(*index + k, &payload)).collect();
        *index += n;
        let mut batch = LogBatch::default();
        batch.add_entries::<BenchEntries>(group, &entries)?;
        engine.write(&mut batch, i as u64 + 1 == batches)?;
    }
    Ok(started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs W10 `runs` times per peer (alternating) and returns a Markdown table.
pub fn run(base: &Path, shape: &Shape, runs: usize) -> Result<String> {
    let durable_shape = Shape {
        events: (shape.events / 10).max(shape.batch),
        batch: shape.batch,
        executions: shape.executions,
        payload_bytes: shape.payload_bytes,
    };
    let (mut buffered, mut raft, mut durable) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let tmp = tempfile::tempdir_in(base)?;
        buffered.push(seglog_buffered(&tmp.path().join("seglog"), shape)?);
        raft.push(raft_engine(&tmp.path().join("raft"), shape)?);
        durable.push(seglog_durable(
            &tmp.path().join("seglog-durable"),
            &durable_shape,
        )?);
    }
    let (buffered, raft, durable) = (median(buffered), median(raft), median(durable));
    let rate = |events: u64, d: Duration| events as f64 / d.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| W10 bulk import: {} events × {} B, batches of {}, {} executions (median of {runs}) | time | events/s | ÷ raft-engine |",
        shape.events, shape.payload_bytes, shape.batch, shape.executions
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| seglog `append_batch_buffered` + one `sync` | {:.2} s | {:.0} | {:.2} |",
        buffered.as_secs_f64(),
        rate(shape.events, buffered),
        buffered.as_secs_f64() / raft.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| raft-engine `write(sync = false)`, last `sync = true` | {:.2} s | {:.0} | 1.00 |",
        raft.as_secs_f64(),
        rate(shape.events, raft)
    );
    let _ = writeln!(
        out,
        "| seglog durable `append_batch_blocking` ({} events: an fsync per batch) | {:.2} s | {:.0} | |",
        durable_shape.events,
        durable.as_secs_f64(),
        rate(durable_shape.events, durable)
    );
    Ok(out)
}
