//! SVG charts (plotters, SVG backend only), derived from `run.json` alone.
//!
//! Every chart gives a transport the same colour ([`colour`]), so a reader
//! who learned "SSE is green" on one plot can read the next without a legend.
//! Charts are rendered into a string and written atomically, so a half-drawn
//! file is never left behind.
//!
//! Every chart is listed once, in [`PLOTS`] (file name, title, renderer):
//! the report writes and embeds them from that list, so a new chart is one
//! row. The latency percentile spectrum ([`latency_spectrum_svg`]); the cost
//! bars — server memory per connection ([`memory_svg`]), server CPU per
//! delivered event ([`cpu_svg`]) and bytes per delivered event, down and up
//! stacked ([`bytes_svg`]) — each with the raw-TCP floor as a dashed
//! reference line and min–max whiskers over repetitions; and the server's
//! memory over time ([`timeline_svg`]).

use std::path::Path;

use anyhow::anyhow;
use plotters::coord::combinators::{BindKeyPoints as _, IntoLogRange as _};
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use protocol::TransportKind;

use crate::report::{self, Row, format_ms};
use crate::results::{self, RunFile};

/// Size of every chart, pixels.
pub const SIZE: (u32, u32) = (900, 520);

/// File name of the latency percentile spectrum inside a run directory.
pub const LATENCY_SVG: &str = "latency.svg";
/// File name of the server-memory-per-connection bars.
pub const MEMORY_SVG: &str = "memory.svg";
/// File name of the server-CPU-per-event bars.
pub const CPU_SVG: &str = "cpu.svg";
/// File name of the bytes-per-event bars.
pub const BYTES_SVG: &str = "bytes.svg";
/// File name of the server-memory timeline.
pub const TIMELINE_SVG: &str = "timeline.svg";
/// File name of the delivery timeline around faults.
pub const FAULTS_SVG: &str = "faults.svg";
/// File name of the reconnect-time spectrum.
pub const RECONNECT_SVG: &str = "reconnect.svg";
/// File name of the connected-clients timeline around faults.
pub const CONNECTED_SVG: &str = "connected.svg";
/// File name of a sweep's median latency against clients.
pub const SWEEP_P50_SVG: &str = "sweep-p50.svg";
/// File name of a sweep's p99 latency against clients.
pub const SWEEP_P99_SVG: &str = "sweep-p99.svg";
/// File name of a sweep's delivered against offered events/s.
pub const SWEEP_THROUGHPUT_SVG: &str = "sweep-throughput.svg";
/// File name of the chat round-trip spectrum.
pub const CHAT_SVG: &str = "chat_round_trip.svg";

/// One chart of a report: where it goes, what it is called, how it is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Plot {
    /// File name inside the run directory.
    pub file: &'static str,
    /// Title (also the image's alt text in reports).
    pub title: &'static str,
    /// Renders the chart of a run as SVG text.
    pub render: fn(&RunFile) -> anyhow::Result<String>,
    /// Whether a run has this chart (fault charts: runs with faults only).
    pub applies: fn(&RunFile) -> bool,
}

/// Every run but a sweep has this chart (a sweep's points would mix in it).
fn always(run: &RunFile) -> bool {
    !report::is_sweep(run)
}

/// A sweep has this chart.
fn sweep_only(run: &RunFile) -> bool {
    report::is_sweep(run)
}

/// Whether any entry of `run` had faults injected (not a sweep: its points would mix).
pub fn has_faults(run: &RunFile) -> bool {
    always(run) && run.transports.iter().any(|t| !t.recovery.faults.is_empty())
}

