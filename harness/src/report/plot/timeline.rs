//! Charts over the run's time: the server's memory, connected clients and
//! the faults injected, sampled on the probe's timeline.

use crate::report::plot::style::Curve;
use crate::report::plot::style::titled;
use crate::report::plot::style::{
    DrawError, FOOTER_H, SIZE, draw_footer, draw_no_data, entry_colour,
};
use crate::results::RunFile;
use anyhow::anyhow;
use plotters::prelude::*;

/// One curve per transport run of `value` over its timeline samples, time
/// measured from the start of each run's measured window; runs without such
/// samples are named in the returned `left_out`. Also the longest window, s.
pub(crate) fn sample_curves(
    run: &RunFile,
    value: impl Fn(&crate::results::Sample) -> Option<f64>,
) -> (Vec<Curve>, Vec<String>, f64) {
    let mut lines: Vec<Curve> = Vec::new();
    let mut left_out = Vec::new();
    let mut window_s = 0.0f64;
    for r in &run.transports {
        let points: Vec<(f64, f64)> = r
            .timeline
            .iter()
            .filter_map(|s| {
                let y = value(s)?;
                let t = (s.t_us as f64 - r.window_start_us as f64) / 1e6;
                Some((t, y))
            })
            .collect();
        if points.is_empty() || r.window_start_us == 0 {
            left_out.push(format!("{} (no samples)", r.label()));
            continue;
        }
        window_s = window_s.max(r.window_s);
        lines.push(Curve {
            label: r.label(),
            colour: entry_colour(r.transport, r.target.as_deref()),
            verified: r.verified,
            points,
        });
    }
    (lines, left_out, window_s)
}

/// The times of the faults of the first entry that has faults, seconds from
/// the start of its measured window (every transport gets the same offsets
/// from its own window's start).
pub(crate) fn fault_markers(run: &RunFile) -> Vec<f64> {
    run.transports
        .iter()
        .find(|r| !r.recovery.faults.is_empty() && r.window_start_us != 0)
        .map(|r| {
            r.recovery
                .faults
                .iter()
                .map(|f| (f.at_us as f64 - r.window_start_us as f64) / 1e6)
                .collect()
        })
        .unwrap_or_default()
}

/// Fleet clients connected over time around the faults, one line per
/// transport run, from the timeline's samples (as the clients see it: a
/// client counts out once it notices its connection is gone).
pub fn connected_svg(run: &RunFile) -> anyhow::Result<String> {
    samples_svg(
        run,
        (
            "Connected clients around faults",
            "clients connected (vertical lines: faults)",
            "no data: connected clients were not sampled",
        ),
        |s| s.clients_connected.map(|n| n as f64),
    )
}

/// Server RSS (MiB) over time, one line per transport run, time measured
/// from the start of each run's measured window (so connection set-up is at
/// negative times and the window is shaded; vertical lines: faults).
pub fn timeline_svg(run: &RunFile) -> anyhow::Result<String> {
    samples_svg(
        run,
        (
            "Server memory over time",
            "server RSS (MiB)",
            "no data: no server memory was sampled",
        ),
        |s| s.server_rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0)),
    )
}

/// A timeline chart of one figure of the resource samples, faults marked:
/// `(title, y axis, no-data text)`.
pub(crate) fn samples_svg(
    run: &RunFile,
    (title, y_desc, no_data): (&str, &str, &str),
    value: impl Fn(&crate::results::Sample) -> Option<f64>,
) -> anyhow::Result<String> {
    let (lines, left_out, window_s) = sample_curves(run, value);
    let title = titled(run, title);
    let mut svg = String::new();
    let markers = fault_markers(run);
    draw_timeline(
        &mut svg,
        (title.as_str(), y_desc, no_data),
        &lines,
        &left_out,
        window_s,
        &markers,
    )
    .map_err(|e| anyhow!("drawing {}: {e}", title.to_lowercase()))?;
    Ok(svg)
}

/// Distinct expected events delivered per second (all clients) of every
/// transport, over the measured window, with a vertical line at each fault
/// (times from the first entry that has faults; every transport gets the
/// same offsets from its own window's start).
pub fn faults_svg(run: &RunFile) -> anyhow::Result<String> {
    let mut lines: Vec<Curve> = Vec::new();
    let mut left_out = Vec::new();
    let mut window_s = 0.0f64;
    for r in &run.transports {
        if r.recovery.delivered_per_s.is_empty() || r.window_start_us == 0 {
            left_out.push(format!("{} (no deliveries)", r.label()));
            continue;
        }
        window_s = window_s.max(r.window_s);
        // Each bucket drawn at its middle: the rate over [i, i + 1) s.
        let points = r
            .recovery
            .delivered_per_s
            .iter()
            .enumerate()
            .map(|(i, &n)| (i as f64 + 0.5, n as f64))
            .collect();
        lines.push(Curve {
            label: r.label(),
            colour: entry_colour(r.transport, r.target.as_deref()),
            verified: r.verified,
            points,
        });
    }
    let title = titled(run, "Events delivered per second around faults");
    let mut svg = String::new();
    let text = (
        title.as_str(),
        "events delivered / s (all clients; vertical lines: faults)",
        "no data: no deliveries recorded",
    );
    draw_timeline(
        &mut svg,
        text,
        &lines,
        &left_out,
        window_s,
        &fault_markers(run),
    )
    .map_err(|e| anyhow!("drawing the fault timeline: {e}"))?;
    Ok(svg)
}

pub(crate) fn draw_timeline(
    svg: &mut String,
    (title, y_desc, no_data): (&str, &str, &str),
    lines: &[Curve],
    left_out: &[String],
    window_s: f64,
    markers: &[f64],
) -> Result<(), DrawError> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (chart_area, footer) = root.split_vertically(SIZE.1 - FOOTER_H);
    let mut legend: Vec<(RGBAColor, String)> = Vec::new();
    for c in lines {
        let item = (c.colour.to_rgba(), c.label.clone());
        if !legend.iter().any(|l| l.1 == item.1) {
            legend.push(item);
        }
    }
    if !lines.is_empty() {
        legend.push((BLACK.mix(0.08), "shaded: measured window".into()));
    }
    draw_footer(&footer, &legend, left_out)?;
    if lines.is_empty() {
        draw_no_data(&chart_area, title, no_data)?;
        root.present()?;
        return Ok(());
    }
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (x_lo, x_hi, y_hi) = all.fold((0.0f64, window_s, 0.0f64), |(a, b, c), &(x, y)| {
        (a.min(x), b.max(x), c.max(y))
    });
    let y_hi = if y_hi > 0.0 { y_hi * 1.15 } else { 1.0 };
    let x_hi = if x_hi > x_lo { x_hi } else { x_lo + 1.0 };
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("seconds from the start of the measured window")
        .y_desc(y_desc)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    chart.draw_series(std::iter::once(Rectangle::new(
        [(0.0, 0.0), (window_s, y_hi)],
        BLACK.mix(0.06).filled(),
    )))?;
    for &x in markers.iter().filter(|x| x.is_finite()) {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, y_hi)],
            RED.mix(0.6).stroke_width(2),
        )))?;
    }
    for c in lines {
        let style = c.colour.stroke_width(2);
        if c.verified {
            chart.draw_series(LineSeries::new(c.points.iter().copied(), style))?;
        } else {
            chart.draw_series(DashedLineSeries::new(c.points.iter().copied(), 6, 4, style))?;
        }
    }
    root.present()?;
    Ok(())
}
