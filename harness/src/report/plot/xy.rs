//! Line charts of one figure against another: a sweep's latency against
//! clients and delivered against offered events/s, and the capacity
//! search's probes. Same size, colours, legend strip and "no data" caption
//! as every other chart ([`plot`]).
//!
//! Both axes are linear, or logarithmic when the values span a factor of
//! ten or more (fleets of 100 and 10,000 clients on one linear axis would
//! squash the small one into the border).

use crate::report::metrics::metric;
use crate::report::plot::bars::sig;
use crate::report::plot::style::titled;
use crate::report::plot::style::{
    DrawError, FOOTER_H, SIZE, colour, draw_footer, draw_no_data, log_ticks, tick_ms,
};
use crate::report::rows::Figure;
use crate::results::{RunFile, TransportResult};
use anyhow::anyhow;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use protocol::TransportKind;
use std::collections::BTreeMap;

/// One line of a chart: a transport's points, left to right.
#[derive(Debug, Clone)]
pub struct Series {
    /// Whose colour the line takes.
    pub transport: TransportKind,
    /// Legend text.
    pub label: String,
    /// `(x, y, valid)`: a valid point is a filled dot, any other a cross.
    pub points: Vec<(f64, f64, bool)>,
    /// Drawn dashed (a second line of the same transport, e.g. with loss).
    pub dashed: bool,
}

/// A line drawn for reference behind the series.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// None.
    None,
    /// `y = x`: the ideal of delivered against offered.
    Diagonal,
    /// A horizontal line at `y` (a limit such as an SLO), with its legend text.
    Level(f64, String),
}

/// What one chart shows.
#[derive(Debug, Clone)]
pub struct XyChart {
    /// Title above the chart.
    pub title: String,
    /// Text of the x axis.
    pub x_desc: String,
    /// Text of the y axis.
    pub y_desc: String,
    /// The caption when there is nothing to draw.
    pub no_data: String,
    /// Tick labels of the x axis.
    pub x_label: fn(f64) -> String,
    /// Tick labels of the y axis.
    pub y_label: fn(f64) -> String,
    /// The lines.
    pub series: Vec<Series>,
    /// What could not be drawn, named under the chart.
    pub left_out: Vec<String>,
    /// A reference line.
    pub reference: Reference,
}

/// A linear or logarithmic axis over `lo..hi` (one type for both, so a
/// chart's code does not depend on its scale).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) log: bool,
}

impl Scale {
    /// The axis for `values`: logarithmic when all are positive and span a
    /// factor of ten or more; margins so no point sits on a border.
    fn fit(values: impl Iterator<Item = f64>, from_zero: bool) -> Self {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return Self {
                lo: 0.0,
                hi: 1.0,
                log: false,
            };
        }
        if lo > 0.0 && hi / lo >= 10.0 {
            return Self {
                lo: lo / 1.5,
                hi: hi * 1.5,
                log: true,
            };
        }
        let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
        let lo = if from_zero {
            0.0f64.min(lo)
        } else {
            (lo - span * 0.1).max(0.0f64.min(lo))
        };
        Self {
            lo,
            hi: hi + span * 0.1,
            log: false,
        }
    }

    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// About six ticks: the log axis's 1-2-5 ticks, or a linear step of 1, 2 or 5 × 10^k.
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            return log_ticks(self.lo, self.hi);
        }
        let raw = (self.hi - self.lo) / 6.0;
        if !(raw > 0.0 && raw.is_finite()) {
            return vec![self.lo];
        }
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let mut t = (self.lo / step).ceil() * step;
        let mut ticks = Vec::new();
        while t <= self.hi && ticks.len() < 20 {
            ticks.push(t);
            t += step;
        }
        ticks
    }
}

impl Ranged for Scale {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = self.frac(*value);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        self.ticks()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Scale {
    fn format(value: &f64) -> String {
        sig(*value)
    }
}

/// Renders `chart` as SVG.
pub fn render(chart: &XyChart) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw(&mut svg, chart).map_err(|e| anyhow!("drawing {:?}: {e}", chart.title))?;
    Ok(svg)
}