/// Whether `run` is a chat run (some clients sent messages).
pub fn has_chat(run: &RunFile) -> bool {
    spectrum_series(run).iter().any(|(_, r)| r.chat.is_some())
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

/// The charts of [`PLOTS`] that `run` has, in reading order.
pub fn plots_for(run: &RunFile) -> impl Iterator<Item = &'static Plot> + '_ {
    PLOTS.iter().filter(move |p| (p.applies)(run))
}

/// Every chart a report has, in reading order.
pub const PLOTS: &[Plot] = &[
    Plot {
        file: LATENCY_SVG,
        title: "Latency percentile spectrum",
        render: latency_spectrum_svg,
        applies: always,
    },
    Plot {
        file: MEMORY_SVG,
        title: "Server memory per connection",
        render: memory_svg,
        applies: always,
    },
    Plot {
        file: CPU_SVG,
        title: "Server CPU per delivered event",
        render: cpu_svg,
        applies: always,
    },
    Plot {
        file: BYTES_SVG,
        title: "Bytes on the wire per delivered event",
        render: bytes_svg,
        applies: always,
    },
    Plot {
        file: TIMELINE_SVG,
        title: "Server memory over time",
        render: timeline_svg,
        applies: always,
    },
    Plot {
        file: FAULTS_SVG,
        title: "Events delivered per second around faults",
        render: faults_svg,
        applies: has_faults,
    },
    Plot {
        file: CONNECTED_SVG,
        title: "Connected clients around faults",
        render: connected_svg,
        applies: has_faults,
    },
    Plot {
        file: RECONNECT_SVG,
        title: "Reconnect-time spectrum",
        render: reconnect_spectrum_svg,
        applies: has_faults,
    },
    Plot {
        file: CHAT_SVG,
        title: "Chat round-trip spectrum",
        render: chat_spectrum_svg,
        applies: has_chat,
    },
    Plot {
        file: SWEEP_P50_SVG,
        title: "Median latency against clients",
        render: crate::plot_xy::p50_svg,
        applies: sweep_only,
    },
    Plot {
        file: SWEEP_P99_SVG,
        title: "p99 latency against clients",
        render: crate::plot_xy::p99_svg,
        applies: sweep_only,
    },
    Plot {
        file: SWEEP_THROUGHPUT_SVG,
        title: "Delivered against offered events per second",
        render: crate::plot_xy::throughput_svg,
        applies: sweep_only,
    },
];

/// Renders every chart of [`PLOTS`] into `dir`, atomically each.
pub fn write_all(run: &RunFile, dir: &Path) -> anyhow::Result<()> {
    for p in plots_for(run) {
        let path = dir.join(p.file);
        let svg = (p.render)(run).map_err(|e| anyhow!("rendering {}: {e:#}", p.file))?;
        results::write_atomic(&path, svg.as_bytes())?;
    }
    Ok(())
}

/// The fixed colour of a transport, used by every chart.
///
/// From the Okabe–Ito palette, which stays distinguishable for the common
/// forms of colour blindness and in greyscale print.
pub fn colour(transport: TransportKind) -> RGBColor {
    match transport {
        TransportKind::ShortPoll => RGBColor(0xE6, 0x9F, 0x00), // orange
        TransportKind::LongPoll => RGBColor(0x00, 0x72, 0xB2),  // blue
        TransportKind::Sse => RGBColor(0x00, 0x9E, 0x73),       // bluish green
        TransportKind::Ws => RGBColor(0xCC, 0x79, 0xA7),        // reddish purple
        TransportKind::Tcp => RGBColor(0x00, 0x00, 0x00),       // black: the floor
    }
}

/// Colours of targets (foreign servers), from the rest of the Okabe–Ito
/// palette, so a target never shares a built-in transport's colour.
const TARGET_COLOURS: [RGBColor; 3] = [
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0xB8, 0xA2, 0x00), // dark yellow (plain yellow vanishes on white)
];

/// The colour of `transport` as served by `target` (`None`: push-server):
/// the transport's own, or one of [`TARGET_COLOURS`] chosen by the target's
/// name, so a target keeps its colour across runs and reports.
pub fn entry_colour(transport: TransportKind, target: Option<&str>) -> RGBColor {
    match target {
        None => colour(transport),
        Some(name) => {
            let h = name
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
            TARGET_COLOURS[h % TARGET_COLOURS.len()]
        }
    }
}

