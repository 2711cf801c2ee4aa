//! Restore of an active segment shipped as many chunks (chunk shipping or
//! `Durability::Remote` makes one chunk per ship round): a log's active segment is shipped
//! as `chunks` rounds of a few events each, then `seglog_tier::restore` into an empty
//! directory is timed, fetching ahead (the default: several chunks in flight) and one
//! object at a time (`FetchAheadLimits::ONE_AT_A_TIME`, how restores fetched before),
//! alternating, `restores` times each. With `--get-latency-ms`, every GET first waits that
//! long (an emulated first-byte latency: loopback has none).

use super::counting::{CountingStore, Counts};
use super::{fresh_prefix, Bucket, Shape};
use anyhow::Result;
use seglog::{Log, Options};
use seglog_tier::{FetchAheadLimits, RestoreOptions};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// One bucket, one way of fetching.
pub struct Row {
    pub bucket: String,
    pub fetch_ahead: bool,
    pub chunks: usize,
    pub active_bytes: u64,
    pub times: Vec<Duration>,
    /// Requests of one restore (the last).
    pub requests: Counts,
}

impl Row {
    fn median(&self) -> Duration {
        super::median(&self.times)
    }
}

/// Builds a log whose active segment is shipped as `shape.chunks` chunks, then restores it
/// both ways, alternating.
pub fn run(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    bucket: &Bucket,
    shape: &Shape,
) -> Result<Vec<Row>> {
    let tmp = tempfile::tempdir_in(base)?;
    let store = CountingStore::with_get_latency(bucket.store.clone(), shape.get_latency);
    let prefix = fresh_prefix(&format!("chunk-restore-{}", shape.chunks));
    let log = Log::open_blocking(tmp.path().join("source"), Options::default())?;
    let payload = vec![b'x'; shape.payload_bytes];
    rt.block_on(async {
        let tier = seglog_tier::Tier::claim(store.clone(), prefix.clone())
            .await?
            .with_active_chunks();
        for round in 0..shape.chunks as u64 {
            for e in 0..4u64 {
                let exec = format!("exec-{:06}", (round * 4 + e) % shape.executions);
                log.append(&exec, "tenant", &payload).await?;
            }
            tier.ship(&log).await?;
        }
        anyhow::Ok(())
    })?;
    log.close()?;
    drop(log);
    let mut rows: Vec<Row> = [true, false]
        .into_iter()
        .map(|fetch_ahead| Row {
            bucket: bucket.name.clone(),
            fetch_ahead,
            chunks: shape.chunks,
            active_bytes: 0,
            times: Vec::new(),
            requests: Counts::default(),
        })
        .collect();
    for i in 0..shape.restores.max(1) {
        // Alternate which way goes first.
        let order: [usize; 2] = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for r in order {
            let row = &mut rows[r];
            let limits = if row.fetch_ahead {
                FetchAheadLimits::default()
            } else {
                FetchAheadLimits::ONE_AT_A_TIME
            };
            let dir = tmp.path().join(format!("restored-{i}-{r}"));
            let before = store.counts();
            let (took, report) = rt.block_on(async {
                let started = Instant::now();
                let restored = seglog_tier::restore_with(
                    store.clone(),
                    prefix.clone(),
                    &dir,
                    Options::default(),
                    RestoreOptions::default().fetch_ahead(limits),
                )
                .await?;
                let took = started.elapsed();
                restored.log.close_async().await?;
                anyhow::Ok((took, restored.report))
            })?;
            row.requests = store.counts().since(before);
            row.active_bytes = report.active_bytes;
            row.times.push(took);
            eprintln!(
                "restore of {} chunks from {}, {}: {:.1} ms",
                shape.chunks,
                bucket.name,
                if row.fetch_ahead {
                    "fetching ahead"
                } else {
                    "one at a time"
                },
                took.as_secs_f64() * 1e3
            );
            std::fs::remove_dir_all(&dir)?;
        }
    }
    Ok(rows)
}

/// The chunk-restore table.
pub fn markdown(rows: &[Row], shape: &Shape) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| bucket | emulated GET latency | chunks | active segment | fetching | GETs per restore | restore, median of {} | ÷ one at a time | every restore |",
        shape.restores
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---:|---:|---:|---|");
    for r in rows {
        let one_at_a_time = rows
            .iter()
            .find(|o| o.bucket == r.bucket && !o.fetch_ahead)
            .map(Row::median)
            .unwrap_or_default();
        let every: Vec<String> = r
            .times
            .iter()
            .map(|t| format!("{:.0}", t.as_secs_f64() * 1e3))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} ms | {} | {:.1} KiB | {} | {} | {:.0} ms | {:.2} | {} ms |",
            r.bucket,
            shape.get_latency.as_millis(),
            r.chunks,
            r.active_bytes as f64 / 1024.0,
            if r.fetch_ahead {
                "ahead (16 objects, 256 MiB)"
            } else {
                "one at a time"
            },
            r.requests.get_class(),
            r.median().as_secs_f64() * 1e3,
            r.median().as_secs_f64() / one_at_a_time.as_secs_f64().max(1e-9),
            every.join(", ")
        );
    }
    out
}
