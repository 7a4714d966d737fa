//! What a report says about how its run was made: the title and scenario
//! line, the server's settings, how to read the figures, the definitions
//! and the provenance.

use crate::report::format::{
    code_span, counted, escape_md, format_significant, lookup, lookup_duration, lookup_str,
    one_line, shell_join,
};
use crate::report::metrics::METRICS;
use crate::results::FLEET_CPU_BOUND;
use crate::results::FLEET_LAG_BOUND_US;
use crate::results::RunFile;
use protocol::TransportKind;
use serde_json::Value;
use std::fmt::Write as _;

/// The title, description and scenario line of a report, and the warnings
/// that apply to the whole run.
pub(crate) fn preamble(md: &mut String, run: &RunFile) {
    let name = scenario_name(&run.scenario).unwrap_or_else(|| "unnamed scenario".to_string());
    let _ = writeln!(md, "# pushbench: {}\n", escape_md(&name));
    if let Some(desc) = lookup_str(&run.scenario, &["description"]) {
        let _ = writeln!(md, "{}\n", escape_md(&one_line(&desc)));
    }
    let _ = writeln!(md, "**Scenario:** {}\n", scenario_line(run));
    if !run.complete {
        md.push_str(
            "> **⚠ Incomplete run:** not every planned transport ran its whole window \
             (the run was interrupted, or a server died or was lost mid-run): transports \
             missing below were not measured, and those whose problems say so were measured \
             only up to the cut.\n\n",
        );
    }
}

/// The server's settings as its `/stats` states them (buffers included),
/// generically as key/value: a setting that differs between the servers of
/// the run (e.g. the schedule's start) says so.
pub(crate) fn server_settings(md: &mut String, run: &RunFile) {
    let mut keys: Vec<String> = Vec::new();
    let mut values: Vec<Vec<String>> = Vec::new();
    let configs: Vec<&Value> = run
        .transports
        .iter()
        .map(|r| &r.server_config)
        .filter(|c| c.is_object())
        .collect();
    for config in &configs {
        let mut flat = Vec::new();
        flatten("", config, &mut flat);
        for (k, v) in flat {
            match keys.iter().position(|x| *x == k) {
                Some(i) => values[i].push(v),
                None => {
                    keys.push(k);
                    values.push(vec![v]);
                }
            }
        }
    }
    md.push_str("### Server settings\n\n");
    if keys.is_empty() {
        md.push_str("The servers' settings were not recorded.\n\n");
        return;
    }
    md.push_str(
        "As each `push-server` reported them (`/stats` → `config`), buffers included: every \
         transport ran with these (a target reports none; it got the same schedule through \
         its `PUSHBENCH_*` variables).\n\n| setting | value |\n|---|---|\n",
    );
    for (k, vs) in keys.iter().zip(&values) {
        let first = &vs[0];
        let cell = if vs.iter().any(|v| v != first) {
            format!("differs per server (e.g. {})", code_span(first))
        } else if vs.len() < configs.len() {
            format!(
                "{} (reported by {} of {} servers)",
                code_span(first),
                vs.len(),
                configs.len()
            )
        } else {
            code_span(first)
        };
        let _ = writeln!(md, "| {} | {cell} |", escape_md(k));
    }
    md.push('\n');
}

