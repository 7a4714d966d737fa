//! `report.md` and its charts, derived from `run.json` alone.
//!
//! Raw results are stored; every figure in a report is computed here, at
//! render time, from one table of metric definitions ([`METRICS`]: key,
//! label, unit, which direction is better, and a function of a
//! [`TransportResult`]). Adding a metric is adding a row; the summary table,
//! the definitions section and the headline all follow from it.
//!
//! Validity comes before speed: a transport that did not verify is marked
//! "✗ not verified", its problems are listed, and its speed figures are
//! struck through, never shown as if they were valid. The headline only
//! considers verified transports.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use protocol::TransportKind;
use serde_json::Value;

use crate::plot;
use crate::results::{self, RunFile, TransportResult};

/// File name of the Markdown report inside a run directory.
pub const REPORT_MD: &str = "report.md";

/// The unit a metric is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds (latencies and connect times; stored as µs, shown as ms).
    Ms,
    /// Events per second.
    PerSecond,
    /// A whole count.
    Count,
    /// A dimensionless ratio.
    Ratio,
}

impl Unit {
    /// Short suffix for a column header (empty when the label says it all).
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            // Rates carry their unit in the label ("delivered/s").
            Unit::PerSecond | Unit::Count | Unit::Ratio => "",
        }
    }

    /// Formats a value of this unit with a precision that suits it.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Ms => format_ms(v),
            Unit::Count => format!("{v:.0}"),
            Unit::PerSecond | Unit::Ratio => format_significant(v),
        }
    }
}

/// Which direction of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller values are better (latency, losses, errors).
    Lower,
    /// Larger values are better (throughput).
    Higher,
    /// Neither: context, not a score (e.g. events expected).
    Neither,
}

impl Better {
    /// Words for the definitions table.
    pub fn describe(self) -> &'static str {
        match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
            Better::Neither => "—",
        }
    }
}

/// One metric: how to name, show, rank and compute it.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Stable identifier (for scripts and future CSV/HTML output).
    pub key: &'static str,
    /// Column header.
    pub label: &'static str,
    /// Unit the value is returned and shown in.
    pub unit: Unit,
    /// Which direction is better.
    pub better: Better,
    /// Whether this is a speed figure, meaningless unless the transport verified
    /// (a transport that drops events can look fast). Correctness counts stay
    /// valid: they are the evidence of the failure.
    pub speed: bool,
    /// One-line definition for the report.
    pub description: &'static str,
    /// The value for one transport, `None` when it does not apply or there is no data.
    pub value: fn(&TransportResult) -> Option<f64>,
}

/// µs → ms, or `None` for a histogram without samples.
fn ms(count: u64, us: u64) -> Option<f64> {
    (count > 0).then(|| us as f64 / 1000.0)
}

/// Every metric a report shows, in column order.
pub const METRICS: &[Metric] = &[
    Metric {
        key: "latency_p50",
        label: "p50",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "median latency (receive time − scheduled emission time)",
        value: |r| ms(r.latency.count, r.latency.p50),
    },
    Metric {
        key: "latency_p90",
        label: "p90",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "90th percentile latency",
        value: |r| ms(r.latency.count, r.latency.p90),
    },
    Metric {
        key: "latency_p99",
        label: "p99",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "99th percentile latency",
        value: |r| ms(r.latency.count, r.latency.p99),
    },
    Metric {
        key: "latency_p999",
        label: "p99.9",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "99.9th percentile latency",
        value: |r| ms(r.latency.count, r.latency.p999),
    },
    Metric {
        key: "latency_max",
        label: "max",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "largest latency observed",
        value: |r| ms(r.latency.count, r.latency.max),
    },
    Metric {
        key: "connect_p50",
        label: "connect p50",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "median connection set-up time (first response, for polling)",
        value: |r| ms(r.connect.count, r.connect.p50),
    },
    Metric {
        key: "connect_p99",
        label: "connect p99",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "99th percentile connection set-up time",
        value: |r| ms(r.connect.count, r.connect.p99),
    },
    Metric {
        key: "delivered_per_s",
        label: "delivered/s",
        unit: Unit::PerSecond,
        better: Better::Higher,
        speed: true,
        description: "events delivered per second, all clients together, over the measured window",
        value: |r| (r.window_s > 0.0 && r.delivered_per_s.is_finite()).then_some(r.delivered_per_s),
    },
    Metric {
        key: "expected",
        label: "expected",
        unit: Unit::Count,
        better: Better::Neither,
        speed: false,
        description: "events the clients should have received (scheduled in the window on their topics)",
        value: |r| Some(r.counts.expected as f64),
    },
    Metric {
        key: "delivered",
        label: "delivered",
        unit: Unit::Count,
        better: Better::Higher,
        speed: false,
        description: "distinct expected events received",
        value: |r| Some(r.counts.delivered as f64),
    },
    Metric {
        key: "missing",
        label: "missing",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "expected events never received",
        value: |r| Some(r.counts.missing as f64),
    },
    Metric {
        key: "duplicated",
        label: "dup",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "extra copies of events already received",
        value: |r| Some(r.counts.duplicated as f64),
    },
    Metric {
        key: "out_of_order",
        label: "out of order",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "events received after an event with a higher id",
        value: |r| Some(r.counts.out_of_order as f64),
    },
    Metric {
        key: "requests_per_event",
        label: "req/event",
        unit: Unit::Ratio,
        better: Better::Lower,
        speed: true,
        description: "HTTP requests per delivered event (polling transports only)",
        value: |r| {
            (r.transport.is_polling() && r.counts.delivered > 0)
                .then(|| r.counts.requests as f64 / r.counts.delivered as f64)
        },
    },
    Metric {
        key: "errors",
        label: "errors",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "errors reported by clients (connect failures, bad responses…)",
        value: |r| Some(r.counts.errors as f64),
    },
];

