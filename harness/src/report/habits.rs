//! Report sections about the clients' habits and how exact the server's
//! CPU figures are.
//!
//! "Client habits": what the scenario's `[behaviour]` (or each group's)
//! made clients do (pings, reading pauses, unexpected messages), beside the
//! latency and server memory they were measured with, so a reader sees what
//! a real client's habits cost against a polite run of the same workload.
//!
//! "CPU resolution": a CPU figure read from `/proc`'s 10 ms clock ticks can
//! be off by a tick at each end of the window; where that is more than 5 %
//! of the figure ([`CPU_QUANTISATION_MARK`]) it is named, so short runs are
//! not read as exact. push-server reports its own CPU clock in nanoseconds,
//! which the harness prefers.

use crate::report::format::{escape_md, format_ms};
use crate::results::{CPU_QUANTISATION_MARK, RunFile, TransportResult};
use std::fmt::Write as _;

/// The entries (and mixed groups) whose clients had habits.
pub(crate) fn with_habits(run: &RunFile) -> Vec<(String, &TransportResult)> {
    let mut out = Vec::new();
    for r in &run.transports {
        if r.groups.is_empty() {
            if !r.habits.is_none() {
                out.push((format!("{} (rep. {})", r.label(), r.repetition), r));
            }
        } else {
            for g in &r.groups {
                if !g.result.habits.is_none() {
                    out.push((
                        format!("group `{}` ({})", g.name, g.result.label()),
                        &g.result,
                    ));
                }
            }
        }
    }
    out
}

/// The scenario's habits in words, from the stored scenario.
pub(crate) fn described(run: &RunFile) -> Option<String> {
    let b = run.scenario.get("behaviour")?;
    let b: crate::scenario::behaviour::Behaviour = serde_json::from_value(b.clone()).ok()?;
    Some(b.describe())
}

/// The "Client habits" section (nothing when every client was polite).
pub(crate) fn habits(md: &mut String, run: &RunFile) {
    let entries = with_habits(run);
    if entries.is_empty() {
        return;
    }
    md.push_str("## Client habits\n\n");
    if let Some(d) = described(run) {
        let _ = writeln!(md, "Clients behaved like real ones: {}.", escape_md(&d));
    }
    md.push_str(
        "Counts are over the whole run, summed over clients. Verification is the same as for \
         polite clients (every id once, in order). A paused reader's events wait first in the \
         kernel's socket buffers (the kernel TCP memory column: both ends of every loopback \
         connection), and only once those are full in the server's own buffers (its RSS); \
         compare both with a polite run of the same workload.\n\n\
         | entry | pings | pauses | paused | unexpected sent | error replies | verified | p50 (ms) | p99 (ms) | server RSS peak | kernel TCP memory peak |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, r) in entries {
        let h = &r.habits;
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1048576.0);
        let rss = r
            .server
            .as_ref()
            .map_or("–".to_string(), |s| mib(s.rss_peak_bytes));
        let kernel = r
            .server
            .as_ref()
            .and_then(|s| s.tcp_mem_peak_bytes)
            .map_or("–".to_string(), mib);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} s | {} | {} | {} | {} | {} | {} | {} |",
            escape_md(&label),
            h.pings,
            h.pauses,
            h.paused_us as f64 / 1e6,
            h.junk,
            h.error_replies,
            if r.verified { "yes" } else { "**no**" },
            format_ms(r.latency.p50 as f64 / 1000.0),
            format_ms(r.latency.p99 as f64 / 1000.0),
            rss,
            kernel,
        );
    }
    md.push('\n');
}

/// Names the entries whose server CPU figure is quantised by more than
/// [`CPU_QUANTISATION_MARK`] (clock ticks over a short window).
pub(crate) fn cpu_resolution(md: &mut String, run: &RunFile) {
    let coarse: Vec<String> = run
        .transports
        .iter()
        .filter_map(|r| {
            let s = r.server.as_ref()?;
            let q = s.cpu_quantisation();
            (q > CPU_QUANTISATION_MARK).then(|| {
                format!(
                    "{} (rep. {}): ±{:.0} % ({} s resolution)",
                    r.label(),
                    r.repetition,
                    (q * 100.0).min(999.0),
                    s.cpu_resolution_s
                )
            })
        })
        .collect();
    if coarse.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "> **CPU resolution:** these server CPU figures come from `/proc`'s clock ticks over a \
         window too short for them, and may be off by more than {:.0} %: {}. push-server reports \
         its own CPU clock (ns) in `/stats`; targets that do not are read in ticks.\n",
        CPU_QUANTISATION_MARK * 100.0,
        escape_md(&coarse.join("; "))
    );
}