/// Flattens a JSON value into `a.b = text` pairs (objects recurse; anything
/// else is its JSON text, strings without quotes).
pub(crate) fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, inner, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), one_line(s))),
        Value::Null => out.push((prefix.to_string(), "none".to_string())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The "how to read" paragraph.
pub(crate) fn how_to_read(md: &mut String, run: &RunFile) {
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
    let _ = write!(
        md,
        "**The raw-TCP floor** (`tcp`) sends the same event bytes, length-prefixed, over a plain \
         socket from the same server: no HTTP, no framing beyond four bytes. It is what pushing \
         costs on this machine at the least; ×floor columns say how far each transport is from \
         it. **Generator-bound** marks a transport whose fleet used ≥ {:.0} % of its cores over the \
         window, or whose runtime woke a 10 ms timer more than {} ms late at p99: its latency \
         then includes the fleet's own queueing.\n\n",
        FLEET_CPU_BOUND * 100.0,
        FLEET_LAG_BOUND_US / 1000,
    );
    let reps = run
        .transports
        .iter()
        .map(|r| r.repetition)
        .max()
        .unwrap_or(1);
    if reps > 1 {
        let _ = write!(
            md,
            "**Repetitions:** every transport ran {reps} times, in alternating order (ABCD, \
             then DCBA, …) so that slow drift of the machine touches every transport alike. \
             Cells show the median over repetitions and, in parentheses, the min–max; charts \
             show the median with a min–max whisker. `run.json` keeps every repetition.\n\n"
        );
    }
}

/// The metric definitions, generated from [`METRICS`].
pub(crate) fn definitions(md: &mut String) {
    md.push_str(
        "### Metric definitions\n\n| column | unit | better | definition |\n|---|---|---|---|\n",
    );
    for m in METRICS {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            m.label,
            m.unit.name(),
            m.better.describe(),
            m.description
        );
    }
    md.push('\n');
}

