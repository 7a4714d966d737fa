//! The report of a mixed run (`[[group]]`): client groups of different
//! transports and workloads measured together against one server.
//!
//! A mixed run is not a comparison: its groups do different work, so no
//! group "wins" and the report names no best transport. It states what the
//! run shows instead: each group verified or not, each group's latency
//! under the mix, and what the server paid for all of them together. The
//! groups table has one row per group (per repetition when there are
//! several); the latency spectrum one line per group; the cost section is
//! the entry's, shared by the groups (one server, one fleet).

use crate::report::about::{definitions, preamble, provenance};
use crate::report::format::{escape_md, format_ms, format_significant};
use crate::report::habits::habits;
use crate::report::metrics::ms;
use crate::report::plot::{LATENCY_SVG, plots_for};
use crate::report::rows::rows;
use crate::report::sections::{chat, cost, md_cell, problems};
use crate::results::FLEET_CPU_BOUND;
use crate::results::{GroupResult, RunFile, TransportResult};
use std::fmt::Write as _;

/// Renders the whole `report.md` of a mixed run.
pub fn render_markdown(run: &RunFile) -> String {
    let rows = rows(run);
    let mut md = String::new();
    preamble(&mut md, run);
    let _ = writeln!(md, "{}\n", shows(run));
    if run.generator_bound {
        md.push_str(
            "> **⚠ Generator-bound:** the load generator (the fleet) was saturated or lagging: \
             the groups' latency describes the fleet, not the server (see *Load generator* \
             below).\n\n",
        );
    }
    md.push_str("## Groups\n\n");
    groups_table(&mut md, run);
    problems(&mut md, &rows);
    for p in plots_for(run).filter(|p| p.file == LATENCY_SVG) {
        let _ = writeln!(md, "## {} (one line per group)\n", p.title);
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }
    chat(&mut md, run);
    habits(&mut md, run);
    cost(&mut md, run, &rows);
    how_to_read(&mut md);
    definitions(&mut md);
    provenance(&mut md, run);
    md.push_str(
        "---\n\nThis report is derived from `run.json` alone. Regenerate it (and its SVG charts) \
         with `pushbench report DIR`, where `DIR` is the directory holding this file.\n",
    );
    md
}

/// The mixed entries of `run` with each group, in run order.
pub(crate) fn groups(run: &RunFile) -> impl Iterator<Item = (&TransportResult, &GroupResult)> {
    run.transports
        .iter()
        .flat_map(|e| e.groups.iter().map(move |g| (e, g)))
}

/// The opening line: what the run shows, group by group, and what the
/// server paid for the mix; never a winner.
pub fn shows(run: &RunFile) -> String {
    let mut line = String::from("**What this run shows:** ");
    let entries: Vec<&TransportResult> = run.transports.iter().filter(|e| e.is_mixed()).collect();
    let Some(entry) = entries.first() else {
        line.push_str("no group was measured.");
        return line;
    };
    let failed: Vec<String> = groups(run)
        .filter(|(_, g)| !g.result.verified)
        .map(|(_, g)| escape_md(&g.label()))
        .collect();
    if failed.is_empty() && entry.verified {
        line.push_str("every group received every event due, once and in order, ");
    } else if failed.is_empty() {
        line.push_str("the run itself did not verify (see the problems below), ");
    } else {
        let _ = write!(
            line,
            "not verified, figures invalid: {}; ",
            failed.join(", ")
        );
    }
    let latencies: Vec<String> = entry
        .groups
        .iter()
        .filter(|g| g.result.verified && g.result.latency.count > 0)
        .map(|g| {
            let l = &g.result.latency;
            format!(
                "{} at p50 {} ms and p99 {} ms",
                escape_md(&g.label()),
                format_ms(l.p50 as f64 / 1000.0),
                format_ms(l.p99 as f64 / 1000.0)
            )
        })
        .collect();
    if !latencies.is_empty() {
        let _ = write!(line, "with {} at the same time", latencies.join(", "));
    }
    if let Some(server) = &entry.server {
        let mib = server
            .rss_idle_bytes
            .saturating_sub(server.rss_baseline_bytes) as f64
            / (1024.0 * 1024.0);
        let cpu = if entry.window_s > 0.0 {
            server.cpu_s / entry.window_s * 100.0
        } else {
            0.0
        };
        let _ = write!(
            line,
            "; the one server held all {} connections in {mib:.1} MiB over its baseline and \
             used {cpu:.0} % of a core over the window",
            server.idle_clients
        );
    }
    line.push_str(
        ". A mixed run has no winner: to see what one group costs the others, compare each \
         group's row with a run of that group alone.",
    );
    line
}

/// The groups table: one row per group (and repetition).
pub(crate) fn groups_table(md: &mut String, run: &RunFile) {
    md.push_str(
        "| group | transport | status | clients | topics | rate (events/s per topic) | delivered / expected | missing | dup | out of order | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | connect p50 (ms) | chat round trip p50 (ms) |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let several = run.transports.iter().any(|t| t.repetition > 1);
    for (entry, g) in groups(run) {
        let r = &g.result;
        let name = if several {
            format!("{} #{}", g.name, entry.repetition)
        } else {
            g.name.clone()
        };
        // Struck through when not verified, as in every table of a report.
        let speed = |count: u64, us: u64| match ms(count, us) {
            None => "–".to_string(),
            Some(v) if r.verified => format_ms(v),
            Some(v) => format!("~~{}~~", format_ms(v)),
        };
        let mut status = if r.verified {
            "✓ verified".to_string()
        } else {
            "✗ not verified".to_string()
        };
        if entry.fleet.generator_bound {
            status.push_str(" ⚠ generator-bound");
        }
        let c = &r.counts;
        let l = &r.latency;
        let chat = r.chat.as_ref().map_or_else(
            || "–".to_string(),
            |ch| speed(ch.round_trip.count, ch.round_trip.p50),
        );
        let _ = writeln!(
            md,
            "| {} | {} | {status} | {} of {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {chat} |",
            md_cell(&name),
            r.transport.label(),
            r.clients_connected,
            r.clients,
            g.topics,
            format_significant(g.rate),
            c.delivered,
            c.expected,
            c.missing,
            c.duplicated,
            c.out_of_order,
            speed(l.count, l.p50),
            speed(l.count, l.p90),
            speed(l.count, l.p99),
            speed(l.count, l.max),
            speed(r.connect.count, r.connect.p50),
        );
    }
    md.push('\n');
    md.push_str(
        "Each row is one group's clients, verified against its own topics' schedule: \
         *delivered / expected* counts events due in the measured window on the group's topics, \
         summed over its clients. The groups ran at the same time against one server, so each \
         row's latency is that group's under the whole mix.\n\n",
    );
}

/// How to read a mixed run's report.
pub(crate) fn how_to_read(md: &mut String) {
    md.push_str("## How to read this report\n\n");
    let _ = write!(
        md,
        "**Latency** is the client's receive time minus the event's *scheduled* emission time, \
         on one clock (no coordinated omission). Every group has its own range of topics on \
         the one server (`t{{first}}` onwards, at its own rate), so a group's expected ids come \
         from its schedule alone, and **missing**, **dup** and **out of order** are exact per \
         group. **Cost** figures are the whole server's and the whole fleet's: memory per \
         connection divides by every group's connections, CPU and bytes per event by every \
         group's deliveries. A group's share of them cannot be told apart inside one process; \
         a run of each group alone gives it. **Generator-bound** marks a run whose fleet used \
         ≥ {:.0} % of its cores or fell behind its own timers: its latency is then the fleet's.\n\n",
        FLEET_CPU_BOUND * 100.0,
    );
}
