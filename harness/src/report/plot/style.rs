//! What every chart shares: the canvas size, one colour per transport (and
//! per target), the footer, the "no data" panel and the axis ticks.

use crate::report::about::scenario_name;
use crate::report::format::format_ms;
use crate::results::RunFile;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use protocol::TransportKind;

/// Size of every chart, pixels.
pub const SIZE: (u32, u32) = (900, 520);

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
pub(crate) const TARGET_COLOURS: [RGBColor; 3] = [
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
pub(crate) fn legend_label(c: &Curve) -> String {
    if c.verified {
        c.label.clone()
    } else {
        format!("{} — ✗ not verified, invalid", c.label)
    }
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

/// The x axis of a bar chart: slots `0..n`, each bar centred on its index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexAxis {
    pub(crate) n: usize,
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

/// `Title — scenario name`.
pub(crate) fn titled(run: &RunFile, title: &str) -> String {
    match scenario_name(&run.scenario) {
        Some(name) => format!("{title} — {name}"),
        None => title.to_string(),
    }
}

/// One transport's line on the spectrum.
pub(crate) struct Curve {
    pub(crate) label: String,
    pub(crate) colour: RGBColor,
    pub(crate) verified: bool,
    pub(crate) points: Vec<(f64, f64)>,
}
