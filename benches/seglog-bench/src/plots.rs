//! SVG figures of an append run, written next to the markdown table: throughput (grouped
//! bars per workload and peer: appends/s, or MB/s for the bandwidth workloads W5 and W9) and
//! latency (for each workload, p50/p90/p99/p99.9 per peer, log scale). SVG only, laid out with
//! plotters' built-in text estimate: no system fonts needed to draw them.

use crate::peers;
use crate::report;
use crate::workload::Row;
use anyhow::Result;
use plotters::coord::combinators::{BindKeyPoints, IntoLogRange, WithKeyPoints};
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const WIDTH: u32 = 1200;
const LEGEND_WIDTH: u32 = 420;
const PANEL_HEIGHT: u32 = 420;
/// Width of one group on the x axis (integer coordinates: plotters formats them with custom
/// key points, which it does not for floats).
const GROUP: i32 = 1000;
const PERCENTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

/// Writes `throughput.svg` and one `latency-<workload>.svg` per workload into `dir`
/// (created if missing); returns the paths written.
pub fn write(dir: &Path, rows: &[Row]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let peers = peer_order(rows);
    let mut written = Vec::new();
    if rows.is_empty() {
        return Ok(written);
    }
    let path = dir.join("throughput.svg");
    throughput(&path, rows, &peers)?;
    written.push(path);
    for group in report::workloads(rows) {
        let Some(first) = group.first() else { continue };
        let path = dir.join(format!("latency-{}.svg", file_stem(&first.workload)));
        latency(&path, group, &peers)?;
        written.push(path);
    }
    Ok(written)
}

/// The row that describes a workload's appends: any but the bandwidth floor's (1 writer,
/// 1 MiB writes), unless that is all there is.
fn workload_row(group: &[Row]) -> Option<&Row> {
    group
        .iter()
        .find(|r| r.peer != peers::BANDWIDTH_FLOOR && r.peer != peers::APPENDING_FLOOR)
        .or(group.first())
}

/// Every peer once, in order of first appearance: its index picks its colour in every figure.
fn peer_order(rows: &[Row]) -> Vec<&'static str> {
    let mut peers: Vec<&'static str> = Vec::new();
    for r in rows {
        if !peers.contains(&r.peer) {
            peers.push(r.peer);
        }
    }
    peers
}

fn colour(peers: &[&str], peer: &str) -> RGBColor {
    // Okabe–Ito, distinguishable for colour-blind readers, then a few more.
    const COLOURS: [RGBColor; 9] = [
        RGBColor(0, 0, 0),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 158, 115),
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(204, 121, 167),
        RGBColor(240, 228, 66),
        RGBColor(128, 128, 128),
    ];
    let i = peers.iter().position(|p| *p == peer).unwrap_or(0);
    COLOURS[i % COLOURS.len()]
}

fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A legend (swatch + name per peer) down the right-hand strip.
/// `shown` are the peers of this figure; `peers`, of the whole run, fix the colours.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    shown: &[&str],
    peers: &[&str],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    for (i, p) in shown.iter().enumerate() {
        let y = 60 + 30 * i as i32;
        area.draw(&Rectangle::new(
            [(10, y), (30, y + 18)],
            colour(peers, p).filled(),
        ))
        .map_err(plot_err)?;
        area.draw(&Text::new(
            (*p).to_owned(),
            (38, y + 1),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

fn plot_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e}")
}

/// An x axis of `n` groups, labelled at their centres.
fn group_axis(n: usize) -> WithKeyPoints<RangedCoordi32> {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX / GROUP);
    (0..n * GROUP).with_key_points((0..n).map(|i| i * GROUP + GROUP / 2).collect())
}

/// x extent of bar `b` of `bars` in group `g`: the bars share the middle 80% of the group.
fn bar_span(g: usize, b: usize, bars: usize) -> (i32, i32) {
    let width = GROUP * 8 / 10 / i32::try_from(bars.max(1)).unwrap_or(1);
    let g = i32::try_from(g).unwrap_or(0);
    let b = i32::try_from(b).unwrap_or(0);
    let x0 = g * GROUP + GROUP / 10 + b * width;
    (x0, x0 + width * 9 / 10)
}

