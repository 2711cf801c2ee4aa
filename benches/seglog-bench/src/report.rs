//! The results as a markdown table, ready for docs/benchmarks.md.

use crate::workload::Row;
use std::fmt::Write;

/// One line per peer and workload; the ratio column compares with the first peer (the floor).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| writers | payload | peer | appends/s (median of rounds) | vs floor | p50 µs | p99 µs | p99.9 µs |"
    );
    let _ = writeln!(out, "|---:|---:|---|---:|---:|---:|---:|---:|");
    for group in rows.chunk_by(|a, b| a.writers == b.writers) {
        let floor = group.first().map_or(1.0, Row::median_per_sec).max(1e-9);
        for r in group {
            let h = &r.latency_us;
            let _ = writeln!(
                out,
                "| {} | {} B | {} | {:.0} | {:.2}× | {} | {} | {} |",
                r.writers,
                r.payload_bytes,
                r.peer,
                r.median_per_sec(),
                r.median_per_sec() / floor,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
            );
        }
    }
    out
}
