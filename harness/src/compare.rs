//! `pushbench compare BASE NEW`: what changed between two runs, and whether
//! it is a regression.
//!
//! Both runs are read with [`results::read_run`] and aggregated like the
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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use protocol::TransportKind;

use crate::report::{self, Better, Metric, Row};
use crate::results::{self, RunFile};
use crate::scenario::sweep::SweepPoint;

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
pub const WORKLOAD_KEYS: [&str; 12] = [
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
];

/// The sweep's own dimensions: points are matched on them instead.
const SWEEP_KEYS: [&str; 3] = ["clients", "rate", "payload_bytes"];

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

fn parse_metric(s: &str) -> Result<&'static str, String> {
    report::metric(s).map(|m| m.key).ok_or_else(|| {
        let keys: Vec<&str> = report::METRICS.iter().map(|m| m.key).collect();
        format!("unknown metric {s:?} (known: {})", keys.join(", "))
    })
}

fn parse_tolerance(s: &str) -> Result<f64, String> {
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

/// How to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Relative change within which a figure is "the same" (0.10 = 10 %).
    pub tolerance: f64,
    /// Divide speed figures by this transport's in the same run.
    pub relative_to: Option<TransportKind>,
    /// Judge only these metric keys; empty = all.
    pub metrics: Vec<&'static str>,
    /// Compare runs of different workloads (noted, not refused).
    pub allow_different_workload: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tolerance: 0.10,
            relative_to: None,
            metrics: Vec::new(),
            allow_different_workload: false,
        }
    }
}

/// Which way a figure moved, judged by the metric's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Moved the good way beyond the tolerance.
    Better,
    /// Moved the bad way beyond the tolerance: a regression.
    Worse,
    /// Within the tolerance.
    Same,
}

/// Judges `new` against `base` for a metric where `better` is the good
/// direction: the relative change `(new − base) / |base|` beyond
/// `tolerance` either way is better or worse; within it, the same.
///
/// A zero base has no relative scale: equal is the same, any move is beyond
/// every tolerance. Metrics without a direction are never judged (`None`),
/// and neither are non-finite values.
pub fn judge(better: Better, base: f64, new: f64, tolerance: f64) -> Option<Change> {
    if !(base.is_finite() && new.is_finite()) {
        return None;
    }
    let up = match better {
        Better::Lower => Change::Worse,
        Better::Higher => Change::Better,
        _ => return None,
    };
    let down = if up == Change::Worse {
        Change::Better
    } else {
        Change::Worse
    };
    let delta = new - base;
    // Negative figures (a memory delta can be) are scaled by their size, so
    // the direction of the change keeps its meaning.
    let beyond = if base == 0.0 {
        delta != 0.0
    } else {
        (delta / base.abs()).abs() > tolerance
    };
    Some(if !beyond {
        Change::Same
    } else if delta > 0.0 {
        up
    } else {
        down
    })
}

/// One compared figure.
#[derive(Debug, Clone)]
pub struct Diff {
    /// Which transport (for a target: the protocol its clients spoke).
    pub transport: TransportKind,
    /// At which sweep point (`None`: not a sweep).
    pub point: Option<SweepPoint>,
    /// The row's label (`SSE`, `django-eventstream (SSE)`).
    pub label: String,
    /// Which metric.
    pub metric: &'static Metric,
    /// Whether the figures are multiples of the reference transport's.
    pub relative: bool,
    /// The base figure (a multiple of the reference's when `relative`).
    pub base: f64,
    /// The new figure (likewise).
    pub new: f64,
    /// How it moved.
    pub change: Change,
}

impl Diff {
    /// Whether this is a regression: worse beyond the tolerance.
    pub fn is_regression(&self) -> bool {
        self.change == Change::Worse
    }

    /// `new / base` when both are positive, else `None` (a ratio of a
    /// negative or zero figure says nothing).
    pub fn ratio(&self) -> Option<f64> {
        (self.base > 0.0 && self.new >= 0.0).then(|| self.new / self.base)
    }
}

/// A transport whose verification changed or failed in NEW.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Which transport (for a target: the protocol its clients spoke).
    pub transport: TransportKind,
    /// At which sweep point (`None`: not a sweep).
    pub point: Option<SweepPoint>,
    /// The row's label (`SSE`, `django-eventstream (SSE)`).
    pub label: String,
    /// Verified in every repetition of BASE.
    pub base: bool,
    /// Verified in every repetition of NEW.
    pub new: bool,
    /// NEW's problems (empty when verified).
    pub problems: Vec<String>,
}

/// The whole comparison of two runs.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// How it was compared.
    pub options: Options,
    /// One entry per compared figure, by transport (BASE's order) then metric.
    pub diffs: Vec<Diff>,
    /// Transports not verified in NEW, or whose verification changed.
    pub verification: Vec<Verification>,
    /// Things the reader must know: transports in one run only, figures not
    /// compared and why.
    pub notes: Vec<String>,
}

impl Comparison {
    /// Every regression: worse figures and transports unverified in NEW.
    pub fn regressions(&self) -> usize {
        self.diffs.iter().filter(|d| d.is_regression()).count()
            + self.verification.iter().filter(|v| !v.new).count()
    }

