//! The sections a report is built from: the headline, a metric table, the
//! floor and target notes, faults, chat, problems, cost and the kernel's
//! TCP memory. Each appends Markdown to a string and reads only `run.json`.

use crate::report::about::server_settings;
use crate::report::format::{escape_md, format_ms, format_significant, one_line};
use crate::report::habits::cpu_resolution;
use crate::report::metrics::{Better, Group, METRICS, Metric, metric, ms};
use crate::report::plot::spectra::spectrum_series;
use crate::report::plot::{
    CHAT_SVG, CONNECTED_SVG, FAULTS_SVG, LATENCY_SVG, RECONNECT_SVG, has_chat, has_faults,
    plots_for,
};
use crate::report::rows::Row;
use crate::results::{RunFile, TransportResult};
use std::fmt::Write as _;

/// The headline: which contending transport had the lowest p50 and p99
/// latency (medians over repetitions).
pub(crate) fn headline(rows: &[Row]) -> String {
    let contenders: Vec<&Row> = rows.iter().filter(|r| r.contends()).collect();
    let invalid: Vec<String> = rows
        .iter()
        .filter(|r| !r.verified)
        .map(Row::label)
        .collect();
    let mut line = String::from("**Headline:** ");
    if rows.is_empty() {
        line.push_str("no transport was measured.");
        return line;
    }
    let best = |key: &str| -> Option<String> {
        let m = metric(key)?;
        let values: Vec<(String, f64)> = contenders
            .iter()
            .filter_map(|r| r.figure(m).map(|f| (r.label(), f.median)))
            .collect();
        let min = values.iter().map(|&(_, v)| v).fold(f64::INFINITY, f64::min);
        let names: Vec<&str> = values
            .iter()
            .filter(|&(_, v)| *v == min)
            .map(|(n, _)| n.as_str())
            .collect();
        (!names.is_empty())
            .then(|| format!("**{}** ({} ms)", names.join("** and **"), format_ms(min)))
    };
    match (best("latency_p50"), best("latency_p99")) {
        (Some(p50), Some(p99)) => {
            let _ = write!(
                line,
                "lowest median (p50) latency: {p50}; lowest p99 latency: {p99}; among {} verified transport{}.",
                contenders.len(),
                if contenders.len() == 1 { "" } else { "s" }
            );
        }
        _ if contenders.is_empty() => {
            if rows.iter().any(|r| r.verified && !r.is_floor()) {
                line.push_str(
                    "every verified transport was generator-bound, so no latency in this run \
                     describes the server.",
                );
            } else {
                line.push_str("no transport verified, so no speed figure in this run is valid.");
            }
        }
        _ => line.push_str("no verified transport recorded latency samples."),
    }
    if !invalid.is_empty() && !contenders.is_empty() {
        let _ = write!(
            line,
            " Not verified, figures invalid: {}.",
            invalid.join(", ")
        );
    }
    line
}

/// The status cell of a row.
pub(crate) fn status(row: &Row) -> String {
    let mut s = if row.verified {
        "✓ verified".to_string()
    } else {
        "✗ not verified".to_string()
    };
    if row.generator_bound {
        s.push_str(" ⚠ generator-bound");
    }
    s
}

