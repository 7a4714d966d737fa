//! Browser against fleet latency (`--browser-clients`): per transport two
//! bars, the fleet's and the browser's, each dark up to p50 and pale up to
//! p99, in the transport's colour. Short polling is left out when other
//! transports are there (its half-second p50 would flatten them; its
//! figures are in the table).

use crate::report::format::format_ms;
use crate::report::plot::bars::{Bar, BarChart, draw_bars};
use crate::report::plot::style::{entry_colour, titled};
use crate::results::{RunFile, Summary};
use plotters::prelude::*;
use protocol::TransportKind;

fn segments(s: &Summary, c: RGBColor) -> Option<(Vec<(f64, RGBAColor)>, String)> {
    (s.count > 0).then(|| {
        let (p50, p99) = (s.p50 as f64 / 1000.0, s.p99 as f64 / 1000.0);
        (
            vec![(p50, c.to_rgba()), ((p99 - p50).max(0.0), c.mix(0.35))],
            format!("{} / {}", format_ms(p50), format_ms(p99)),
        )
    })
}

/// The chart.
pub fn browser_svg(run: &RunFile) -> anyhow::Result<String> {
    let mut chart = BarChart {
        title: titled(run, "Browser and fleet latency"),
        y_desc: "latency (ms)",
        bars: Vec::new(),
        floor: None,
        legend: vec![
            (BLACK.mix(0.85), "dark: p50".into()),
            (BLACK.mix(0.3), "pale: up to p99".into()),
        ],
        notes: Vec::new(),
    };
    let several = run.transports.iter().any(|t| t.repetition > 1);
    let with: Vec<_> = run
        .transports
        .iter()
        .filter(|t| t.browser.is_some())
        .collect();
    let others = with.iter().any(|t| t.transport != TransportKind::ShortPoll);
    for t in with {
        let Some(b) = &t.browser else { continue };
        if others && t.transport == TransportKind::ShortPoll {
            chart
                .notes
                .push("short polling left out (see the table)".into());
            continue;
        }
        let c = entry_colour(t.transport, t.target.as_deref());
        let name = if several {
            format!("#{} ", t.repetition)
        } else {
            String::new()
        };
        if !chart.legend.iter().any(|(_, l)| *l == t.label()) {
            chart.legend.push((c.to_rgba(), t.label()));
        }
        for (who, s, valid) in [
            ("fleet", &t.latency, t.verified && !t.fleet.generator_bound),
            ("browser", &b.latency, b.verified && !b.saturated),
        ] {
            match segments(s, c) {
                Some((segments, label)) => chart.bars.push(Bar {
                    name: format!("{name}{who}"),
                    segments,
                    range: None,
                    label: if valid { label } else { format!("{label} ✗") },
                    valid,
                }),
                None => chart
                    .notes
                    .push(format!("{} {name}{who} (no data)", t.label())),
            }
        }
    }
    draw_bars(&chart)
}