/// One panel of grouped bars: `groups` along x (a label and its (peer, value) bars), the value
/// on a linear y axis from 0.
fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    groups: &[(String, Vec<(&'static str, f64)>)],
    peers: &[&str],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let n = groups.len().max(1);
    let top = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.1))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.12;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(100)
        .build_cartesian_2d(group_axis(n), 0.0..top)
        .map_err(plot_err)?;
    let label_of = |x: &i32| {
        let i = usize::try_from(x / GROUP).unwrap_or(0);
        groups.get(i).map(|g| g.0.clone()).unwrap_or_default()
    };
    let y_fmt = |y: &f64| {
        if *y >= 10_000.0 {
            format!("{:.0}k", y / 1000.0)
        } else {
            format!("{y:.0}")
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&label_of)
        .y_label_formatter(&y_fmt)
        .x_label_style(("sans-serif", 20))
        .y_label_style(("sans-serif", 18))
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 20))
        .draw()
        .map_err(plot_err)?;
    for (g, (_, bars)) in groups.iter().enumerate() {
        for (b, (peer, value)) in bars.iter().enumerate() {
            let (x0, x1) = bar_span(g, b, bars.len());
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, *value)],
                    colour(peers, peer).filled(),
                )))
                .map_err(plot_err)?;
        }
    }
    Ok(())
}

