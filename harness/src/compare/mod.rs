//! `pushbench compare BASE NEW`: what changed between two runs, and whether
//! it is a regression.
//!
//! Both runs are read with [`results::io::read_run`] and aggregated like the
//! report ([`report::rows`]: one row per transport, the median over its
//! repetitions). For every transport present in both and every metric of
//! [`report::METRICS`] with a direction, the new figure is judged against the
//! base one ([`judge`]): better, worse or the same within a relative
//! tolerance. A worse figure beyond the tolerance is a regression, and so is a
//! transport that does not verify in NEW.
//!
//! Absolute figures compare machines as much as code. On a noisy or
//! different machine (CI), `--relative-to T` divides each transport's speed
//! figures by transport `T`'s in the same run, so machine speed cancels out and
//! what is compared is "SSE's p99 as a multiple of WebSocket's". Correctness
//! counts (missing, duplicated…) are not speed and stay absolute.
//!
//! Only valid figures are compared: a speed figure of a transport that did
//! not verify or whose load generator was saturated ([`report::Row::contends`]
//! without the floor condition) is left out, with a note saying so.
//!
//! Like is compared with like: two runs whose workloads differ (clients,
//! topics, rate, payload, poll interval, long-poll hold, chat senders, client
//! habits; see [`WORKLOAD_KEYS`]) are refused, naming every difference,
//! unless `--allow-different-workload` says the difference is the point
//! (then the report opens with a warning). A speed figure that was 0 in
//! BASE (below its resolution) has no relative scale and is not judged; a
//! correctness count that was 0 (missing, duplicated…) still is.
//!
//! Exit status: 0 no regression, 1 a regression, 2 bad input (an unreadable
//! run, different workloads, no transport in common, a missing or invalid
//! reference transport).

use crate::compare::judge::judge;
use crate::compare::judge::valid;
use crate::compare::judge::why_invalid;
use crate::compare::render::list;
use crate::report;
use crate::report::Row;
use crate::results::{self, RunFile};
use anyhow::{Context as _, bail};
use clap::Args;
use protocol::TransportKind;
use std::path::PathBuf;
use std::process::ExitCode;

mod judge;
mod render;
#[cfg(test)]
mod tests;

pub use judge::{Change, Comparison, Diff, Options, Verification};
pub use render::render_markdown;

/// Exit status when a regression is flagged.
pub const EXIT_REGRESSION: u8 = 1;

/// Exit status for bad input.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Flags of `pushbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a results directory holding run.json.
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The run to judge against the baseline: a results directory holding run.json.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Relative change a figure may make before it counts as changed; a worse
    /// change beyond it is a regression (0.10 = 10 %).
    #[arg(long, value_name = "F", default_value_t = 0.10, value_parser = parse_tolerance)]
    pub tolerance: f64,
    /// Compare each transport's speed figures as multiples of this transport's
    /// in the same run (e.g. ws or tcp), so the machine's own speed cancels out.
    #[arg(long, value_name = "TRANSPORT")]
    pub relative_to: Option<TransportKind>,
    /// Shorthand for --relative-to ws.
    #[arg(long, conflicts_with = "relative_to")]
    pub relative: bool,
    /// Show every compared figure, not only those that changed beyond the tolerance.
    #[arg(long)]
    pub all: bool,
    /// Also write the Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Judge only these metrics (comma-separated keys, e.g.
    /// latency_p50,bytes_down_per_event,requests_per_event); default: every
    /// metric with a direction. Verification failures are judged regardless.
    #[arg(long, value_name = "KEYS", value_delimiter = ',', value_parser = parse_metric)]
    pub metrics: Vec<&'static str>,
    /// Compare even when the two runs measured different workloads
    /// (clients, topics, rate, payload, poll interval, …); the differences
    /// are listed at the top of the comparison.
    #[arg(long)]
    pub allow_different_workload: bool,
}