/// Where and how the run was made.
pub(crate) fn provenance(md: &mut String, run: &RunFile) {
    let p = &run.provenance;
    md.push_str("## Provenance\n\n");
    let cores = |c: &[usize]| {
        if c.is_empty() {
            "not pinned".to_string()
        } else {
            format!(
                "core{} {}",
                if c.len() == 1 { "" } else { "s" },
                c.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
    };
    let pl = &p.placement;
    let placement = format!(
        "pin {}: server on {}, fleet on {}{}",
        if pl.spec.is_empty() { "?" } else { &pl.spec },
        cores(&pl.server_cpus),
        cores(&pl.fleet_cpus),
        if pl.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", pl.note)
        }
    );
    let rows = [
        ("pushbench", p.pushbench_version.clone()),
        ("commit", p.git_commit.clone()),
        ("host", p.host.clone()),
        ("CPU", p.cpu_model.clone()),
        (
            "cores",
            if p.machine_cores > 0 {
                format!(
                    "{} on the machine, {} available to the fleet (its CPU affinity)",
                    p.machine_cores, p.cores
                )
            } else {
                format!("{} available to the fleet", p.cores)
            },
        ),
        ("kernel", p.kernel.clone()),
        ("rustc", p.rustc.clone()),
        ("started at", p.started_at.clone()),
        ("placement", placement),
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
pub(crate) fn scenario_line(run: &RunFile) -> String {
    // A swept key's single value was not what ran: say so instead.
    let mut scenario = run.scenario.clone();
    if let Some(sweep) = lookup(&run.scenario, "sweep").and_then(Value::as_object) {
        for (key, values) in sweep.iter().filter(|(_, v)| !v.is_null()) {
            if let Some(slot) = scenario.get_mut(key.as_str()) {
                *slot = Value::String(format!("swept ({})", list_of(values)));
            }
        }
    }
    let groups = mixed_groups(&scenario);
    if !groups.is_empty() {
        // The groups decide the fleet and the workload: the run-wide
        // clients, topics and rate are sums or placeholders, left out.
        for key in ["clients", "topics", "rate", "senders"] {
            if let Some(o) = scenario.as_object_mut() {
                o.remove(key);
            }
        }
    }
    let s = &scenario;
    let mut items = groups;
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
    if let Some(n) = lookup_str(s, &["senders"]).filter(|n| n != "0") {
        let rate = lookup_str(s, &["send_rate"]).unwrap_or_else(|| "?".into());
        items.push(format!(
            "{} sending {} messages/s each",
            counted(&n, "chat sender"),
            escape_md(&rate)
        ));
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
    let reps = run
        .transports
        .iter()
        .map(|r| r.repetition)
        .max()
        .unwrap_or(1);
    if reps > 1 {
        items.push(format!("{reps} repetitions"));
    }
    // An emulated link between fleet and server (absent or loopback: none).
    if let Some(link) = lookup_str(s, &["link"]).filter(|l| l != "loopback") {
        let what = link
            .parse::<crate::link::Link>()
            .map_or_else(|_| String::new(), |l| format!(" ({l})"));
        // Which emulator carried it (recorded per entry; files before the
        // kernel emulator say nothing, and the relay carried theirs).
        let mut by: Vec<&str> = Vec::new();
        for t in &run.transports {
            if let Some(e) = t.fleet.link_emulator.as_deref()
                && !by.contains(&e)
            {
                by.push(e);
            }
        }
        let by = if by.is_empty() {
            String::new()
        } else {
            format!(", emulated by the {}", by.join(" and the "))
        };
        items.push(format!(
            "link {}{}{}",
            code_span(&link),
            escape_md(&what),
            escape_md(&by)
        ));
    }
    items.extend(scale_item(run));
    if items.is_empty() {
        "(not recorded)".to_string()
    } else {
        items.join(" · ")
    }
}

/// How the run was spread over processes: `4 push-servers behind redis,
/// the fleet in 4 agents (clock offsets within ±24 µs)`; `None` for one
/// server and a fleet in one process.
fn scale_item(run: &RunFile) -> Option<String> {
    let s = run.transports.iter().find_map(|t| t.scale.as_ref())?;
    let mut parts = Vec::new();
    match (&s.broker, s.servers) {
        (Some(b), n) => parts.push(format!(
            "{n} push-server{} behind {b}",
            if n == 1 { "" } else { "s" }
        )),
        (None, n) if n > 1 => parts.push(format!("{n} push-servers")),
        _ => {}
    }
    if s.agents > 0 {
        let bound = run
            .transports
            .iter()
            .filter_map(|t| t.scale.as_ref())
            .flat_map(|s| &s.agent_clocks)
            .map(|c| c.offset_us.unsigned_abs() + c.bound_us)
            .max();
        let clocks = bound.map_or(String::new(), |b| {
            format!(" (clock offsets within ±{b} µs)")
        });
        parts.push(format!(
            "the fleet in {} agent{}{clocks}",
            s.agents,
            if s.agents == 1 { "" } else { "s" }
        ));
    }
    (!parts.is_empty()).then(|| escape_md(&parts.join(", ")))
}

/// The values of a JSON list, comma-separated.
pub(crate) fn list_of(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.to_string().trim_matches('"').to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// One item per `[[group]]` of a mixed scenario: `idle: 1900 SSE clients
/// on 1900 topics at 0.033 events/s each` (empty for any other scenario).
pub(crate) fn mixed_groups(scenario: &Value) -> Vec<String> {
    let Some(groups) = scenario.get("group").and_then(Value::as_array) else {
        return Vec::new();
    };
    groups
        .iter()
        .map(|g| {
            let text = |k: &str| lookup_str(g, &[k]).unwrap_or_else(|| "?".into());
            let transport = lookup_str(g, &["transport"])
                .and_then(|t| t.parse::<TransportKind>().ok())
                .map_or_else(|| text("transport"), |t| t.label().to_string());
            let plural = |n: &str| if n == "1" { "" } else { "s" };
            let (clients, topics) = (text("clients"), text("topics"));
            let mut item = format!(
                "{}: {clients} {transport} client{} on {topics} topic{} at {} events/s each",
                text("name"),
                plural(&clients),
                plural(&topics),
                text("rate"),
            );
            if let Some(n) = lookup_str(g, &["senders"]).filter(|n| n != "0") {
                let _ = write!(
                    item,
                    ", {n} chat sender{} sending {} messages/s each",
                    plural(&n),
                    text("send_rate")
                );
            }
            escape_md(&item)
        })
        .collect()
}
