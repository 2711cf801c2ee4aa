//! The results as a markdown table, ready for docs/benchmarks.md.

use crate::workload::Row;
use std::fmt::Write;

/// One line per peer and workload; the ratio compares with the first peer (the floor).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | writers | batch | payload | peer | appends/s (median) | events/s | MB/s | vs floor | p50 µs | p99 µs | p99.9 µs |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for group in rows.chunk_by(|a, b| a.workload == b.workload) {
        let floor = group.first().map_or(1.0, Row::median_per_sec).max(1e-9);
        for r in group {
            let h = &r.latency_us;
            let per_sec = r.median_per_sec();
            let events = per_sec * r.batch as f64;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} B | {} | {:.0} | {:.0} | {:.1} | {:.2}× | {} | {} | {} |",
                r.workload,
                r.writers,
                r.batch,
                r.payload_bytes,
                r.peer,
                per_sec,
                events,
                events * r.payload_bytes as f64 / 1e6,
                per_sec / floor,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
            );
        }
    }
    out
}