/// Scenario keys that define the workload: two runs that differ in any of
/// them measured different things.
pub const WORKLOAD_KEYS: [&str; 13] = [
    "clients",
    "topics",
    "rate",
    "payload_bytes",
    "poll_interval",
    "longpoll_timeout",
    "senders",
    "send_rate",
    "event_type",
    "behaviour",
    "group",
    "faults",
    "link",
];

/// The sweep's own dimensions: points are matched on them instead.
pub(crate) const SWEEP_KEYS: [&str; 3] = ["clients", "rate", "payload_bytes"];

/// Every workload key whose value differs between the two scenarios, as
/// `key: BASE → NEW`.
pub fn workload_differences(base: &RunFile, new: &RunFile) -> Vec<String> {
    let sweep = report::is_sweep(base) && report::is_sweep(new);
    let show = |v: Option<&serde_json::Value>| match v {
        None => "(absent)".to_string(),
        Some(v) => v.to_string(),
    };
    let defaults = crate::scenario::Scenario::default().to_json();
    WORKLOAD_KEYS
        .iter()
        .filter(|k| !(sweep && SWEEP_KEYS.contains(k)))
        .filter_map(|k| {
            // A key absent from an older file had the value it has by default.
            let (b, n) = (
                base.scenario.get(*k).or(defaults.get(*k)),
                new.scenario.get(*k).or(defaults.get(*k)),
            );
            let empty = |v: Option<&serde_json::Value>| {
                v.is_none_or(|v| {
                    v.is_null()
                        || v.as_object().is_some_and(|o| o.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty())
                })
            };
            if b == n || (empty(b) && empty(n)) {
                return None;
            }
            Some(format!("{k}: {} → {}", show(b), show(n)))
        })
        .collect()
}

pub(crate) fn parse_metric(s: &str) -> Result<&'static str, String> {
    report::metric(s).map(|m| m.key).ok_or_else(|| {
        let keys: Vec<&str> = report::METRICS.iter().map(|m| m.key).collect();
        format!("unknown metric {s:?} (known: {})", keys.join(", "))
    })
}

pub(crate) fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number (write 0.10 for 10 %)"))?;
    if !(t.is_finite() && (0.0..10.0).contains(&t)) {
        return Err(format!(
            "{s} is out of range: a relative tolerance is ≥ 0 and < 10 (0.10 = 10 %)"
        ));
    }
    Ok(t)
}

/// Compares `new` against `base`.
///
/// Two sweeps are compared point by point: entries match by transport and
/// by workload (clients, rate, payload), whatever their position in the grid.
///
/// Errors are bad input: no transport (or sweep point) in common, a sweep
/// against a single run, a mixed run on either side, or `relative_to` missing from a run or without
/// valid figures in BASE.
pub fn compare(base: &RunFile, new: &RunFile, options: Options) -> anyhow::Result<Comparison> {
    for (which, run) in [("BASE", base), ("NEW", new)] {
        if report::is_mixed(run) {
            // Its entry's figures sum different groups' work: a per-transport
            // diff of them would be nonsense, and group-by-group is not built.
            bail!(
                "{which} is a mixed run ([[group]]): compare does not compare mixed runs; read \
                 the two reports' Groups tables side by side"
            );
        }
    }
    let differences = workload_differences(base, new);
    if !differences.is_empty() && !options.allow_different_workload {
        bail!(
            "the two runs measured different workloads ({}): their figures are not comparable; \
             pass --allow-different-workload if that difference is what you are comparing",
            differences.join("; ")
        );
    }
    let mut c = match (report::is_sweep(base), report::is_sweep(new)) {
        (false, false) => compare_runs(base, new, options),
        (true, true) => compare_sweeps(base, new, options),
        (b, _) => bail!(
            "{} is a sweep and {} is not: compare a sweep with a sweep",
            if b { "BASE" } else { "NEW" },
            if b { "NEW" } else { "BASE" }
        ),
    }?;
    if !differences.is_empty() {
        c.notes.insert(
            0,
            format!(
                "⚠ different workloads (allowed by --allow-different-workload): {}",
                differences.join("; ")
            ),
        );
    }
    Ok(c)
}

