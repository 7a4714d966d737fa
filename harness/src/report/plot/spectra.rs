//! Latency percentile spectra: one line per transport, x in "nines"
//! (90 %, 99 %, 99.9 %…), y in ms on a log scale; also used for reconnect
//! and chat latencies.

use crate::report::about::scenario_name;

use crate::report::plot::style::Curve;
use crate::report::plot::style::{
    DrawError, FOOTER_H, SIZE, draw_footer, draw_no_data, entry_colour, legend_label, log_ticks,
    tick_ms,
};
use crate::results::{self, RunFile};
use anyhow::anyhow;
use plotters::coord::combinators::{BindKeyPoints as _, IntoLogRange as _};
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use std::path::Path;

/// The smallest number of nines the x axis shows (up to p99.99).
pub(crate) const MIN_NINES: f64 = 4.0;

/// The largest: beyond p99.9999 even a million-sample run says nothing.
pub(crate) const MAX_NINES: f64 = 6.0;

/// Latencies are drawn no lower than 1 µs, so a 0 µs sample cannot break the log axis.
pub(crate) const FLOOR_MS: f64 = 0.001;

/// Position of quantile `q` on the "nines" axis: `log10(1 / (1 − q))`.
/// 0 → 0, 0.9 → 1, 0.99 → 2, 0.999 → 3; 1 → +∞ (callers cap it).
pub fn nines(q: f64) -> f64 {
    -(1.0 - q.clamp(0.0, 1.0)).log10()
}

/// Label of a whole number of nines: 0 → `0%`, 1 → `90%`, 2 → `99%`, 3 → `99.9%`…
pub fn nines_label(x: f64) -> String {
    let k = x.round().max(0.0) as usize;
    match k {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        _ => format!("99.{}%", "9".repeat(k - 2)),
    }
}

/// The percentile spectrum of a latency histogram (µs) as (nines, ms) points.
///
/// With `n` samples the largest quantile the data can resolve is `1 − 1/n`, so
/// the curve stops there (at `log10(n)` nines, or `max_nines` if smaller) at the
/// histogram's maximum, instead of pretending the max sits at p99.9999.
pub fn spectrum_points(h: &hdrhistogram::Histogram<u64>, max_nines: f64) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let cap = (h.len() as f64).log10().min(max_nines);
    let max_ms = (h.max() as f64 / 1000.0).max(FLOOR_MS);
    let mut points = Vec::new();
    for step in h.iter_quantiles(8) {
        let x = nines(step.quantile_iterated_to());
        if x >= cap {
            break;
        }
        let y = (step.value_iterated_to() as f64 / 1000.0).max(FLOOR_MS);
        points.push((x, y.min(max_ms)));
    }
    points.push((cap, max_ms));
    points
}

/// Renders the latency percentile spectrum of every transport of `run` as SVG.
///
/// A transport whose histogram is empty or unreadable is left out and named
/// in a note under the chart; a transport that did not verify is drawn
/// dashed and labelled invalid. With no data at all the SVG still renders,
/// with a "no data" caption.
pub fn latency_spectrum_svg(run: &RunFile) -> anyhow::Result<String> {
    spectrum_svg(
        run,
        |r| &r.histograms.latency_us,
        "Latency percentile spectrum",
        "latency (ms)",
        "no data: no transport recorded latency samples",
    )
}

/// The spectrum of the time from losing a connection to the first event
/// after it, per transport (runs with faults; "no data" otherwise).
pub fn reconnect_spectrum_svg(run: &RunFile) -> anyhow::Result<String> {
    spectrum_svg(
        run,
        |r| &r.recovery.reconnect_us,
        "Reconnect-time spectrum",
        "disconnect → first event (ms)",
        "no data: no client lost a connection and resumed",
    )
}

/// The spectrum of chat round trips (a sender's message from its due time
/// back to its own subscription), per transport (chat runs; "no data"
/// otherwise).
pub fn chat_spectrum_svg(run: &RunFile) -> anyhow::Result<String> {
    /// What a transport without a chat block offers: no samples.
    static NONE: String = String::new();
    spectrum_svg(
        run,
        |r| r.chat.as_ref().map_or(&NONE, |c| &c.round_trip_us),
        "Chat round-trip spectrum",
        "due → back at the sender (ms)",
        "no data: no sender got a message back",
    )
}

/// A percentile spectrum of the histogram `pick` selects, per transport.
pub(crate) fn spectrum_svg(
    run: &RunFile,
    pick: fn(&results::TransportResult) -> &String,
    name: &str,
    y_desc: &str,
    no_data: &str,
) -> anyhow::Result<String> {
    let mut curves = Vec::new();
    let mut left_out = Vec::new();
    let mut max_count = 0u64;
    let mut histograms = Vec::new();
    for (label, r) in spectrum_series(run) {
        match results::decode_histogram(pick(r)) {
            Ok(h) if !h.is_empty() => {
                max_count = max_count.max(h.len());
                histograms.push((label, r, h));
            }
            Ok(_) => left_out.push(format!("{label} (no samples)")),
            Err(_) if pick(r).trim().is_empty() => {
                left_out.push(format!("{label} (no samples)"));
            }
            Err(_) => left_out.push(format!("{label} (unreadable histogram)")),
        }
    }
    let x_max = (max_count.max(1) as f64)
        .log10()
        .ceil()
        .clamp(MIN_NINES, MAX_NINES);
    for (label, r, h) in &histograms {
        curves.push(Curve {
            label: label.clone(),
            colour: entry_colour(r.transport, r.target.as_deref()),
            verified: r.verified,
            points: spectrum_points(h, x_max),
        });
    }

    let title = match scenario_name(&run.scenario) {
        Some(scenario) => format!("{name} — {scenario}"),
        None => name.to_string(),
    };
    let mut svg = String::new();
    let text = (title.as_str(), y_desc, no_data);
    draw_spectrum(&mut svg, text, &curves, &left_out, x_max)
        .map_err(|e| anyhow!("drawing the {name}: {e}"))?;
    Ok(svg)
}