/// The colour of a transport as SVG writes it (`#RRGGBB`), for tests and HTML.
pub fn colour_hex(transport: TransportKind) -> String {
    let RGBColor(r, g, b) = colour(transport);
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// The smallest number of nines the x axis shows (up to p99.99).
const MIN_NINES: f64 = 4.0;
/// The largest: beyond p99.9999 even a million-sample run says nothing.
const MAX_NINES: f64 = 6.0;
/// Latencies are drawn no lower than 1 µs, so a 0 µs sample cannot break the log axis.
const FLOOR_MS: f64 = 0.001;

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

/// One transport's line on the spectrum.
struct Curve {
    label: String,
    colour: RGBColor,
    verified: bool,
    points: Vec<(f64, f64)>,
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
fn spectrum_svg(
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

    let title = match crate::report::scenario_name(&run.scenario) {
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
    results::write_atomic(path, svg.as_bytes())
}

/// Error type of drawing into an SVG string.
pub(crate) type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// The chart's title and a centred grey caption saying why there is nothing
/// to plot: every chart says so rather than drawing empty axes.
pub(crate) fn draw_no_data(
    chart_area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    caption: &str,
) -> Result<(), DrawError> {
    let area = chart_area.titled(title, ("sans-serif", 22))?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        caption,
        (w as i32 / 2, h as i32 / 2),
        ("sans-serif", 18)
            .into_font()
            .color(&BLACK.mix(0.7))
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))
}

/// Height of the strip under the chart holding the legend and notes, pixels.
pub(crate) const FOOTER_H: u32 = 58;

/// Label of a transport in the legend; an unverified one says so.
fn legend_label(c: &Curve) -> String {
    if c.verified {
        c.label.clone()
    } else {
        format!("{} — ✗ not verified, invalid", c.label)
    }
}

/// Draws the chart (or the "no data" caption) into `svg`; plotters' errors
/// are returned, never unwrapped, so a bad run file cannot crash a report.
fn draw_spectrum(
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

/// The legend (a filled swatch and a label per item, flowing left to right)
/// and a note naming what could not be drawn.
pub(crate) fn draw_footer(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    items: &[(RGBAColor, String)],
    left_out: &[String],
) -> Result<(), DrawError> {
    const LEFT: i32 = 76;
    const ROW_H: i32 = 20;
    let width = SIZE.0 as i32 - 24;
    let font = ("sans-serif", 14).into_font();
    let (mut x, mut y) = (LEFT, 4);
    for (swatch, label) in items {
        // The SVG backend cannot measure text (the viewer picks the font), and
        // plotters' estimate counts bytes; ~0.45 em per character is close enough.
        let text_w = (label.chars().count() * 6) as i32;
        let item_w = 16 + text_w + 28;
        if x + item_w > width && x > LEFT {
            x = LEFT;
            y += ROW_H;
        }
        // A filled square (not a line) keeps exactly one polyline per series in the SVG.
        area.draw(&Rectangle::new(
            [(x, y + 3), (x + 12, y + 15)],
            swatch.filled(),
        ))?;
        area.draw(&Text::new(label.as_str(), (x + 18, y + 2), font.clone()))?;
        x += item_w;
    }
    if !left_out.is_empty() {
        let y = if items.is_empty() { 4 } else { y + ROW_H + 2 };
        area.draw(&Text::new(
            format!("Not drawn: {}", left_out.join(", ")),
            (LEFT, y),
            ("sans-serif", 13).into_font().color(&BLACK.mix(0.75)),
        ))?;
    }
    Ok(())
}

/// A y tick label: [`format_ms`] without trailing zeros (`10`, `1`, `0.1`, `2.5`).
pub(crate) fn tick_ms(ms: f64) -> String {
    let s = format_ms(ms);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The x axis: a linear axis over `0..=max` nines whose ticks are the whole
/// nines (0%, 90%, 99%, …). A coordinate type of its own because plotters'
/// `with_key_points` over an `f64` range loses the ability to format labels.
#[derive(Debug, Clone, Copy)]
struct NinesAxis {
    max: f64,
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

/// Tick values for a log axis over `[lo, hi]`: the sparsest of the 1-2-5-like
/// mantissa sets that gives at least three ticks (plotters' own log ticks
/// give none when the range holds no power of ten).
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const MANTISSAS: [&[f64]; 4] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0],
        &[
            1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0,
        ],
    ];
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let mut best = Vec::new();
    for set in MANTISSAS {
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi {
            for m in set {
                let v = decade * m;
                if v >= lo && v <= hi {
                    ticks.push(v);
                }
            }
            decade *= 10.0;
        }
        if ticks.len() > 12 && !best.is_empty() {
            break; // The previous, sparser set is the better one.
        }
        best = ticks;
        if best.len() >= 3 {
            break;
        }
    }
    best
}

/// One bar of a cost chart: a transport's median, possibly in stacked
/// segments, with the min–max over repetitions as a whisker.
#[derive(Debug, Clone)]
struct Bar {
    /// The row's label (the x axis).
    name: String,
    /// Stacked segments from the bottom: (height, colour).
    segments: Vec<(f64, RGBAColor)>,
    /// Min–max of the whole bar over repetitions (drawn when they differ).
    range: Option<(f64, f64)>,
    /// Text above the bar.
    label: String,
    /// Verified (and not generator-bound): drawn solid; otherwise pale and marked.
    valid: bool,
}

impl Bar {
    fn top(&self) -> f64 {
        self.segments.iter().map(|s| s.0).sum()
    }
}

/// The floor as drawn: its value and the text beside the line.
#[derive(Debug, Clone)]
struct FloorLine {
    value: f64,
    label: String,
}

/// A cost chart: one bar per compared transport, the floor as a line.
struct BarChart<'a> {
    title: String,
    y_desc: &'a str,
    bars: Vec<Bar>,
    floor: Option<FloorLine>,
    legend: Vec<(RGBAColor, String)>,
    notes: Vec<String>,
}