/// [`compare`] of two sweeps: every point of BASE with the point of NEW
/// that measured the same workload.
pub(crate) fn compare_sweeps(
    base: &RunFile,
    new: &RunFile,
    options: Options,
) -> anyhow::Result<Comparison> {
    let new_points = report::point_runs(new);
    let mut all = Comparison {
        options: options.clone(),
        diffs: Vec::new(),
        verification: Vec::new(),
        notes: Vec::new(),
    };
    let mut matched = 0;
    for (p, b) in report::point_runs(base) {
        let Some((_, n)) = new_points.iter().find(|(q, _)| q.same_workload(&p)) else {
            all.notes
                .push(format!("point {p} is only in BASE: not compared"));
            continue;
        };
        matched += 1;
        match compare_runs(&b, n, options.clone()) {
            Ok(c) => {
                all.diffs.extend(c.diffs.into_iter().map(|mut d| {
                    d.point = Some(p);
                    d
                }));
                all.verification
                    .extend(c.verification.into_iter().map(|mut v| {
                        v.point = Some(p);
                        v
                    }));
                all.notes
                    .extend(c.notes.into_iter().map(|n| format!("at {p}: {n}")));
            }
            Err(e) => all.notes.push(format!("at {p}: not compared: {e:#}")),
        }
    }
    for (q, _) in &new_points {
        if !report::point_runs(base)
            .iter()
            .any(|(p, _)| p.same_workload(q))
        {
            all.notes
                .push(format!("point {q} is only in NEW: not compared"));
        }
    }
    if matched == 0 {
        bail!("the two sweeps have no point (clients, rate, payload_bytes) in common");
    }
    Ok(all)
}

/// [`compare`] of two single runs (or of one point of two sweeps).
pub(crate) fn compare_runs(
    base: &RunFile,
    new: &RunFile,
    options: Options,
) -> anyhow::Result<Comparison> {
    let (base_rows, new_rows) = (report::rows(base), report::rows(new));
    // Rows match by transport and target: a target's SSE is not push-server's.
    let find = |rows: &[Row], r: &Row| {
        rows.iter()
            .position(|x| x.transport == r.transport && x.target == r.target)
    };
    let common: Vec<(usize, usize)> = base_rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, find(&new_rows, r)?)))
        .collect();
    if common.is_empty() {
        bail!(
            "no transport in common: BASE has {}, NEW has {}",
            list(&base_rows),
            list(&new_rows)
        );
    }

    let mut notes = Vec::new();
    // The reference of the relative mode, one row per run.
    let reference = match options.relative_to {
        None => None,
        Some(t) => {
            let builtin = |rows: &[Row]| {
                rows.iter()
                    .position(|x| x.transport == t && x.target.is_none())
            };
            let (Some(b), Some(n)) = (builtin(&base_rows), builtin(&new_rows)) else {
                bail!(
                    "--relative-to {t}: {} is not in both runs (BASE has {}, NEW has {})",
                    t.label(),
                    list(&base_rows),
                    list(&new_rows)
                );
            };
            let (b, n) = (&base_rows[b], &new_rows[n]);
            if !valid(b) {
                bail!(
                    "--relative-to {t}: {} is {} in BASE, so its figures cannot be the yardstick; \
                     pick another reference",
                    t.label(),
                    why_invalid(b)
                );
            }
            if !valid(n) {
                notes.push(format!(
                    "{} (the reference) is {} in NEW: no speed figure could be compared relative \
                     to it",
                    t.label(),
                    why_invalid(n)
                ));
            }
            Some((b, n))
        }
    };

    for r in &base_rows {
        if find(&new_rows, r).is_none() {
            notes.push(format!("{} is only in BASE: not compared", r.label()));
        }
    }
    for r in &new_rows {
        if find(&base_rows, r).is_none() {
            notes.push(format!("{} is only in NEW: not compared", r.label()));
        }
    }

    let mut diffs = Vec::new();
    let mut verification = Vec::new();
    for &(bi, ni) in &common {
        let (b, n) = (&base_rows[bi], &new_rows[ni]);
        let t = b.transport;
        if !n.verified || !b.verified {
            verification.push(Verification {
                transport: t,
                point: None,
                label: b.label(),
                base: b.verified,
                new: n.verified,
                problems: if n.verified { Vec::new() } else { problems(n) },
            });
        }
        let speed_ok = valid(b) && valid(n);
        if !speed_ok {
            let side = match (valid(b), valid(n)) {
                (false, false) => {
                    format!("{} in BASE and {} in NEW", why_invalid(b), why_invalid(n))
                }
                (false, true) => format!("{} in BASE", why_invalid(b)),
                _ => format!("{} in NEW", why_invalid(n)),
            };
            notes.push(format!(
                "{}'s speed figures not compared: {side}",
                t.label()
            ));
        }
        let is_reference = reference.is_some() && options.relative_to == Some(t);
        for m in report::METRICS {
            if !options.metrics.is_empty() && !options.metrics.contains(&m.key) {
                continue;
            }
            if m.speed && (!speed_ok || is_reference) {
                // Invalid figures are not compared; the reference's relative figures are all 1.
                continue;
            }
            let (Some(bf), Some(nf)) = (b.figure(m), n.figure(m)) else {
                continue;
            };
            let (mut bv, mut nv) = (bf.median, nf.median);
            if m.speed && bv == 0.0 && nv != 0.0 {
                // No relative scale: 0 was below the figure's resolution.
                notes.push(format!(
                    "{}'s {} was 0 in BASE (below its resolution) and {} in NEW: not judged",
                    t.label(),
                    m.label,
                    m.unit.format(nv)
                ));
                continue;
            }
            let relative = m.speed && reference.is_some();
            if let Some((rb, rn)) = reference.filter(|_| relative) {
                if !valid(rn) {
                    continue; // said once in the notes
                }
                match (per(bv, rb.figure(m)), per(nv, rn.figure(m))) {
                    (Some(x), Some(y)) => (bv, nv) = (x, y),
                    _ => continue,
                }
            }
            if let Some(change) = judge(m.better, bv, nv, options.tolerance) {
                diffs.push(Diff {
                    transport: t,
                    point: None,
                    label: b.label(),
                    metric: m,
                    relative,
                    base: bv,
                    new: nv,
                    change,
                });
            }
        }
    }
    Ok(Comparison {
        options,
        diffs,
        verification,
        notes,
    })
}