/// Renders [`latency_spectrum_svg`] into `path`, atomically.
pub fn write_latency_spectrum(run: &RunFile, path: &Path) -> anyhow::Result<()> {
    let svg = latency_spectrum_svg(run)?;
    results::io::write_atomic(path, svg.as_bytes())
}

/// Draws the chart (or the "no data" caption) into `svg`; plotters' errors
/// are returned, never unwrapped, so a bad run file cannot crash a report.
pub(crate) fn draw_spectrum(
    svg: &mut String,
    (title, y_desc, no_data): (&str, &str, &str),
    curves: &[Curve],
    left_out: &[String],
    x_max: f64,
) -> Result<(), DrawError> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend and notes go in a strip under the chart, so they never hide
    // a line (a tail can end anywhere on the plot).
    let (chart_area, footer) = root.split_vertically(SIZE.1 - FOOTER_H);
    let legend: Vec<(RGBAColor, String)> = curves
        .iter()
        .map(|c| (c.colour.to_rgba(), legend_label(c)))
        .collect();
    draw_footer(&footer, &legend, left_out)?;

    if curves.is_empty() {
        draw_no_data(&chart_area, title, no_data)?;
        root.present()?;
        return Ok(());
    }

    let (lo, hi) = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|&(_, y)| y))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    // Margins of a good fraction of a decade either side, so no line hugs a border.
    let (y_lo, y_hi) = ((lo / 1.6).max(FLOOR_MS / 2.0), hi * 1.6);

    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        // Room for the last tick label ("99.99%"), centred on the right edge.
        .margin_right(44)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            NinesAxis { max: x_max },
            (y_lo..y_hi)
                .log_scale()
                .with_key_points(log_ticks(y_lo, y_hi)),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc(y_desc)
        .y_label_formatter(&|y| tick_ms(*y))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    for c in curves {
        let style = c.colour.stroke_width(2);
        if c.verified {
            chart.draw_series(LineSeries::new(c.points.iter().copied(), style))?;
        } else {
            // Dashed: the figures of a transport that lost or reordered events are not valid.
            chart.draw_series(DashedLineSeries::new(c.points.iter().copied(), 6, 4, style))?;
        }
    }
    root.present()?;
    Ok(())
}

/// The x axis: a linear axis over `0..=max` nines whose ticks are the whole
/// nines (0%, 90%, 99%, …). A coordinate type of its own because plotters'
/// `with_key_points` over an `f64` range loses the ability to format labels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NinesAxis {
    pub(crate) max: f64,
}

impl Ranged for NinesAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = if self.max > 0.0 {
            value / self.max
        } else {
            0.0
        };
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        (0..=self.max as u32).map(f64::from).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.max
    }
}

impl plotters::coord::ranged1d::ValueFormatter<f64> for NinesAxis {
    fn format(value: &f64) -> String {
        nines_label(*value)
    }
}

/// The curves of a spectrum: each entry, or for a mixed run's entry each
/// of its groups (`idle SSE`), so every group's clients are a line.
pub fn spectrum_series(run: &RunFile) -> Vec<(String, &results::TransportResult)> {
    run.transports
        .iter()
        .flat_map(|r| {
            if r.is_mixed() {
                r.groups.iter().map(|g| (g.label(), &g.result)).collect()
            } else {
                vec![(r.label(), r)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::style::*;
    use protocol::TransportKind;

    #[test]
    fn nines_axis_positions_and_labels() {
        assert!((nines(0.0)).abs() < 1e-12);
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert!(nines(1.0).is_infinite());
        let labels: Vec<_> = (0..=5).map(|k| nines_label(f64::from(k))).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn spectrum_is_monotonic_and_stops_at_the_resolvable_quantile() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=1_000u64 {
            h.record(v * 10).unwrap(); // 10 µs … 10 ms
        }
        let pts = spectrum_points(&h, 4.0);
        assert!(pts.len() > 10);
        assert!(
            pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
            "{pts:?}"
        );
        let &(x_last, y_last) = pts.last().unwrap();
        assert!(
            (x_last - 3.0).abs() < 1e-9,
            "1000 samples resolve p99.9: {x_last}"
        );
        assert!((y_last - h.max() as f64 / 1000.0).abs() < 1e-9);
        // The median sits near 5 ms, at x = log10(2) ≈ 0.30.
        let median = pts.iter().find(|p| p.0 >= 0.30).unwrap();
        assert!((4.9..5.1).contains(&median.1), "{median:?}");
        assert!(spectrum_points(&hdrhistogram::Histogram::<u64>::new(3).unwrap(), 4.0).is_empty());
    }

    #[test]
    fn log_ticks_exist_for_narrow_and_wide_ranges() {
        let narrow = log_ticks(0.3, 0.6);
        assert!(
            narrow.len() >= 3 && narrow.iter().all(|t| (0.3..=0.6).contains(t)),
            "{narrow:?}"
        );
        let wide = log_ticks(0.01, 5_000.0);
        assert!((3..=12).contains(&wide.len()), "{wide:?}");
        assert!(log_ticks(0.0, 1.0).is_empty());
        assert!(log_ticks(2.0, 1.0).is_empty());
    }

    #[test]
    fn colours_are_distinct() {
        let hex: std::collections::BTreeSet<_> =
            TransportKind::ALL.iter().map(|&t| colour_hex(t)).collect();
        assert_eq!(hex.len(), TransportKind::ALL.len());
    }
}