/// Grouped bars of throughput: appends/s for the small-record workloads, MB/s for the
/// bandwidth ones (W5, W9), each kind in a panel of its own.
fn throughput(path: &Path, rows: &[Row], peers: &[&str]) -> Result<()> {
    let mut per_sec = Vec::new();
    let mut mb_s = Vec::new();
    for group in report::workloads(rows) {
        let Some(first) = workload_row(group) else {
            continue;
        };
        let label = format!(
            "{} ({} writer{}{})",
            first.workload,
            first.writers,
            if first.writers == 1 { "" } else { "s" },
            if first.batch > 1 {
                format!(", batch {}", first.batch)
            } else {
                String::new()
            }
        );
        if first.is_bandwidth() {
            let bars = group.iter().map(|r| (r.peer, r.mb_per_sec())).collect();
            mb_s.push((label, bars));
        } else {
            let bars = group.iter().map(|r| (r.peer, r.median_per_sec())).collect();
            per_sec.push((label, bars));
        }
    }
    let panels = usize::from(!per_sec.is_empty()) + usize::from(!mb_s.is_empty());
    let height = 50 + PANEL_HEIGHT * panels.max(1) as u32;
    let root = SVGBackend::new(path, (WIDTH + LEGEND_WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let root = root
        .titled(
            "Durable append throughput (median of rounds)",
            ("sans-serif", 30),
        )
        .map_err(plot_err)?;
    let (plot, key) = root.split_horizontally(WIDTH);
    legend(&key, peers, peers)?;
    let areas = plot.split_evenly((panels.max(1), 1));
    let mut areas = areas.iter();
    if !per_sec.is_empty() {
        if let Some(area) = areas.next() {
            bar_panel(
                area,
                "appends/s per workload (writers), every append durable",
                "appends/s",
                &per_sec,
                peers,
            )?;
        }
    }
    if !mb_s.is_empty() {
        if let Some(area) = areas.next() {
            bar_panel(
                area,
                "payload MB/s made durable per workload (writers): large records",
                "MB/s",
                &mb_s,
                peers,
            )?;
        }
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// One workload's latency percentiles, grouped by percentile, a bar per peer, log-scale µs.
fn latency(path: &Path, group: &[Row], peers: &[&str]) -> Result<()> {
    let Some(first) = workload_row(group) else {
        return Ok(());
    };
    let values: Vec<(&'static str, Vec<f64>)> = group
        .iter()
        .map(|r| {
            let v = PERCENTILES
                .iter()
                .map(|(_, q)| r.latency_us.value_at_quantile(*q).max(1) as f64)
                .collect();
            (r.peer, v)
        })
        .collect();
    let all = values.iter().flat_map(|(_, v)| v.iter().copied());
    let hi = all.clone().fold(1.0f64, f64::max);
    let lo = all.fold(f64::INFINITY, f64::min).min(hi);
    let bottom = 10f64.powf((lo / 2.0).max(1.0).log10().floor());
    let top = 10f64.powf((hi * 2.0).log10().ceil());

    let root =
        SVGBackend::new(path, (WIDTH + LEGEND_WIDTH, PANEL_HEIGHT + 120)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let title = format!(
        "{}: append latency, {} writer{}, batch {}, {} payload",
        first.workload,
        first.writers,
        if first.writers == 1 { "" } else { "s" },
        first.batch,
        report::payload(first.payload_bytes)
    );
    let (plot, key) = root.split_horizontally(WIDTH);
    let shown: Vec<&str> = group.iter().map(|r| r.peer).collect();
    legend(&key, &shown, peers)?;
    let n = PERCENTILES.len();
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 26))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(100)
        .build_cartesian_2d(group_axis(n), (bottom..top).log_scale())
        .map_err(plot_err)?;
    let label_of = |x: &i32| {
        let i = usize::try_from(x / GROUP).unwrap_or(0);
        PERCENTILES
            .get(i)
            .map(|p| p.0.to_owned())
            .unwrap_or_default()
    };
    let y_fmt = |y: &f64| format!("{y:.0}");
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&label_of)
        .y_label_formatter(&y_fmt)
        .x_label_style(("sans-serif", 20))
        .y_label_style(("sans-serif", 18))
        .x_desc("percentile")
        .y_desc("latency, µs (log scale)")
        .axis_desc_style(("sans-serif", 20))
        .draw()
        .map_err(plot_err)?;
    for (b, (peer, v)) in values.iter().enumerate() {
        let bars = v.iter().enumerate().map(|(p, value)| {
            let (x0, x1) = bar_span(p, b, values.len());
            Rectangle::new([(x0, bottom), (x1, *value)], colour(peers, peer).filled())
        });
        chart.draw_series(bars).map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Spec;
    use std::time::Duration;

    fn row(spec: &Spec, peer: &'static str, per_sec: f64, latency_us: u64) -> Row {
        let mut r = Row::new(spec, peer).unwrap();
        r.rounds_per_sec.push(per_sec);
        for i in 0..100 {
            r.latency_us.record(latency_us + i * 10).unwrap();
        }
        r
    }

    #[test]
    fn renders_svgs_from_rows() {
        let small = Spec {
            name: "W2".into(),
            writers: 16,
            batch: 1,
            duration: Duration::from_millis(1),
            payload_bytes: 256,
            executions: 10,
            bandwidth_floor: false,
        };
        let large = Spec {
            name: "W9".into(),
            writers: 16,
            payload_bytes: 256 << 10,
            ..small.clone()
        };
        let rows = vec![
            row(&small, "floor (write+fdatasync)", 7000.0, 2200),
            row(&small, "seglog (Log)", 29000.0, 500),
            row(&large, "seglog (Log)", 1500.0, 9000),
            row(&large, "raft-engine", 1200.0, 12000),
        ];
        let dir = tempfile::tempdir().unwrap();
        let written = write(&dir.path().join("plots"), &rows).unwrap();
        assert_eq!(written.len(), 3, "{written:?}");
        for path in &written {
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(svg.contains("<svg"), "{}", path.display());
            assert!(svg.contains("seglog (Log)"), "{}", path.display());
        }
        let throughput = std::fs::read_to_string(dir.path().join("plots/throughput.svg")).unwrap();
        assert!(throughput.contains("raft-engine"));
        assert!(throughput.contains("MB/s"));
        assert!(dir.path().join("plots/latency-W9.svg").exists());
    }
}
