//! The cost bars: server memory per connection, CPU per delivered event and
//! bytes per delivered event (down and up stacked), each with the raw-TCP
//! floor as a dashed line and min–max whiskers over repetitions.

use crate::report::metrics::{Unit, metric};
use crate::report::plot::style::IndexAxis;
use crate::report::plot::style::titled;
use crate::report::plot::style::{
    DrawError, FOOTER_H, SIZE, draw_footer, draw_no_data, entry_colour,
};
use crate::report::rows::{Figure, Row, rows};
use crate::results::RunFile;
use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One bar of a cost chart: a transport's median, possibly in stacked
/// segments, with the min–max over repetitions as a whisker.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// The row's label (the x axis).
    pub(crate) name: String,
    /// Stacked segments from the bottom: (height, colour).
    pub(crate) segments: Vec<(f64, RGBAColor)>,
    /// Min–max of the whole bar over repetitions (drawn when they differ).
    pub(crate) range: Option<(f64, f64)>,
    /// Text above the bar.
    pub(crate) label: String,
    /// Verified (and not generator-bound): drawn solid; otherwise pale and marked.
    pub(crate) valid: bool,
}

impl Bar {
    fn top(&self) -> f64 {
        self.segments.iter().map(|s| s.0).sum()
    }
}

/// The floor as drawn: its value and the text beside the line.
#[derive(Debug, Clone)]
pub(crate) struct FloorLine {
    pub(crate) value: f64,
    pub(crate) label: String,
}

/// A cost chart: one bar per compared transport, the floor as a line.
pub(crate) struct BarChart<'a> {
    pub(crate) title: String,
    pub(crate) y_desc: &'a str,
    pub(crate) bars: Vec<Bar>,
    pub(crate) floor: Option<FloorLine>,
    pub(crate) legend: Vec<(RGBAColor, String)>,
    pub(crate) notes: Vec<String>,
}

/// The figure of `key` for every row of `run`: compared transports become
/// bars, the floor becomes the reference line (when it verified), and what
/// cannot be drawn is named in the notes.
pub(crate) fn single_metric_chart<'a>(
    run: &RunFile,
    key: &str,
    title: &str,
    y_desc: &'a str,
    fmt: fn(f64) -> String,
) -> BarChart<'a> {
    let rows = rows(run);
    let m = metric(key).expect("chart metrics exist");
    let mut chart = BarChart {
        title: titled(run, title),
        y_desc,
        bars: Vec::new(),
        floor: None,
        legend: Vec::new(),
        notes: Vec::new(),
    };
    for row in &rows {
        let Some(f) = row.figure(m) else {
            chart.notes.push(format!("{} (no data)", row.label()));
            continue;
        };
        if row.is_floor() {
            if row.verified {
                chart.floor = Some(FloorLine {
                    value: f.median,
                    label: format!("raw TCP floor: {}", fmt(f.median)),
                });
            } else {
                chart.notes.push("the raw-TCP floor did not verify".into());
            }
            continue;
        }
        chart.bars.push(bar(
            row,
            vec![(
                f.median,
                entry_colour(row.transport, row.target.as_deref()).to_rgba(),
            )],
            f.min,
            f.max,
            fmt(f.median),
        ));
    }
    if !rows.iter().any(|r| r.is_floor()) {
        chart.notes.push("no raw-TCP floor in this run".into());
    }
    chart
}

/// A bar for `row` with its segments and min–max.
pub(crate) fn bar(
    row: &Row,
    segments: Vec<(f64, RGBAColor)>,
    min: f64,
    max: f64,
    value: String,
) -> Bar {
    let valid = row.verified && !row.generator_bound;
    let mark = if !row.verified {
        " ✗"
    } else if row.generator_bound {
        " ⚠"
    } else {
        ""
    };
    Bar {
        name: row.label(),
        segments,
        range: (max > min).then_some((min, max)),
        label: format!("{value}{mark}"),
        valid,
    }
}

/// Bars of server RSS per connection (KiB), the floor as a line.
pub fn memory_svg(run: &RunFile) -> anyhow::Result<String> {
    let chart = single_metric_chart(
        run,
        "rss_per_conn",
        "Server memory per connection",
        "RSS per connection (KiB)",
        |v| format!("{} KiB", sig(v)),
    );
    draw_bars(&chart)
}

/// Bars of server CPU per delivered event (µs), the floor as a line.
pub fn cpu_svg(run: &RunFile) -> anyhow::Result<String> {
    let chart = single_metric_chart(
        run,
        "cpu_us_per_event",
        "Server CPU per delivered event",
        "CPU per event (µs)",
        |v| format!("{} µs", sig(v)),
    );
    draw_bars(&chart)
}