/// The figure of `key` for every row of `run`: compared transports become
/// bars, the floor becomes the reference line (when it verified), and what
/// cannot be drawn is named in the notes.
fn single_metric_chart<'a>(
    run: &RunFile,
    key: &str,
    title: &str,
    y_desc: &'a str,
    fmt: fn(f64) -> String,
) -> BarChart<'a> {
    let rows = report::rows(run);
    let m = report::metric(key).expect("chart metrics exist");
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
fn bar(row: &Row, segments: Vec<(f64, RGBAColor)>, min: f64, max: f64, value: String) -> Bar {
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

/// `Title — scenario name`.
pub(crate) fn titled(run: &RunFile, title: &str) -> String {
    match report::scenario_name(&run.scenario) {
        Some(name) => format!("{title} — {name}"),
        None => title.to_string(),
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
    let rows = report::rows(run);
    let (down, up) = (
        report::metric("bytes_down_per_event").expect("exists"),
        report::metric("bytes_up_per_event").expect("exists"),
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
        let total = report::Figure::of(&totals).unwrap_or(report::Figure {
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
    let s = crate::report::Unit::Bytes.format(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws a bar chart; with no bar and no floor, a "no data" caption.
fn draw_bars(chart: &BarChart<'_>) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw_bars_into(&mut svg, chart).map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
    Ok(svg)
}

fn draw_bars_into(svg: &mut String, c: &BarChart<'_>) -> Result<(), DrawError> {
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

/// The x axis of a bar chart: slots `0..n`, each bar centred on its index.
#[derive(Debug, Clone, Copy)]
struct IndexAxis {
    n: usize,
}

impl Ranged for IndexAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = (value + 0.5) / self.n.max(1) as f64;
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        (0..self.n).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..self.n.max(1) as f64 - 0.5
    }
}

impl plotters::coord::ranged1d::ValueFormatter<f64> for IndexAxis {
    fn format(value: &f64) -> String {
        // Replaced by each chart's own labels (the transports).
        format!("{value}")
    }
}

/// One curve per transport run of `value` over its timeline samples, time
/// measured from the start of each run's measured window; runs without such
/// samples are named in the returned `left_out`. Also the longest window, s.
fn sample_curves(
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
fn fault_markers(run: &RunFile) -> Vec<f64> {
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
fn samples_svg(
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

fn draw_timeline(
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

#[cfg(test)]
mod tests {
    use super::*;

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