/// `v` as a multiple of the reference figure, when that is a positive number.
pub(crate) fn per(v: f64, reference: Option<report::Figure>) -> Option<f64> {
    let r = reference?.median;
    (r.is_finite() && r > 0.0).then(|| v / r)
}

/// A row's problems over its repetitions, each once.
pub(crate) fn problems(row: &Row) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for p in row.entries.iter().flat_map(|e| &e.problems) {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    all
}

/// `pushbench compare`: prints the Markdown, writes `--out`, and maps the
/// outcome to the exit status (0 fine, 1 regression, 2 bad input).
pub fn cmd_compare(args: &CompareArgs) -> ExitCode {
    match run(args) {
        Ok(regressed) if regressed => ExitCode::from(EXIT_REGRESSION),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Reads both runs, compares, prints; `Ok(true)` when something regressed.
pub(crate) fn run(args: &CompareArgs) -> anyhow::Result<bool> {
    let base = results::io::read_run(&args.base).context("BASE")?;
    let new = results::io::read_run(&args.new).context("NEW")?;
    let options = Options {
        tolerance: args.tolerance,
        relative_to: args
            .relative_to
            .or(args.relative.then_some(TransportKind::Ws)),
        metrics: args.metrics.clone(),
        allow_different_workload: args.allow_different_workload,
    };
    let c = compare(&base, &new, options)?;
    let md = render_markdown(&c, (&args.base, &base), (&args.new, &new), args.all);
    print!("{md}");
    if let Some(out) = &args.out {
        results::io::write_atomic(out, md.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let n = c.regressions();
    if n > 0 {
        eprintln!(
            "compare: {n} regression{} (see the table above)",
            if n == 1 { "" } else { "s" }
        );
    }
    Ok(n > 0)
}
