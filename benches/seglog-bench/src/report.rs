//! The results as a markdown table, ready for docs/benchmarks.md.

use crate::peers;
use crate::workload::Row;
use std::fmt::Write;

/// The rows of one workload each, in run order.
pub fn workloads(rows: &[Row]) -> impl Iterator<Item = &[Row]> {
    rows.chunk_by(|a, b| a.workload == b.workload)
}

/// A row's throughput over its workload's floor: MB/s over the durable-bandwidth floor's
/// where that ran (W9), else over the per-append floor's (the same as the ratio of appends/s
/// where payloads are equal). `None` without a floor row.
pub fn vs_floor(group: &[Row], r: &Row) -> Option<f64> {
    let floor = group
        .iter()
        .find(|f| f.peer == peers::BANDWIDTH_FLOOR)
        .or_else(|| group.iter().find(|f| f.peer == peers::FLOOR))?;
    let f = floor.mb_per_sec();
    (f > 0.0).then(|| r.mb_per_sec() / f)
}

/// A row's appends/s over raft-engine's in the same workload. `None` without a raft-engine
/// row, or for a row whose appends are not raft-engine's (the bandwidth floor's 1 MiB writes).
pub fn vs_raft_engine(group: &[Row], r: &Row) -> Option<f64> {
    let raft = group.iter().find(|f| f.peer == peers::RAFT_ENGINE)?;
    let same_appends = raft.batch == r.batch && raft.payload_bytes == r.payload_bytes;
    let per_sec = raft.median_per_sec();
    (same_appends && per_sec > 0.0).then(|| r.median_per_sec() / per_sec)
}

fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |x| format!("{x:.2}×"))
}

fn rate(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |x| format!("{x:.0}"))
}

/// A payload size as people write it: 256 B, 4 KiB.
pub fn payload(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// One line per peer and workload. "vs floor": see [`vs_floor`]; "vs raft-engine": see
/// [`vs_raft_engine`]. CPU: the whole process's user + sys time per append (the harness's
/// writer threads included); switches: its voluntary (a thread waits) and involuntary (a
/// thread is preempted) context switches per append. dev: the block device's write
/// requests, flushes and megabytes written per second of run, and jbd2 (ext4 journal)
/// commits per second; "–" where the kernel does not tell. The device is the whole disk's:
/// anything else writing to it counts.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | writers | batch | payload | peer | appends/s (median) | events/s | MB/s | vs floor | vs raft-engine | p50 µs | p99 µs | p99.9 µs | CPU µs/append | user µs | sys µs | switches/append (vol.) | switches/append (invol.) | dev writes/s | dev flushes/s | dev MB/s | jbd2 commits/s |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for group in workloads(rows) {
        for r in group {
            let h = &r.latency_us;
            let per_sec = r.median_per_sec();
            let cpu = r.cpu_us_per_append();
            let cpu_col = |f: fn((f64, f64, f64)) -> f64| {
                cpu.map_or_else(|| "–".to_owned(), |c| format!("{:.1}", f(c)))
            };
            let switches = r.switches_per_append();
            let switch_col = |f: fn((f64, f64)) -> f64| {
                switches.map_or_else(|| "–".to_owned(), |c| format!("{:.2}", f(c)))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.workload,
                r.writers,
                r.batch,
                payload(r.payload_bytes),
                r.peer,
                per_sec,
                per_sec * r.batch as f64,
                r.mb_per_sec(),
                ratio(vs_floor(group, r)),
                ratio(vs_raft_engine(group, r)),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                cpu_col(|c| c.0),
                cpu_col(|c| c.1),
                cpu_col(|c| c.2),
                switch_col(|c| c.0),
                switch_col(|c| c.1),
                rate(r.dev_per_sec(|d| d.write_ios)),
                rate(r.dev_per_sec(|d| d.flush_ios)),
                r.dev_per_sec(|d| d.write_sectors)
                    .map_or_else(|| "–".to_owned(), |s| format!("{:.1}", s * 512.0 / 1e6)),
                rate(r.dev_per_sec(|d| d.jbd2_transactions)),
            );
        }
    }
    out
}