pub(crate) fn draw(svg: &mut String, c: &XyChart) -> Result<(), DrawError> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (chart_area, footer) = root.split_vertically(SIZE.1 - FOOTER_H);
    let mut legend: Vec<(RGBAColor, String)> = c
        .series
        .iter()
        .map(|s| (colour(s.transport).to_rgba(), s.label.clone()))
        .collect();
    match &c.reference {
        Reference::Diagonal => legend.push((BLACK.mix(0.4), "dashed: y = x (ideal)".into())),
        Reference::Level(_, label) => legend.push((RED.mix(0.7), label.clone())),
        Reference::None => {}
    }
    if !c.series.is_empty() {
        legend.push((
            BLACK.mix(0.6),
            "dot: valid · cross: invalid or failed".into(),
        ));
    }
    draw_footer(&footer, &legend, &c.left_out)?;
    if c.series.iter().all(|s| s.points.is_empty()) {
        draw_no_data(&chart_area, &c.title, &c.no_data)?;
        root.present()?;
        return Ok(());
    }
    let xs = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x = Scale::fit(xs, false);
    let mut ys: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    match &c.reference {
        Reference::Level(y, _) => ys.push(*y),
        Reference::Diagonal => ys.extend([x.lo.max(0.0), x.hi]),
        Reference::None => {}
    }
    let y = Scale::fit(ys.into_iter(), true);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(&c.title, ("sans-serif", 22))
        .margin(12)
        .margin_right(28)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(c.x_desc.as_str())
        .y_desc(c.y_desc.as_str())
        .x_label_formatter(&|v| (c.x_label)(*v))
        .y_label_formatter(&|v| (c.y_label)(*v))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    match &c.reference {
        Reference::Diagonal => {
            // Sampled along x so it is right on any mix of scales.
            let (lo, hi) = (x.lo.max(y.lo), x.hi.min(y.hi));
            let line: Vec<(f64, f64)> = (0..=64)
                .map(|i| {
                    let v = if x.log {
                        lo * (hi / lo).powf(f64::from(i) / 64.0)
                    } else {
                        lo + (hi - lo) * f64::from(i) / 64.0
                    };
                    (v, v)
                })
                .collect();
            chart.draw_series(DashedLineSeries::new(
                line,
                6,
                4,
                BLACK.mix(0.4).stroke_width(1),
            ))?;
        }
        Reference::Level(level, _) => {
            chart.draw_series(DashedLineSeries::new(
                [(x.lo, *level), (x.hi, *level)],
                8,
                5,
                RED.mix(0.7).stroke_width(2),
            ))?;
        }
        Reference::None => {}
    }
    for s in &c.series {
        let colour = colour(s.transport);
        let mut pts = s.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if s.dashed {
            chart.draw_series(DashedLineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                7,
                4,
                colour.stroke_width(2),
            ))?;
        } else {
            chart.draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                colour.stroke_width(2),
            ))?;
        }
        for &(px, py, valid) in &pts {
            if valid {
                chart.draw_series(std::iter::once(Circle::new((px, py), 4, colour.filled())))?;
            } else {
                chart.draw_series(std::iter::once(Cross::new(
                    (px, py),
                    5,
                    colour.stroke_width(2),
                )))?;
            }
        }
    }
    root.present()?;
    Ok(())
}

/// A y tick of milliseconds: [`format_ms`] without trailing zeros.
pub fn ms_label(v: f64) -> String {
    tick_ms(v)
}

/// A tick of a plain number (clients, events/s): about three significant digits.
pub fn number_label(v: f64) -> String {
    sig(v)
}

/// Whether an entry's speed figures are valid: verified, and the fleet was
/// not the bottleneck.
pub(crate) fn valid(r: &TransportResult) -> bool {
    r.verified && !r.fleet.generator_bound
}