    /// Whether anything regressed.
    pub fn has_regression(&self) -> bool {
        self.regressions() > 0
    }
}

/// Whether a row's speed figures are valid: every repetition verified and
/// no load generator saturated. (Unlike [`Row::contends`], the floor counts:
/// it is compared with its own past.)
fn valid(row: &Row) -> bool {
    row.verified && !row.generator_bound
}

/// Why a row's speed figures are not valid.
fn why_invalid(row: &Row) -> &'static str {
    if !row.verified {
        "not verified"
    } else {
        "generator-bound"
    }
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
fn compare_sweeps(base: &RunFile, new: &RunFile, options: Options) -> anyhow::Result<Comparison> {
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
fn compare_runs(base: &RunFile, new: &RunFile, options: Options) -> anyhow::Result<Comparison> {
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

/// A transport's label, with its sweep point when it has one.
fn at_point(label: &str, point: Option<SweepPoint>) -> String {
    match point {
        Some(p) => cell(&format!("{label} @ {p}")),
        None => label.to_string(),
    }
}

/// `v` as a multiple of the reference figure, when that is a positive number.
fn per(v: f64, reference: Option<report::Figure>) -> Option<f64> {
    let r = reference?.median;
    (r.is_finite() && r > 0.0).then(|| v / r)
}

/// A row's problems over its repetitions, each once.
fn problems(row: &Row) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for p in row.entries.iter().flat_map(|e| &e.problems) {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    all
}

/// `sse, ws` (or `none`).
fn list(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "none".to_string();
    }
    rows.iter()
        .map(|r| r.entries.first().map_or(r.transport.as_str(), |e| e.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Makes free text safe in a Markdown table cell.
fn cell(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(one_line.len());
    for c in one_line.chars() {
        if matches!(
            c,
            '\\' | '|' | '`' | '*' | '_' | '<' | '>' | '[' | ']' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `+12.3 %`, `−4.0 %`, `from 0` (a count from a zero base has no percentage).
fn change_pct(d: &Diff) -> String {
    if d.base == 0.0 {
        return if d.new == 0.0 {
            "0 %".to_string()
        } else {
            "from 0".to_string()
        };
    }
    let pct = (d.new - d.base) / d.base.abs() * 100.0;
    if pct < 0.0 {
        format!("−{:.1} %", -pct)
    } else {
        format!("+{pct:.1} %")
    }
}

/// A figure as the table shows it: in the metric's unit, or `1.23×` of the
/// reference in relative mode.
fn shown(d: &Diff, v: f64) -> String {
    if d.relative {
        format!("{v:.3}×")
    } else {
        let s = d.metric.unit.format(v);
        match d.metric.unit.suffix() {
            "" => s,
            u => format!("{s} {u}"),
        }
    }
}

/// One line naming a run: its directory, commit and start time.
fn describe(dir: &Path, run: &RunFile) -> String {
    let p = &run.provenance;
    let or_unknown = |s: &str| {
        if s.trim().is_empty() {
            "unknown".to_string()
        } else {
            cell(s)
        }
    };
    format!(
        "{} (commit {}, {}, host {})",
        cell(&dir.display().to_string()),
        or_unknown(&p.git_commit),
        or_unknown(&p.started_at),
        or_unknown(&p.host)
    )
}

/// Renders the comparison as Markdown: what was compared, the verdict, the
/// table (changed figures only unless `all`), and the notes.
pub fn render_markdown(
    c: &Comparison,
    base: (&Path, &RunFile),
    new: (&Path, &RunFile),
    all: bool,
) -> String {
    let mut md = String::from("# pushbench compare\n\n");
    let tol = c.options.tolerance * 100.0;
    let _ = writeln!(md, "- base: {}", describe(base.0, base.1));
    let _ = writeln!(md, "- new: {}", describe(new.0, new.1));
    match c.options.relative_to {
        Some(t) => {
            let _ = writeln!(
                md,
                "- mode: relative: each speed figure as a multiple of {}'s in the same run \
                 (correctness counts stay absolute)",
                t.label()
            );
        }
        None => md.push_str("- mode: absolute figures\n"),
    }
    let _ = writeln!(md, "- tolerance: ±{tol:.0} %\n");

    let regressions = c.regressions();
    let better = c
        .diffs
        .iter()
        .filter(|d| d.change == Change::Better)
        .count();
    let same = c.diffs.iter().filter(|d| d.change == Change::Same).count();
    if regressions > 0 {
        let _ = writeln!(
            md,
            "**✗ {regressions} regression{} beyond ±{tol:.0} %** ({better} better, {same} within \
             tolerance, of {} figures compared).\n",
            if regressions == 1 { "" } else { "s" },
            c.diffs.len()
        );
    } else {
        let _ = writeln!(
            md,
            "**✓ No regression beyond ±{tol:.0} %** ({better} better, {same} within tolerance, of \
             {} figures compared).\n",
            c.diffs.len()
        );
    }

    if !c.verification.is_empty() {
        md.push_str(
            "| transport | verified in BASE | verified in NEW | verdict |\n|---|---|---|---|\n",
        );
        for v in &c.verification {
            let mark = |ok: bool| if ok { "✓" } else { "✗" };
            let verdict = if v.new {
                "better: verifies again".to_string()
            } else {
                let why = v.problems.first().map(|p| cell(p)).unwrap_or_default();
                format!("**✗ regression: not verified** {why}")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                at_point(&v.label, v.point),
                mark(v.base),
                mark(v.new),
                verdict.trim_end()
            );
        }
        md.push('\n');
    }

    let rows: Vec<&Diff> = c
        .diffs
        .iter()
        .filter(|d| all || d.change != Change::Same)
        .collect();
    if rows.is_empty() {
        if !c.diffs.is_empty() {
            let _ = writeln!(md, "Every compared figure is within ±{tol:.0} %.\n");
        }
    } else {
        md.push_str(
            "| transport | metric | better | base | new | new/base | change | verdict |\n\
             |---|---|---|---:|---:|---:|---:|---|\n",
        );
        for d in rows {
            let verdict = match d.change {
                Change::Worse => "**✗ worse: regression**",
                Change::Better => "✓ better",
                Change::Same => "same",
            };
            let ratio = d
                .ratio()
                .map(|r| format!("{r:.3}"))
                .unwrap_or_else(|| "–".to_string());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {ratio} | {} | {verdict} |",
                at_point(&d.label, d.point),
                cell(d.metric.label),
                d.metric.better.describe(),
                shown(d, d.base),
                shown(d, d.new),
                change_pct(d),
            );
        }
        md.push('\n');
    }

    if !c.notes.is_empty() {
        md.push_str("Notes:\n\n");
        for n in &c.notes {
            let _ = writeln!(md, "- {}", cell(n));
        }
        md.push('\n');
    }
    md
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
fn run(args: &CompareArgs) -> anyhow::Result<bool> {
    let base = results::read_run(&args.base).context("BASE")?;
    let new = results::read_run(&args.new).context("NEW")?;
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
        results::write_atomic(out, md.as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_is_better_metrics() {
        let j = |b, n| judge(Better::Lower, b, n, 0.10);
        assert_eq!(j(10.0, 10.0), Some(Change::Same));
        assert_eq!(j(10.0, 10.9), Some(Change::Same), "within 10 %");
        assert_eq!(j(10.0, 11.5), Some(Change::Worse));
        assert_eq!(j(10.0, 9.5), Some(Change::Same));
        assert_eq!(j(10.0, 8.0), Some(Change::Better));
    }

    #[test]
    fn higher_is_better_metrics() {
        let j = |b, n| judge(Better::Higher, b, n, 0.10);
        assert_eq!(j(400.0, 300.0), Some(Change::Worse));
        assert_eq!(j(400.0, 500.0), Some(Change::Better));
        assert_eq!(j(400.0, 390.0), Some(Change::Same));
    }

    #[test]
    fn tolerance_is_a_strict_bound_and_zero_means_any_change() {
        // A change of exactly the tolerance is within it (0.25 is exact in binary).
        assert_eq!(judge(Better::Lower, 1.0, 1.25, 0.25), Some(Change::Same));
        assert_eq!(judge(Better::Lower, 1.0, 1.26, 0.25), Some(Change::Worse));
        assert_eq!(judge(Better::Lower, 1.0, 1.001, 0.0), Some(Change::Worse));
        assert_eq!(judge(Better::Lower, 1.0, 1.0, 0.0), Some(Change::Same));
        assert_eq!(judge(Better::Lower, 10.0, 14.0, 0.5), Some(Change::Same));
    }

    #[test]
    fn zero_negative_and_undirected_figures() {
        // A count from zero: any event missing is a regression.
        assert_eq!(judge(Better::Lower, 0.0, 0.0, 0.1), Some(Change::Same));
        assert_eq!(judge(Better::Lower, 0.0, 3.0, 0.1), Some(Change::Worse));
        assert_eq!(judge(Better::Higher, 0.0, 3.0, 0.1), Some(Change::Better));
        // A negative figure moving up is still "up": worse for lower-is-better.
        assert_eq!(judge(Better::Lower, -40.0, -20.0, 0.1), Some(Change::Worse));
        assert_eq!(
            judge(Better::Lower, -40.0, -60.0, 0.1),
            Some(Change::Better)
        );
        assert_eq!(judge(Better::Neither, 1.0, 5.0, 0.1), None);
        assert_eq!(judge(Better::Lower, f64::NAN, 5.0, 0.1), None);
        assert_eq!(judge(Better::Lower, 1.0, f64::INFINITY, 0.1), None);
    }

    #[test]
    fn tolerance_flag_is_checked() {
        assert_eq!(parse_tolerance("0.1"), Ok(0.1));
        assert_eq!(parse_tolerance("0"), Ok(0.0));
        assert!(parse_tolerance("-0.1").is_err());
        assert!(parse_tolerance("NaN").is_err());
        assert!(parse_tolerance("10%").is_err());
    }
}