/// A table of the metrics of `group`: rows = transports, columns = metrics.
pub(crate) fn metric_table(md: &mut String, rows: &[Row], group: Group) {
    if rows.is_empty() {
        md.push_str("No transport results in this run.\n\n");
        return;
    }
    let metrics: Vec<&Metric> = METRICS.iter().filter(|m| m.group == group).collect();
    md.push_str("| transport | status |");
    for m in &metrics {
        match m.unit.suffix() {
            "" => {
                let _ = write!(md, " {} |", m.label);
            }
            s => {
                let _ = write!(md, " {} ({s}) |", m.label);
            }
        }
    }
    md.push_str("\n|---|---|");
    // Every metric is a number: right-align so digits line up.
    md.push_str(&"---:|".repeat(metrics.len()));
    md.push('\n');

    // Best median of each speed metric among contending transports, to set
    // in bold (only when there is a real comparison: two or more that differ).
    let best: Vec<Option<f64>> = metrics
        .iter()
        .map(|m| {
            if !m.speed || m.better == Better::Neither {
                return None;
            }
            let vals: Vec<f64> = rows
                .iter()
                .filter(|r| r.contends())
                .filter_map(|r| r.figure(m).map(|f| f.median))
                .collect();
            let (lo, hi) = vals
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            (vals.len() >= 2 && lo < hi).then_some(if m.better == Better::Lower { lo } else { hi })
        })
        .collect();

    for row in rows {
        let _ = write!(md, "| {} | {} |", row.label(), status(row));
        for (m, best) in metrics.iter().zip(&best) {
            let cell = match row.figure(m) {
                None => "–".to_string(),
                // Struck through: shown for diagnosis, never readable as a valid figure.
                Some(f) if m.speed && !row.verified => format!("~~{}~~", f.format(m.unit)),
                Some(f) if row.contends() && Some(f.median) == *best => {
                    format!("**{}**", f.format(m.unit))
                }
                Some(f) => f.format(m.unit),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    let reps = rows.iter().map(|r| r.entries.len()).max().unwrap_or(1);
    let _ = writeln!(
        md,
        "\n✓ verified = every expected event delivered exactly once and in order, every client \
         connected. Bold = best among verified transports; ~~struck~~ = invalid (transport did \
         not verify); – = not applicable or no data.{}\n",
        if reps > 1 {
            " With repetitions, each cell is the median and, in parentheses, the min–max."
        } else {
            ""
        }
    );
}

/// Why ratios to the floor are missing, if they are.
pub(crate) fn floor_note(md: &mut String, rows: &[Row]) {
    match rows.iter().find(|r| r.is_floor()) {
        None => md.push_str(
            "*No raw-TCP floor (`tcp`) in this run, so the ×floor columns are shown as –. \
             Add `tcp` as the last transport to compare every figure with the floor.*\n\n",
        ),
        Some(f) if !f.verified => md.push_str(
            "*The raw-TCP floor did not verify (see Problems), so ratios to it are shown as – \
             where its figures are invalid.*\n\n",
        ),
        Some(_) => {}
    }
}

/// What a target's cost figures are, and why some are missing: a foreign
/// server has no `/stats`, so nothing counts its bytes.
pub(crate) fn target_note(md: &mut String, rows: &[Row]) {
    let targets: Vec<String> = rows
        .iter()
        .filter(|r| r.target.is_some())
        .map(Row::label)
        .collect();
    if targets.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "*{} {} a target, a server pushbench did not build: {} no `/stats`, so bytes on the \
         wire and requests are not counted (–). Memory and CPU are those of its process and \
         its descendants, from `/proc`, like push-server's.*\n",
        targets.join(", "),
        if targets.len() == 1 { "is" } else { "are" },
        if targets.len() == 1 {
            "it has"
        } else {
            "they have"
        },
    );
}

/// Why each unverified transport failed.
/// The faults injected into each entry and how its clients recovered, with
/// the fault charts (nothing for a run without faults).
pub(crate) fn faults(md: &mut String, run: &RunFile) {
    if !has_faults(run) {
        return;
    }
    md.push_str(
        "## Faults

",
    );
    md.push_str(
        "Each fault as injected: connections the server reset (drop, storm), how long a \
         killed server was down (restart), recoveries completed after the fault (a client's \
         first event after losing its connection) and the slowest of them — when the last \
         client was back — and the server's CPU over the 2 s after a drop or storm. Events a \
         restart lost are in *lost (outage)* above, apart from *missing*.\n\n",
    );
    md.push_str(
        "| transport | fault | at | reset | outage | recovered | all back after | server CPU (2 s) | error |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let ms = |us: Option<u64>| {
        us.map_or("–".to_string(), |v| {
            format!("{:.0} ms", v as f64 / 1000.0)
        })
    };
    for t in &run.transports {
        for f in &t.recovery.faults {
            let at_s = (f.at_us as f64 - t.window_start_us as f64) / 1e6;
            let _ = writeln!(
                md,
                "| {} | {}{} | {at_s:.1} s | {} | {} | {} | {} | {} | {} |",
                t.label(),
                f.kind,
                f.fraction
                    .filter(|_| f.kind == "drop")
                    .map_or(String::new(), |x| format!(" {:.0}%", x * 100.0)),
                f.dropped.map_or("–".to_string(), |n| n.to_string()),
                ms(f.outage_us),
                f.recovered,
                ms(f.all_back_us),
                f.server_cpu_s
                    .map_or("–".to_string(), |c| format!("{:.0} ms", c * 1000.0)),
                f.error.as_deref().map_or(String::new(), md_cell),
            );
        }
    }
    md.push('\n');
    for p in plots_for(run).filter(|p| [FAULTS_SVG, CONNECTED_SVG, RECONNECT_SVG].contains(&p.file))
    {
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }
}

/// The "Chat round trip" section of a chat run: per transport (and
/// repetition), how senders sent, what came back and how fast.
pub(crate) fn chat(md: &mut String, run: &RunFile) {
    if !has_chat(run) {
        return;
    }
    md.push_str(
        "## Chat round trip

",
    );
    md.push_str(
        "Some clients also send: each sender's messages are due on a fixed schedule, and the \
         round trip runs from a message's *due* time (not when it was actually sent, so a \
         late send counts) until the sender's own subscription delivers it back through the \
         broadcast. WebSocket senders send on their own socket (*websocket*); the others \
         `POST /publish` over a connection of their own (*publish*). *Lost*: sent but never \
         back; *send errors*: due but not sent. Round trips include the sender's own timer \
         lateness (about 1 ms with tokio's 1 ms timer tick), alike for every transport. The \
         latency figures above are the broadcast's share (server receipt → each member).\n\n",
    );
    let several = run.transports.iter().any(|t| t.repetition > 1);
    md.push_str(
        "| clients | upstream | senders | rate/sender | sent | back | lost | send errors | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    // Per transport, or per group of a mixed run.
    for (label, t) in spectrum_series(run) {
        let Some(c) = &t.chat else {
            continue;
        };
        let label = if several {
            format!("{label} #{}", t.repetition)
        } else {
            label
        };
        // An unverified transport's speed is struck through, as in every table.
        let q = |us: u64| match ms(c.round_trip.count, us) {
            None => "–".to_string(),
            Some(v) if t.verified => format_ms(v),
            Some(v) => format!("~~{}~~", format_ms(v)),
        };
        let _ = writeln!(
            md,
            "| {label}{} | {} | {} | {}/s | {} | {} | {} | {} | {} | {} | {} | {} |",
            if t.verified { "" } else { " ✗" },
            c.upstream,
            c.senders,
            format_significant(c.send_rate),
            c.sent,
            c.echoed,
            c.lost,
            c.send_errors,
            q(c.round_trip.p50),
            q(c.round_trip.p90),
            q(c.round_trip.p99),
            q(c.round_trip.max),
        );
    }
    md.push('\n');
    for p in plots_for(run).filter(|p| p.file == CHAT_SVG) {
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }
}

/// Text safe inside a Markdown table cell (one line, no column breaks).
pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub(crate) fn problems(md: &mut String, rows: &[Row]) {
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.verified).collect();
    if failed.is_empty() {
        return;
    }
    md.push_str("### Problems\n\n");
    for row in failed {
        let _ = writeln!(md, "**✗ {} — not verified:**\n", row.label());
        let several = row.entries.len() > 1;
        for r in row.entries.iter().filter(|r| !r.verified) {
            let prefix = if several {
                format!("repetition {}: ", r.repetition)
            } else {
                String::new()
            };
            if r.problems.is_empty() {
                let _ = writeln!(md, "- {prefix}(no reason recorded)");
            }
            for p in &r.problems {
                let _ = writeln!(md, "- {prefix}{}", escape_md(&one_line(p)));
            }
        }
        md.push('\n');
    }
}

/// The "Cost" section: the table, its charts, the load generator, the server's settings.
pub(crate) fn cost(md: &mut String, run: &RunFile, rows: &[Row]) {
    md.push_str("## Cost\n\n");
    md.push_str(
        "What each transport cost the server: memory per connection, CPU and bytes on the wire \
         per delivered event, requests per event for polling, and, for idle fleets, bytes per \
         connection per minute. Bytes are counted at the server's sockets (`/stats`), CPU and \
         memory read from `/proc`; window figures are the difference between the start and the \
         end of the measured window, so connection set-up and warm-up are left out. ×floor = \
         the same figure as a multiple of the raw-TCP floor's in the same repetition. The \
         fleet's own CPU and scheduling lag show whether the load generator kept up.\n\n",
    );
    metric_table(md, rows, Group::Cost);
    floor_note(md, rows);
    target_note(md, rows);
    cpu_resolution(md, run);
    let elsewhere = [LATENCY_SVG, FAULTS_SVG, CONNECTED_SVG, RECONNECT_SVG];
    for p in plots_for(run).filter(|p| !elsewhere.contains(&p.file)) {
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }
    let bound: Vec<&TransportResult> = rows
        .iter()
        .flat_map(|r| &r.entries)
        .filter(|r| r.fleet.generator_bound)
        .collect();
    if !bound.is_empty() {
        md.push_str("### Load generator\n\n");
        md.push_str(
            "These runs were limited by the fleet, not the server; their latency is the fleet's:\n\n",
        );
        for r in bound {
            let _ = writeln!(
                md,
                "- {} (repetition {}): {}",
                r.label(),
                r.repetition,
                escape_md(&r.fleet.generator_bound_reasons.join("; "))
            );
        }
        md.push('\n');
    }
    kernel_tcp(md, run);
    server_settings(md, run);
}

/// The kernel's TCP events in each entry's window: on loopback nothing is
/// lost, so a retransmission is a timer that fired on late data or a late
/// ACK, and its timeout (≥ 200 ms) lands in some delivery's latency.
pub(crate) fn kernel_tcp(md: &mut String, run: &RunFile) {
    let entries: Vec<(&TransportResult, crate::results::TcpEvents)> = run
        .transports
        .iter()
        .filter_map(|r| Some((r, r.kernel_tcp?)))
        .collect();
    if entries.is_empty() {
        return;
    }
    md.push_str(
        "### Kernel TCP events in the window

\
         Whole machine (`/proc/net/snmp`, `/proc/net/netstat`), so both ends of every loopback \
         connection. Nothing is lost on loopback: a retransmitted segment is a timer that fired \
         on data or an ACK that was only late, and its timeout (≥ 200 ms) lands in some \
         delivery's latency — the usual cause of a p99 far above the p90.\n\n\
         | transport | retransmitted segments | per 1,000 deliveries | delayed ACKs lost | tail-loss probes | listen-queue overflows |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (r, t) in entries {
        let per_k = if r.counts.delivered > 0 {
            format_significant(t.retrans_segs as f64 * 1000.0 / r.counts.delivered as f64)
        } else {
            "–".to_string()
        };
        let rep = if r.repetition > 1 {
            format!(" (repetition {})", r.repetition)
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| {}{rep} | {} | {per_k} | {} | {} | {} |",
            r.label(),
            t.retrans_segs,
            t.delayed_ack_lost,
            t.loss_probes,
            t.listen_overflows
        );
    }
    md.push('\n');
}
