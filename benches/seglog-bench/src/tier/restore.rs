//! Open from the bucket: a log of N events (~`payload_bytes` each, buffered appends, one
//! sync, rolled so that every record is in a sealed segment) is shipped in one round; then
//! `seglog_tier::restore` into an empty directory is timed, `restores` times (each claims
//! the log again, so each downloads the same objects). The clock covers the whole restore:
//! the claim (LIST and GET of the manifest, PUT of the next), the downloads and their
//! checks, each file's fdatasync, the engine's open (checkpoints applied) and roll.

use super::counting::{CountingStore, Counts};
use super::{fresh_prefix, Bucket, Shape};
use anyhow::Result;
use seglog::{Log, Options};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// One log size on one bucket, restored one way.
pub struct Row {
    pub bucket: String,
    /// Restored lazily (`FetchSegments::Lazily`) rather than whole.
    pub lazy: bool,
    pub events: u64,
    /// Time to build and ship the log (not the figure; for scale).
    pub ship: Duration,
    pub times: Vec<Duration>,
    pub segments: usize,
    pub checkpoints: usize,
    pub bytes: u64,
    /// Requests of one restore (the last).
    pub requests: Counts,
}

impl Row {
    pub fn median(&self) -> Duration {
        super::median(&self.times)
    }
}

/// Builds, ships and restores a log of `events` events on `bucket`, whole then lazily.
pub fn run(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    bucket: &Bucket,
    events: u64,
    shape: &Shape,
) -> Result<Vec<Row>> {
    let tmp = tempfile::tempdir_in(base)?;
    let store = CountingStore::with_get_latency(bucket.store.clone(), shape.get_latency);
    let prefix = fresh_prefix(&format!("restore-{events}"));
    // Build: batches of 10 to the executions in turn, buffered, one sync, rolled.
    let log = Log::open_blocking(tmp.path().join("source"), Options::default())?;
    let payload = vec![b'x'; shape.payload_bytes];
    let batch = 10u64;
    for b in 0..events.div_ceil(batch) {
        let n = batch.min(events - b * batch) as usize;
        let exec = format!("exec-{:06}", b % shape.executions);
        log.append_batch_buffered(&exec, "tenant", &vec![payload.as_slice(); n])?;
    }
    log.sync_blocking()?;
    let shipped = Instant::now();
    rt.block_on(async {
        log.roll().await?;
        let tier = seglog_tier::Tier::claim(store.clone(), prefix.clone()).await?;
        tier.ship(&log).await?;
        anyhow::Ok(())
    })?;
    let ship = shipped.elapsed();
    log.close()?;
    drop(log);
    let mut rows = Vec::new();
    for lazy in [false, true] {
        let mut row = Row {
            bucket: bucket.name.clone(),
            lazy,
            events,
            ship,
            times: Vec::new(),
            segments: 0,
            checkpoints: 0,
            bytes: 0,
            requests: Counts::default(),
        };
        for i in 0..shape.restores.max(1) {
            let dir = tmp.path().join(format!("restored-{i}"));
            let before = store.counts();
            let (took, report) = rt.block_on(async {
                let started = Instant::now();
                let fetch = if lazy {
                    seglog_tier::FetchSegments::Lazily
                } else {
                    seglog_tier::FetchSegments::Whole
                };
                let restored = seglog_tier::restore_with(
                    store.clone(),
                    prefix.clone(),
                    &dir,
                    Options::default(),
                    seglog_tier::RestoreOptions::default().fetch_segments(fetch),
                )
                .await?;
                let took = started.elapsed();
                restored.log.close_async().await?;
                anyhow::Ok((took, restored.report))
            })?;
            row.requests = store.counts().since(before);
            eprintln!(
            "restore {} events from {}{}: {:.1} ms, {} bytes, {} segments ({} left in the bucket)",
            events,
            bucket.name,
            if lazy { ", lazily" } else { "" },
            took.as_secs_f64() * 1e3,
            report.bytes,
            report.segments,
            report.segments_offloaded
        );
            row.times.push(took);
            row.segments = report.segments;
            row.checkpoints = report.checkpoints;
            row.bytes = report.bytes;
            std::fs::remove_dir_all(&dir)?;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The restore table.
pub fn markdown(rows: &[Row], shape: &Shape) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| bucket | restore | events (~{} B) | downloaded | segments + checkpoints | requests per restore (GET / LIST pages / PUT) | restore, median of {} | MB/s | every restore | build + ship (once) |",
        shape.payload_bytes, shape.restores
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|---:|");
    for r in rows {
        let median = r.median();
        let every: Vec<String> = r
            .times
            .iter()
            .map(|t| format!("{:.0}", t.as_secs_f64() * 1e3))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} MiB | {} + {} | {} / {} / {} | {:.0} ms | {:.0} | {} ms | {:.2} s |",
            r.bucket,
            if r.lazy { "lazy" } else { "whole" },
            r.events,
            r.bytes as f64 / 1048576.0,
            r.segments,
            r.checkpoints,
            r.requests.get_class(),
            r.requests.list_pages,
            r.requests.puts,
            median.as_secs_f64() * 1e3,
            r.bytes as f64 / 1e6 / median.as_secs_f64().max(1e-9),
            every.join(", "),
            r.ship.as_secs_f64()
        );
    }
    out
}
