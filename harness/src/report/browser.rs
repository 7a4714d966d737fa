//! "What a browser sees": the browser clients' figures (`--browser-clients`)
//! beside the fleet's, per transport, and what they cost the browser.

use crate::report::format::{escape_md, format_ms};
use crate::report::plot::{BROWSER_SVG, has_browser_clients};
use crate::results::{RunFile, Summary, TransportResult};
use std::fmt::Write as _;

fn ms(s: &Summary, pick: fn(&Summary) -> u64) -> String {
    if s.count == 0 {
        "–".into()
    } else {
        format_ms(pick(s) as f64 / 1000.0)
    }
}

/// The section: one row per entry with browser clients, then the chart.
pub(crate) fn browser_section(md: &mut String, run: &RunFile) {
    if !has_browser_clients(run) {
        return;
    }
    md.push_str("## What a browser sees\n\n");
    md.push_str(
        "Beside the fleet, headless Chromium pages spoke each transport with the browser's own \
         API — a `fetch` short-polling loop, a `fetch` long-polling loop, `EventSource`, \
         `WebSocket` (none for the raw-TCP floor) — against the same server at the same time. \
         Their latency runs from the event's scheduled emission to the page's \
         `performance.timeOrigin + performance.now()` (one clock; Chromium coarsens it to \
         0.1 ms), over the same window, and they are verified like the fleet's clients (every \
         id once, in order). The difference from the fleet is what the browser's networking, \
         event loop and client API add. *Browser CPU* is node and Chromium as a share of the \
         fleet's cores; a saturated browser marks the entry generator-bound.\n\n",
    );
    md.push_str(
        "| transport | pages | status | browser p50 (ms) | browser p99 (ms) | browser max (ms) | fleet p50 (ms) | fleet p99 (ms) | delivered | expected | missing | dup | out of order | reconnects | browser CPU |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let several = run.transports.iter().any(|t| t.repetition > 1);
    for t in run.transports.iter().filter(|t| t.browser.is_some()) {
        row(md, t, several);
    }
    md.push('\n');
    for t in &run.transports {
        if let Some(b) = &t.browser {
            for p in b.problems.iter().chain(b.console_errors.iter().take(3)) {
                let _ = writeln!(md, "- {}: {}", escape_md(&t.label()), escape_md(p));
            }
        }
    }
    let _ = writeln!(md, "\n![browser and fleet latency]({BROWSER_SVG})\n");
}

fn row(md: &mut String, t: &TransportResult, several: bool) {
    let Some(b) = &t.browser else { return };
    let label = if several {
        format!("{} #{}", t.label(), t.repetition)
    } else {
        t.label()
    };
    let status = match (b.verified, b.saturated) {
        (true, false) => "✓ verified",
        (true, true) => "✓ verified ⚠ saturated",
        (false, _) => "✗ not verified",
    };
    let _ = writeln!(
        md,
        "| {} | {} | {status} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} % |",
        escape_md(&label),
        b.clients,
        ms(&b.latency, |s| s.p50),
        ms(&b.latency, |s| s.p99),
        ms(&b.latency, |s| s.max),
        ms(&t.latency, |s| s.p50),
        ms(&t.latency, |s| s.p99),
        b.delivered,
        b.expected,
        b.missing,
        b.duplicated,
        b.out_of_order,
        b.reconnects,
        b.cpu_share * 100.0
    );
}