/// The metric with this key.
pub fn metric(key: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.key == key)
}

/// Reads `dir/run.json` and (re)writes `dir/report.md` and `dir/latency.svg`.
///
/// This is all `pushbench report DIR` does, so a report can be regenerated
/// (after a change to the report code, say) without re-running anything.
pub fn render_dir(dir: &Path) -> anyhow::Result<()> {
    let run = results::read_run(dir)?;
    let md = render_markdown(&run);
    results::write_atomic(&dir.join(REPORT_MD), md.as_bytes())?;
    plot::write_latency_spectrum(&run, &dir.join(plot::LATENCY_SVG))
        .with_context(|| format!("writing {}", dir.join(plot::LATENCY_SVG).display()))
}

/// Renders the whole `report.md` for a run.
pub fn render_markdown(run: &RunFile) -> String {
    let mut md = String::new();
    let name = scenario_name(&run.scenario).unwrap_or_else(|| "unnamed scenario".to_string());
    let _ = writeln!(md, "# pushbench: {}\n", escape_md(&name));
    if let Some(desc) = lookup_str(&run.scenario, &["description"]) {
        let _ = writeln!(md, "{}\n", escape_md(&one_line(&desc)));
    }
    let _ = writeln!(md, "**Scenario:** {}\n", scenario_line(run));
    if !run.complete {
        md.push_str(
            "> **⚠ Incomplete run:** not every planned transport ran to the end; \
             transports missing below were not measured.\n\n",
        );
    }
    let _ = writeln!(md, "{}\n", headline(run));

    md.push_str("## Summary\n\n");
    summary_table(&mut md, run);
    problems(&mut md, run);

    md.push_str("## Latency percentile spectrum\n\n");
    md.push_str("![latency percentile spectrum](latency.svg)\n\n");

    how_to_read(&mut md, run);
    definitions(&mut md);
    provenance(&mut md, run);
    md.push_str(
        "---\n\nThis report is derived from `run.json` alone. Regenerate it (and `latency.svg`) \
         with `pushbench report DIR`, where `DIR` is the directory holding this file.\n",
    );
    md
}

/// The headline: which verified transport had the lowest p50 and p99 latency.
fn headline(run: &RunFile) -> String {
    let verified: Vec<&TransportResult> = run.transports.iter().filter(|r| r.verified).collect();
    let invalid: Vec<&str> = run
        .transports
        .iter()
        .filter(|r| !r.verified)
        .map(|r| r.transport.label())
        .collect();
    let mut line = String::from("**Headline:** ");
    if run.transports.is_empty() {
        line.push_str("no transport was measured.");
        return line;
    }
    let best = |key: &str| -> Option<String> {
        let m = metric(key)?;
        let values: Vec<(&str, f64)> = verified
            .iter()
            .filter_map(|r| (m.value)(r).map(|v| (r.transport.label(), v)))
            .collect();
        let min = values.iter().map(|&(_, v)| v).fold(f64::INFINITY, f64::min);
        let names: Vec<&str> = values
            .iter()
            .filter(|&&(_, v)| v == min)
            .map(|&(n, _)| n)
            .collect();
        (!names.is_empty())
            .then(|| format!("**{}** ({} ms)", names.join("** and **"), format_ms(min)))
    };
    match (best("latency_p50"), best("latency_p99")) {
        (Some(p50), Some(p99)) => {
            let _ = write!(
                line,
                "lowest median (p50) latency: {p50}; lowest p99 latency: {p99}; among {} verified transport{}.",
                verified.len(),
                if verified.len() == 1 { "" } else { "s" }
            );
        }
        _ if verified.is_empty() => {
            line.push_str("no transport verified, so no speed figure in this run is valid.");
        }
        _ => line.push_str("no verified transport recorded latency samples."),
    }
    if !invalid.is_empty() && !verified.is_empty() {
        let _ = write!(
            line,
            " Not verified, figures invalid: {}.",
            invalid.join(", ")
        );
    }
    line
}