/// A sweep's series: one per transport and (when several) per other swept
/// workload, each point the median over repetitions of `value` at `x`.
///
/// `other` names what else distinguishes a line (the rate and payload of a
/// latency-against-clients line); entries with the same transport and
/// `other` form one line.
pub(crate) fn sweep_series(
    run: &RunFile,
    x: impl Fn(&TransportResult) -> Option<f64>,
    value: impl Fn(&TransportResult) -> Option<f64>,
    other: impl Fn(&TransportResult) -> String,
) -> (Vec<Series>, Vec<String>) {
    // (transport order, other) → x bits → (values, all valid)
    type Points = BTreeMap<u64, (Vec<f64>, bool)>;
    let mut lines: Vec<((TransportKind, String), Points)> = Vec::new();
    let mut left_out = Vec::new();
    for r in run.transports.iter().filter(|r| r.point.is_some()) {
        let (Some(x), Some(v)) = (x(r), value(r)) else {
            let p = r.point.map(|p| p.index).unwrap_or_default();
            left_out.push(format!("{} at point {p} (no samples)", r.transport.label()));
            continue;
        };
        let key = (r.transport, other(r));
        let i = match lines.iter().position(|l| l.0 == key) {
            Some(i) => i,
            None => {
                lines.push((key, BTreeMap::new()));
                lines.len() - 1
            }
        };
        let e = lines[i].1.entry(x.to_bits()).or_insert((Vec::new(), true));
        e.0.push(v);
        e.1 &= valid(r);
    }
    let several = lines
        .iter()
        .map(|l| &l.0.1)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let series = lines
        .into_iter()
        .map(|((transport, other), points)| Series {
            transport,
            label: if several {
                format!("{} · {other}", transport.label())
            } else {
                transport.label().to_string()
            },
            points: points
                .into_iter()
                .filter_map(|(x, (vs, ok))| Some((f64::from_bits(x), Figure::of(&vs)?.median, ok)))
                .collect(),
            dashed: false,
        })
        .collect();
    (series, left_out)
}

/// The rate and payload of an entry's point, as a line's label.
pub(crate) fn rate_and_payload(r: &TransportResult) -> String {
    r.point
        .map(|p| format!("{}/s, {} B", p.rate, p.payload_bytes))
        .unwrap_or_default()
}

pub(crate) fn latency_against_clients(
    run: &RunFile,
    title: &str,
    what: &str,
    pick: fn(&TransportResult) -> u64,
) -> anyhow::Result<String> {
    let (series, left_out) = sweep_series(
        run,
        |r| r.point.map(|p| p.clients as f64),
        |r| (r.latency.count > 0).then(|| pick(r) as f64 / 1000.0),
        rate_and_payload,
    );
    render(&XyChart {
        title: titled(run, title),
        x_desc: "clients".into(),
        y_desc: format!("{what} latency (ms)"),
        no_data: "no data: no latency was recorded at any point".into(),
        x_label: number_label,
        y_label: ms_label,
        series,
        left_out,
        reference: Reference::None,
    })
}

/// A sweep's median latency against clients, one line per transport.
pub fn p50_svg(run: &RunFile) -> anyhow::Result<String> {
    latency_against_clients(run, "Median latency against clients", "median", |r| {
        r.latency.p50
    })
}

/// A sweep's p99 latency against clients, one line per transport.
pub fn p99_svg(run: &RunFile) -> anyhow::Result<String> {
    latency_against_clients(run, "p99 latency against clients", "p99", |r| r.latency.p99)
}

/// A sweep's delivered events/s against offered events/s (what the
/// clients should have received per second), with the ideal y = x.
pub fn throughput_svg(run: &RunFile) -> anyhow::Result<String> {
    let offered = |r: &TransportResult| {
        (r.window_s > 0.0 && r.counts.expected > 0).then(|| r.counts.expected as f64 / r.window_s)
    };
    let delivered = |r: &TransportResult| metric("delivered_per_s").and_then(|m| (m.value)(r));
    let (series, left_out) = sweep_series(run, offered, delivered, |_| String::new());
    render(&XyChart {
        title: titled(run, "Delivered against offered events per second"),
        x_desc: "offered events/s (all clients: events due to them per second)".into(),
        y_desc: "delivered events/s".into(),
        no_data: "no data: no point had events due in its window".into(),
        x_label: number_label,
        y_label: number_label,
        series,
        left_out,
        reference: Reference::Diagonal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_go_log_when_wide_and_tick_inside() {
        let s = Scale::fit([100.0, 10_000.0].into_iter(), false);
        assert!(s.log && s.lo < 100.0 && s.hi > 10_000.0);
        assert!(s.ticks().iter().all(|t| (s.lo..=s.hi).contains(t)));
        assert!(s.frac(100.0) < s.frac(1000.0) && s.frac(1000.0) < s.frac(10_000.0));
        let s = Scale::fit([2.0, 4.0].into_iter(), true);
        assert!(!s.log && s.lo == 0.0 && s.hi > 4.0);
        let t = s.ticks();
        assert!(t.len() >= 3 && t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
        let empty = Scale::fit(std::iter::empty(), false);
        assert!(!empty.log && empty.hi > empty.lo);
    }
}