/// Bars of bytes per delivered event, down (server → client) and up stacked,
/// the floor's total as a line.
pub fn bytes_svg(run: &RunFile) -> anyhow::Result<String> {
    let rows = rows(run);
    let (down, up) = (
        metric("bytes_down_per_event").expect("exists"),
        metric("bytes_up_per_event").expect("exists"),
    );
    let mut chart = BarChart {
        title: titled(run, "Bytes on the wire per delivered event"),
        y_desc: "bytes per event",
        bars: Vec::new(),
        floor: None,
        legend: vec![
            (BLACK.mix(0.85), "solid: down (server → client)".into()),
            (BLACK.mix(0.3), "pale: up (client → server)".into()),
        ],
        notes: Vec::new(),
    };
    for row in &rows {
        let (Some(d), Some(u)) = (row.figure(down), row.figure(up)) else {
            chart.notes.push(format!("{} (no data)", row.label()));
            continue;
        };
        // The total per repetition, for the whisker and the floor line.
        let totals: Vec<f64> = row
            .entries
            .iter()
            .filter_map(|e| Some((down.value)(e)? + (up.value)(e)?))
            .collect();
        let total = Figure::of(&totals).unwrap_or(Figure {
            median: d.median + u.median,
            min: d.median + u.median,
            max: d.median + u.median,
            n: 1,
        });
        if row.is_floor() {
            if row.verified {
                chart.floor = Some(FloorLine {
                    value: total.median,
                    label: format!("raw TCP floor: {} B", sig(total.median)),
                });
            } else {
                chart.notes.push("the raw-TCP floor did not verify".into());
            }
            continue;
        }
        let c = entry_colour(row.transport, row.target.as_deref());
        chart.bars.push(bar(
            row,
            vec![(d.median, c.to_rgba()), (u.median, c.mix(0.35))],
            total.min,
            total.max,
            format!("{} + {} B", sig(d.median), sig(u.median)),
        ));
    }
    if !rows.iter().any(|r| r.is_floor()) {
        chart.notes.push("no raw-TCP floor in this run".into());
    }
    draw_bars(&chart)
}

/// About three significant digits, no trailing zeros: `7.25`, `183`, `0.412`.
pub(crate) fn sig(v: f64) -> String {
    let s = Unit::Bytes.format(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws a bar chart; with no bar and no floor, a "no data" caption.
pub(crate) fn draw_bars(chart: &BarChart<'_>) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw_bars_into(&mut svg, chart).map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
    Ok(svg)
}

pub(crate) fn draw_bars_into(svg: &mut String, c: &BarChart<'_>) -> Result<(), DrawError> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (chart_area, footer) = root.split_vertically(SIZE.1 - FOOTER_H);
    let mut legend = c.legend.clone();
    if let Some(f) = &c.floor {
        // In the legend, not beside the line, where it would collide with a bar's label.
        legend.push((BLACK.to_rgba(), format!("dashed line: {}", f.label)));
    }
    if c.bars.iter().any(|b| b.range.is_some()) {
        legend.push((BLACK.mix(0.6), "whisker: min–max over repetitions".into()));
    }
    if c.bars.iter().any(|b| !b.valid) {
        legend.push((
            BLACK.mix(0.2),
            "pale: ✗ not verified / ⚠ generator-bound".into(),
        ));
    }
    draw_footer(&footer, &legend, &c.notes)?;

    if c.bars.is_empty() && c.floor.is_none() {
        draw_no_data(
            &chart_area,
            &c.title,
            "no data: no transport has this figure",
        )?;
        root.present()?;
        return Ok(());
    }

    let top = c
        .bars
        .iter()
        .map(|b| b.range.map_or(b.top(), |r| r.1).max(b.top()))
        .chain(c.floor.as_ref().map(|f| f.value))
        .fold(0.0f64, f64::max);
    let y_max = if top > 0.0 { top * 1.18 } else { 1.0 };
    // Negative values (memory that shrank) still get an axis that shows them.
    let y_min = c
        .bars
        .iter()
        .map(|b| b.range.map_or(b.top(), |r| r.0).min(b.top()))
        .fold(0.0f64, f64::min)
        * 1.18;
    let n = c.bars.len().max(1);
    let labels: Vec<&str> = c.bars.iter().map(|b| b.name.as_str()).collect();
    let x_label = |x: &f64| -> String {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels
                .get(i as usize)
                .map_or(String::new(), |l| (*l).to_string())
        } else {
            String::new()
        }
    };
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(&c.title, ("sans-serif", 22))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(IndexAxis { n }, y_min..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(c.y_desc)
        .x_label_formatter(&x_label)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    const HALF: f64 = 0.3;
    for (i, b) in c.bars.iter().enumerate() {
        let x = i as f64;
        let mut base = 0.0;
        for &(h, fill) in &b.segments {
            let fill = if b.valid { fill } else { fill.mix(0.3) };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - HALF, base), (x + HALF, base + h)],
                fill.filled(),
            )))?;
            base += h;
        }
        if let Some((lo, hi)) = b.range {
            let style = BLACK.mix(0.6).stroke_width(1);
            chart.draw_series([
                PathElement::new(vec![(x, lo), (x, hi)], style),
                PathElement::new(vec![(x - 0.06, lo), (x + 0.06, lo)], style),
                PathElement::new(vec![(x - 0.06, hi), (x + 0.06, hi)], style),
            ])?;
        }
        let label_y = b.range.map_or(base, |r| r.1.max(base)).max(0.0);
        chart.draw_series(std::iter::once(Text::new(
            b.label.clone(),
            (x, label_y),
            ("sans-serif", 13)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        )))?;
    }
    if let Some(f) = &c.floor {
        let right = n as f64 - 0.5;
        chart.draw_series(DashedLineSeries::new(
            [(-0.5, f.value), (right, f.value)],
            6,
            4,
            BLACK.stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}