/// The one summary table: rows = transports, columns = [`METRICS`].
fn summary_table(md: &mut String, run: &RunFile) {
    if run.transports.is_empty() {
        md.push_str("No transport results in this run.\n\n");
        return;
    }
    md.push_str("| transport | status |");
    for m in METRICS {
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
    md.push_str(&"---:|".repeat(METRICS.len()));
    md.push('\n');

    // Best value of each speed metric among verified transports, to set in bold
    // (only when there is a real comparison: two or more values that differ).
    let best: Vec<Option<f64>> = METRICS
        .iter()
        .map(|m| {
            if !m.speed || m.better == Better::Neither {
                return None;
            }
            let vals: Vec<f64> = run
                .transports
                .iter()
                .filter(|r| r.verified)
                .filter_map(|r| (m.value)(r))
                .collect();
            let (lo, hi) = vals
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            (vals.len() >= 2 && lo < hi).then_some(if m.better == Better::Lower { lo } else { hi })
        })
        .collect();

    for r in &run.transports {
        let status = if r.verified {
            "✓ verified"
        } else {
            "✗ not verified"
        };
        let _ = write!(md, "| {} | {status} |", r.transport.label());
        for (m, best) in METRICS.iter().zip(&best) {
            let cell = match (m.value)(r) {
                None => "–".to_string(),
                // Struck through: shown for diagnosis, never readable as a valid figure.
                Some(v) if m.speed && !r.verified => format!("~~{}~~", m.unit.format(v)),
                Some(v) if Some(v) == *best => format!("**{}**", m.unit.format(v)),
                Some(v) => m.unit.format(v),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md.push_str(
        "\n✓ verified = every expected event delivered exactly once and in order, every client \
         connected. Bold = best among verified transports; ~~struck~~ = invalid (transport did \
         not verify); – = not applicable or no data.\n\n",
    );
}

/// Why each unverified transport failed.
fn problems(md: &mut String, run: &RunFile) {
    let failed: Vec<&TransportResult> = run.transports.iter().filter(|r| !r.verified).collect();
    if failed.is_empty() {
        return;
    }
    md.push_str("### Problems\n\n");
    for r in failed {
        let _ = writeln!(md, "**✗ {} — not verified:**\n", r.transport.label());
        if r.problems.is_empty() {
            md.push_str("- (no reason recorded)\n");
        }
        for p in &r.problems {
            let _ = writeln!(md, "- {}", escape_md(&one_line(p)));
        }
        md.push('\n');
    }
}

/// The "how to read" paragraph.
fn how_to_read(md: &mut String, run: &RunFile) {
    md.push_str("## How to read this report\n\n");
    md.push_str(
        "**Latency** is the client's receive time minus the event's *scheduled* emission time \
         (`emitted_at_us`), on one clock. The generator runs open-loop on its schedule, so a \
         stalled generator, a slow server, queueing and a poll interval all show up as latency \
         (no coordinated omission). The spectrum plots latency against percentile on a \"nines\" \
         scale: the right-hand side is the tail a few unlucky events see; each line ends at the \
         highest percentile its sample count can resolve, at its maximum. A dashed line is a \
         transport that did not verify. **Missing**, **dup** and **out of order** come from the \
         per-topic event ids, which are contiguous from 1, so every loss, duplicate and reordering \
         is counted; any of them fails verification. ",
    );
    let half = lookup_duration(&run.scenario, "poll_interval")
        .and_then(|d| humantime::parse_duration(&d).ok())
        .map(|d| format!(" (here ≈ {})", humantime::format_duration(d / 2)));
    let _ = write!(
        md,
        "**Short polling**'s latency is about half its poll interval at p50{} and up to a whole \
         interval at the tail, by design: an event waits for the next poll. Its requests per \
         event show what that costs the server.\n\n",
        half.unwrap_or_default()
    );
}

/// The metric definitions, generated from [`METRICS`].
fn definitions(md: &mut String) {
    md.push_str(
        "### Metric definitions\n\n| column | unit | better | definition |\n|---|---|---|---|\n",
    );
    for m in METRICS {
        let unit = match m.unit {
            Unit::Ms => "ms",
            Unit::PerSecond => "events/s",
            Unit::Count => "count",
            Unit::Ratio => "ratio",
        };
        let _ = writeln!(
            md,
            "| {} | {unit} | {} | {} |",
            m.label,
            m.better.describe(),
            m.description
        );
    }
    md.push('\n');
}

/// Where and how the run was made.
fn provenance(md: &mut String, run: &RunFile) {
    let p = &run.provenance;
    md.push_str("## Provenance\n\n");
    let rows = [
        ("pushbench", p.pushbench_version.clone()),
        ("commit", p.git_commit.clone()),
        ("host", p.host.clone()),
        ("CPU", p.cpu_model.clone()),
        ("cores", p.cores.to_string()),
        ("kernel", p.kernel.clone()),
        ("rustc", p.rustc.clone()),
        ("started at", p.started_at.clone()),
    ];
    for (k, v) in rows {
        let v = if v.trim().is_empty() {
            "unknown".to_string()
        } else {
            one_line(&v)
        };
        let _ = writeln!(md, "- {k}: {}", code_span(&v));
    }
    let _ = writeln!(
        md,
        "- command line:\n\n```sh\n{}\n```\n",
        shell_join(&p.command_line)
    );
}

/// The scenario's name, if it has one.
pub fn scenario_name(scenario: &Value) -> Option<String> {
    lookup_str(scenario, &["name"]).map(|s| one_line(&s))
}

/// The short scenario line: clients, topics, rate, payload, warm-up, window, poll interval.
///
/// The scenario is stored as free JSON (its layout belongs to the scenario
/// module), so each item is looked up by its usual names, at the top level or
/// one object down, and left out when absent.
fn scenario_line(run: &RunFile) -> String {
    let s = &run.scenario;
    let mut items = Vec::new();
    let clients = lookup_str(s, &["clients"]).or_else(|| {
        // Fall back to what the transports report, if they agree.
        let first = run.transports.first()?.clients;
        run.transports
            .iter()
            .all(|r| r.clients == first)
            .then(|| first.to_string())
    });
    if let Some(c) = clients {
        items.push(counted(&c, "client"));
    }
    if let Some(t) = lookup_str(s, &["topics"]) {
        items.push(counted(&t, "topic"));
    }
    if let Some(r) = lookup_str(
        s,
        &[
            "rate",
            "rate_per_topic",
            "events_per_s",
            "events_per_second",
        ],
    ) {
        items.push(format!("{} events/s per topic", escape_md(&r)));
    }
    if let Some(b) = lookup_str(s, &["payload_bytes", "payload"]) {
        items.push(format!("{} B payload", escape_md(&b)));
    }
    if let Some(w) = lookup_duration(s, "warmup").or_else(|| lookup_duration(s, "warm_up")) {
        items.push(format!("warm-up {}", escape_md(&w)));
    }
    let window = lookup_duration(s, "duration")
        .or_else(|| lookup_duration(s, "window"))
        .or_else(|| {
            let first = run.transports.first()?.window_s;
            run.transports
                .iter()
                .all(|r| r.window_s == first)
                .then(|| format!("{}s", format_significant(first)))
        });
    if let Some(w) = window {
        items.push(format!("measured window {}", escape_md(&w)));
    }
    // The poll interval only shapes short polling; elsewhere it is noise.
    let short_poll = TransportKind::ShortPoll;
    let polls = run.transports.iter().any(|r| r.transport == short_poll)
        || lookup(s, "transports")
            .and_then(Value::as_array)
            .is_some_and(|ts| ts.iter().any(|t| t.as_str() == Some(short_poll.as_str())));
    if let Some(p) = lookup_duration(s, "poll_interval").filter(|_| polls) {
        items.push(format!("poll interval {}", escape_md(&p)));
    }
    if items.is_empty() {
        "(not recorded)".to_string()
    } else {
        items.join(" · ")
    }
}

/// `1 topic`, `4 topics`.
fn counted(n: &str, noun: &str) -> String {
    let plural = if n == "1" { "" } else { "s" };
    format!("{} {noun}{plural}", escape_md(n))
}

/// A value by key at the top level of `v` or inside one of its object fields.
fn lookup<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).or_else(|| {
        v.as_object()?
            .values()
            .filter(|inner| inner.is_object())
            .find_map(|inner| inner.get(key))
    })
}

/// The first of `keys` present, as display text (strings as they are, numbers as written).
fn lookup_str(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match lookup(v, k)? {
        Value::String(s) => Some(s.clone()),
        // `5.0` reads better as `5`; other numbers as JSON wrote them.
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// A duration named `key` as humantime text (`3s`, `500ms`), whichever way it
/// was stored: a humantime string, serde's `{secs, nanos}`, or a number under
/// `key_s` / `key_ms`.
fn lookup_duration(v: &Value, key: &str) -> Option<String> {
    if let Some(found) = lookup(v, key) {
        match found {
            Value::String(s) => return Some(s.clone()),
            Value::Object(o) => {
                let secs = o.get("secs")?.as_u64()?;
                let nanos = o.get("nanos").and_then(Value::as_u64).unwrap_or(0);
                let d = std::time::Duration::new(secs, u32::try_from(nanos).ok()?);
                return Some(humantime::format_duration(d).to_string());
            }
            _ => {}
        }
    }
    for (suffix, per_s) in [("_s", 1.0), ("_secs", 1.0), ("_ms", 1e-3)] {
        if let Some(n) = lookup(v, &format!("{key}{suffix}")).and_then(Value::as_f64) {
            let secs = n * per_s;
            if secs.is_finite() && secs >= 0.0 {
                let d = std::time::Duration::from_secs_f64(secs.min(1e12));
                return Some(humantime::format_duration(d).to_string());
            }
        }
    }
    None
}

/// Formats milliseconds with about three significant digits (HDR histograms
/// keep three): `0.412`, `4.12`, `41.2`, `412`, `4123`.
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".to_string();
    }
    let a = ms.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a < 1.0 {
        format!("{ms:.3}")
    } else if a < 10.0 {
        format!("{ms:.2}")
    } else if a < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// Formats a rate or ratio with about three significant digits.
fn format_significant(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Collapses line breaks so free text cannot break a list item or table row.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes the characters that would turn free text into Markdown or HTML.
fn escape_md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Markdown code span that holds any text (backtick fences longer than any run inside).
fn code_span(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Joins arguments as a POSIX shell would need them quoted, so the line can be pasted.
fn shell_join(args: &[String]) -> String {
    if args.is_empty() {
        return "(not recorded)".to_string();
    }
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_precision_follows_magnitude() {
        assert_eq!(format_ms(0.0), "0");
        assert_eq!(format_ms(0.001), "0.001");
        assert_eq!(format_ms(0.4123), "0.412");
        assert_eq!(format_ms(4.123), "4.12");
        assert_eq!(format_ms(41.23), "41.2");
        assert_eq!(format_ms(4123.4), "4123");
        assert_eq!(format_ms(f64::NAN), "–");
    }

    #[test]
    fn metric_keys_are_unique() {
        let mut keys: Vec<_> = METRICS.iter().map(|m| m.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), METRICS.len());
        assert!(metric("latency_p99").is_some() && metric("nope").is_none());
    }

    #[test]
    fn scenario_values_are_found_in_any_usual_shape() {
        let s = serde_json::json!({
            "name": "fanout",
            "fleet": { "clients": 100, "warmup": "2s" },
            "generator": { "rate": 10.5, "topics": 4, "payload_bytes": 256 },
            "duration_s": 10,
            "poll_interval": { "secs": 0, "nanos": 250_000_000 },
        });
        assert_eq!(scenario_name(&s).as_deref(), Some("fanout"));
        assert_eq!(lookup_str(&s, &["clients"]).as_deref(), Some("100"));
        assert_eq!(lookup_str(&s, &["rate"]).as_deref(), Some("10.5"));
        assert_eq!(lookup_duration(&s, "warmup").as_deref(), Some("2s"));
        assert_eq!(lookup_duration(&s, "duration").as_deref(), Some("10s"));
        assert_eq!(
            lookup_duration(&s, "poll_interval").as_deref(),
            Some("250ms")
        );
        assert_eq!(lookup_duration(&s, "absent"), None);
        assert_eq!(scenario_name(&Value::Null), None);
    }

    #[test]
    fn free_text_is_escaped_and_quoted() {
        assert_eq!(escape_md("a|b *c* <x>"), r"a\|b \*c\* \<x\>");
        assert_eq!(one_line("two\nlines  here"), "two lines here");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(
            shell_join(&[
                "pushbench".into(),
                "run".into(),
                "--out".into(),
                "my dir".into(),
                "it's".into()
            ]),
            r"pushbench run --out 'my dir' 'it'\''s'"
        );
    }
}
