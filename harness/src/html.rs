//! `report.html`: one self-contained page with a verdict on top, every table
//! of `report.md`, every plot of the run directory inline, and the provenance.
//!
//! One source for the tables: the page is `report.md` rendered to HTML
//! (pulldown-cmark), so the tables, problems, definitions and provenance are
//! the Markdown report's, generated from the same metric table
//! ([`report::METRICS`]), and cannot drift from it. On top of that this module
//! adds what Markdown cannot carry:
//!
//! - the **verdict** ([`verdict`]): for each aspect (latency, throughput, cost,
//!   bytes, resilience) and each metric of [`report::METRICS`] with a direction,
//!   the best transport with valid figures (verified, load generator not
//!   saturated) and its figure, the runner-up and the raw-TCP floor for
//!   reference. The floor never wins; an unverified or generator-bound
//!   transport never wins; an aspect without figures says "not measured in
//!   this run"; repetitions count by their median, as in the tables;
//! - every `*.svg` of the run directory inlined where `report.md` shows it as an
//!   image (plots it does not mention follow in a section of their own);
//! - classes that make invalid figures (struck through in Markdown) stand out.
//!
//! Self-contained means nothing is fetched and nothing runs: CSS is inline,
//! there is no script, and a Content-Security-Policy (`default-src 'none'`)
//! makes the browser refuse any load or script that a crafted SVG or text
//! might try. All text from the run is escaped.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::report::{self, Better, Metric, Row};
use crate::results::{self, RunFile, TransportResult};

/// File name of the HTML report inside a run directory.
pub const REPORT_HTML: &str = "report.html";

/// One chart of a run directory, as SVG text.
#[derive(Debug, Clone)]
pub struct SvgFile {
    /// File name inside the run directory (`latency.svg`).
    pub file_name: String,
    /// The file's content.
    pub svg: String,
}

/// Reads every `*.svg` of `dir`, sorted by file name (so the page is the same
/// on every render). Unreadable files are skipped: a report must not fail
/// because of one broken chart, and the page then says it is missing.
pub fn read_svgs(dir: &Path) -> anyhow::Result<Vec<SvgFile>> {
    let mut plots = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries.flatten() {
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        if !file_name.ends_with(".svg") || file_name.starts_with('.') {
            continue;
        }
        if let Ok(svg) = std::fs::read_to_string(entry.path()) {
            plots.push(SvgFile { file_name, svg });
        }
    }
    plots.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(plots)
}

/// Writes `dir/report.html` for `run`, from `markdown` (the run's `report.md`)
/// and the `*.svg` files already in `dir`. Called by [`report::render_dir`]
/// after it wrote the Markdown and the plots.
pub fn write_html(dir: &Path, run: &RunFile, markdown: &str) -> anyhow::Result<()> {
    let plots = read_svgs(dir)?;
    let html = render_html(run, markdown, &plots);
    let path = dir.join(REPORT_HTML);
    results::write_atomic(&path, html.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------

/// What a metric speaks to. Derived from the metric's key (see [`aspect_of`]),
/// so metrics added to [`report::METRICS`] join the verdict without a change here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aspect {
    /// How long events take: latency percentiles, connection set-up.
    Latency,
    /// How many events get through per second.
    Throughput,
    /// What pushing costs: server memory and CPU, requests per event.
    Cost,
    /// Bytes on the wire.
    Bytes,
    /// Behaviour across lost connections: reconnects, resume.
    Resilience,
    /// Correctness counts (missing, duplicated, out of order, errors): they
    /// decide verification and are shown as such, not as a contest.
    Correctness,
}

impl Aspect {
    /// The aspects the verdict reports, in order (correctness is reported as verification).
    pub const CONTESTED: [Aspect; 5] = [
        Aspect::Latency,
        Aspect::Throughput,
        Aspect::Cost,
        Aspect::Bytes,
        Aspect::Resilience,
    ];

    /// Heading word.
    pub fn label(self) -> &'static str {
        match self {
            Aspect::Latency => "Latency",
            Aspect::Throughput => "Throughput",
            Aspect::Cost => "Cost",
            Aspect::Bytes => "Bytes",
            Aspect::Resilience => "Resilience",
            Aspect::Correctness => "Correctness",
        }
    }
}

/// The aspect of a metric, from its key: words about reconnecting mean
/// resilience, `bytes` means bytes, `latency`/`connect`/`first_event` mean
/// latency; any other speed figure in events per second is throughput; any
/// other correctness count (not a speed figure) is correctness; the rest
/// (memory, CPU, requests…) is cost.
pub fn aspect_of(m: &Metric) -> Aspect {
    let k = m.key;
    let has = |w: &str| k.contains(w);
    if has("reconnect") || has("resume") || has("recover") {
        Aspect::Resilience
    } else if has("bytes") {
        Aspect::Bytes
    } else if k.starts_with("latency") || k.starts_with("connect") || has("first_event") {
        Aspect::Latency
    } else if !m.speed {
        Aspect::Correctness
    } else if m.unit == report::Unit::PerSecond || has("throughput") {
        Aspect::Throughput
    } else {
        Aspect::Cost
    }
}

/// The contest on one metric among the verified, compared transports.
#[derive(Debug, Clone)]
pub struct MetricVerdict {
    /// The metric.
    pub metric: &'static Metric,
    /// Transports sharing the best figure (equal as displayed), in run order.
    pub winners: Vec<String>,
    /// The best figure.
    pub best: f64,
    /// Verified, compared transports with a figure for this metric.
    pub contenders: usize,
    /// The best transport that is not a winner, and its figure.
    pub runner_up: Option<(String, f64)>,
    /// The raw-TCP floor's figure, when the floor ran and verified.
    pub floor: Option<f64>,
}

impl MetricVerdict {
    /// Whether someone actually won: two or more contenders and not all tied.
    pub fn decided(&self) -> bool {
        self.contenders >= 2 && self.winners.len() < self.contenders
    }
}

/// The verdict on one aspect.
#[derive(Debug, Clone)]
pub struct AspectVerdict {
    /// Which aspect.
    pub aspect: Aspect,
    /// One entry per metric of this aspect that some verified transport has a figure for.
    pub metrics: Vec<MetricVerdict>,
    /// Whether the run has any figure for this aspect at all (any transport,
    /// verified or not): `false` means "not measured in this run".
    pub measured: bool,
}

impl AspectVerdict {
    /// Each transport that won a decided metric, with its count of wins
    /// (a shared best counts for each), most wins first.
    pub fn wins(&self) -> Vec<(String, usize)> {
        let mut wins: Vec<(String, usize)> = Vec::new();
        for mv in self.metrics.iter().filter(|mv| mv.decided()) {
            for w in &mv.winners {
                match wins.iter_mut().find(|(t, _)| t == w) {
                    Some((_, n)) => *n += 1,
                    None => wins.push((w.clone(), 1)),
                }
            }
        }
        // Stable: equal counts stay in run order.
        wins.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        wins
    }

    /// The transports that won the most decided metrics, with their count of wins.
    pub fn leaders(&self) -> (Vec<String>, usize) {
        let wins = self.wins();
        let top = wins.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let leaders = wins
            .into_iter()
            .filter(|(_, n)| *n == top && top > 0)
            .map(|(t, _)| t)
            .collect();
        (leaders, top)
    }
}

/// The verdict of a run: per aspect, who is best and by how much.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// One entry per aspect of [`Aspect::CONTESTED`], in that order.
    pub aspects: Vec<AspectVerdict>,
    /// Transports whose figures compete: verified, not generator-bound, not
    /// the floor ([`report::Row::contends`]), in run order.
    pub contenders: Vec<String>,
    /// Transports measured (each once, whatever its repetitions), floor included.
    pub measured: usize,
    /// Transports that did not verify (in some repetition), with their problems.
    pub unverified: Vec<(String, Vec<String>)>,
    /// Verified transports whose load generator was saturated, with the reasons.
    pub generator_bound: Vec<(String, Vec<String>)>,
    /// The most repetitions any transport has (figures are medians over them).
    pub repetitions: usize,
}

/// Computes the verdict of `run` from [`report::METRICS`] over
/// [`report::rows`] (repetitions aggregated to their median, as in the
/// tables): for every metric with a direction, the best contending
/// transport. The raw-TCP floor is a reference, shown beside the winner,
/// never the winner; unverified and generator-bound transports do not contend.
///
/// Figures equal as displayed (same formatted value) are ties: a difference
/// the report does not show is not a win.
pub fn verdict(run: &RunFile) -> Verdict {
    let rows = report::rows(run);
    let contenders: Vec<&Row> = rows.iter().filter(|r| r.contends()).collect();
    let floor = rows.iter().find(|r| r.is_floor() && r.verified);

    let mut aspects: Vec<AspectVerdict> = Aspect::CONTESTED
        .iter()
        .map(|&aspect| AspectVerdict {
            aspect,
            metrics: Vec::new(),
            measured: false,
        })
        .collect();
    for m in report::METRICS {
        let lower = match m.better {
            Better::Lower => true,
            Better::Higher => false,
            _ => continue,
        };
        let Some(av) = aspects.iter_mut().find(|a| a.aspect == aspect_of(m)) else {
            continue; // correctness: reported as verification
        };
        av.measured |= rows.iter().any(|r| r.figure(m).is_some());
        let mut values: Vec<(String, f64)> = contenders
            .iter()
            .filter_map(|r| Some((r.label(), r.figure(m)?.median)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        if values.is_empty() {
            continue;
        }
        // Best first; a stable sort keeps run order among equals.
        values.sort_by(|a, b| {
            let ord = a.1.total_cmp(&b.1);
            if lower { ord } else { ord.reverse() }
        });
        let best = values[0].1;
        let shown = m.unit.format(best);
        let (winners, rest): (Vec<_>, Vec<_>) =
            values.iter().partition(|(_, v)| m.unit.format(*v) == shown);
        av.metrics.push(MetricVerdict {
            metric: m,
            winners: winners.iter().map(|(t, _)| t.clone()).collect(),
            best,
            contenders: values.len(),
            runner_up: rest.first().map(|&p| p.clone()),
            floor: floor
                .and_then(|f| f.figure(m))
                .map(|f| f.median)
                .filter(|v| v.is_finite()),
        });
    }

    // Reasons once each, whatever the number of repetitions that gave them.
    let reasons = |row: &Row, of: fn(&TransportResult) -> &[String]| {
        let mut all: Vec<String> = Vec::new();
        for e in &row.entries {
            for p in of(e) {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
        }
        all
    };
    Verdict {
        aspects,
        contenders: contenders.iter().map(|r| r.label()).collect(),
        measured: rows.len(),
        unverified: rows
            .iter()
            .filter(|r| !r.verified)
            .map(|r| (r.label(), reasons(r, |e| &e.problems)))
            .collect(),
        generator_bound: rows
            .iter()
            .filter(|r| r.verified && r.generator_bound)
            .map(|r| (r.label(), reasons(r, |e| &e.fleet.generator_bound_reasons)))
            .collect(),
        repetitions: rows.iter().map(|r| r.entries.len()).max().unwrap_or(0),
    }
}

/// A figure with its unit: `1.29 ms`, `400/s`, `0.200`.
fn figure(m: &Metric, v: f64) -> String {
    let n = m.unit.format(v);
    match m.unit {
        report::Unit::PerSecond => format!("{n}/s"),
        report::Unit::Percent => format!("{n}%"),
        u if !u.suffix().is_empty() => format!("{n} {}", u.suffix()),
        _ => n,
    }
}

/// How much worse `other` is than `best`, as a factor ≥ 1 (`None` when it
/// cannot be said: a zero or a sign change).
fn factor(m: &Metric, best: f64, other: f64) -> Option<f64> {
    let f = match m.better {
        Better::Lower => other / best,
        _ => best / other,
    };
    (f.is_finite() && f > 0.0).then_some(f)
}

/// `×1.24`, three significant digits.
fn times(f: f64) -> String {
    if f >= 100.0 {
        format!("×{f:.0}")
    } else if f >= 10.0 {
        format!("×{f:.1}")
    } else {
        format!("×{f:.2}")
    }
}

/// Names joined for prose: `A`, `A and B`, `A, B and C`.
fn names(ts: &[String]) -> String {
    let labels: Vec<&str> = ts.iter().map(String::as_str).collect();
    match labels.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The first of `reasons`, with how many more there are.
fn first_reason(reasons: &[String]) -> String {
    match reasons {
        [] => "no reason recorded".to_string(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// The verdict of a mixed run: what it shows, group by group; its groups
/// do different work, so no transport is ranked (see [`crate::mixed_report`]).
fn mixed_verdict_html(out: &mut String, run: &RunFile) {
    out.push_str("<section id=\"verdict\" class=\"verdict\">\n<h2>Verdict</h2>\n");
    let shows = crate::mixed_report::shows(run);
    pulldown_cmark::html::push_html(out, Parser::new(&shows));
    out.push_str("</section>\n");
}

/// The verdict section (HTML).
fn verdict_html(out: &mut String, run: &RunFile, v: &Verdict) {
    if report::is_mixed(run) {
        return mixed_verdict_html(out, run);
    }
    out.push_str("<section id=\"verdict\" class=\"verdict\">\n<h2>Verdict</h2>\n");
    if v.measured == 0 {
        out.push_str("<p>No transport was measured in this run.</p>\n</section>\n");
        return;
    }
    if v.contenders.is_empty() {
        out.push_str(
            "<p class=\"warn\"><strong>No compared transport has valid figures</strong> (none \
             verified with an unsaturated load generator), so nothing wins.</p>\n",
        );
    }
    out.push_str("<ul class=\"aspects\">\n");
    for av in &v.aspects {
        let _ = write!(out, "<li><strong>{}:</strong> ", av.aspect.label());
        out.push_str(&aspect_sentence(av, v));
        out.push_str("</li>\n");
    }
    // Correctness: the verify step, before any speed figure is trusted.
    out.push_str("<li><strong>Correctness:</strong> ");
    let measured = v.measured;
    if v.unverified.is_empty() {
        let _ = write!(
            out,
            "<span class=\"ok\">✓ all {measured} transport{} verified</span>: every expected event \
             delivered exactly once and in order, every client connected.",
            if measured == 1 { "" } else { "s" }
        );
    } else {
        let _ = write!(
            out,
            "<span class=\"bad\">✗ {} of {measured} did not verify</span>; their speed figures are \
             invalid and take no part in the verdict:<ul>",
            v.unverified.len()
        );
        for (t, problems) in &v.unverified {
            let _ = write!(
                out,
                "<li><span class=\"bad\">✗ {}</span>: {}</li>",
                esc(t),
                esc(&first_reason(problems))
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>\n</ul>\n");
    if !v.generator_bound.is_empty() {
        out.push_str(
            "<p class=\"warn\">⚠ Generator-bound, so left out of the verdict (their latency \
             describes the load generator, not the server):",
        );
        for (t, reasons) in &v.generator_bound {
            let _ = write!(
                out,
                " <strong>{}</strong> ({});",
                esc(t),
                esc(&first_reason(reasons))
            );
        }
        out.pop();
        out.push_str(".</p>\n");
    }
    if !run.complete {
        out.push_str(
            "<p class=\"warn\">⚠ Incomplete run: transports that did not run to the end are not \
             in this verdict.</p>\n",
        );
    }
    verdict_table(out, v);
    out.push_str("</section>\n");
}

/// One sentence per aspect: who leads, with the figure that shows it.
fn aspect_sentence(av: &AspectVerdict, v: &Verdict) -> String {
    if !av.measured {
        return "<span class=\"na\">not measured in this run.</span>".to_string();
    }
    if av.metrics.is_empty() {
        return "<span class=\"na\">no verified transport has figures.</span>".to_string();
    }
    let (leaders, wins) = av.leaders();
    if leaders.is_empty() {
        // Nothing decided: every metric is a tie or has a single contender.
        let mv = &av.metrics[0];
        let m = mv.metric;
        return if mv.contenders == 1 {
            format!(
                "only {} has figures ({} {}); nothing to compare.",
                esc(&mv.winners[0]),
                esc(m.label),
                esc(&figure(m, mv.best))
            )
        } else {
            format!(
                "no difference: {} of {} transports with valid figures tie ({} {}).",
                mv.winners.len(),
                v.contenders.len(),
                esc(m.label),
                esc(&figure(m, mv.best))
            )
        };
    }
    let decided = av.metrics.iter().filter(|mv| mv.decided()).count();
    let mut s = format!(
        "<span class=\"winner\">{}</span> — best on {wins} of {decided} figure{}{}",
        esc(&names(&leaders)),
        if decided == 1 { "" } else { "s" },
        if leaders.len() > 1 { " each" } else { "" }
    );
    // The others' wins, so a close contest does not read as a rout.
    let others: Vec<String> = av
        .wins()
        .into_iter()
        .filter(|(t, _)| !leaders.contains(t))
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    if !others.is_empty() {
        let _ = write!(s, " ({})", esc(&others.join(", ")));
    }
    // The figures behind the word: the first metric a leader won clearly
    // (by 10 % or more over the runner-up), else the one it won by most. A
    // zero or negative figure (a memory delta lost in noise) has no ratio
    // and makes a poor example.
    let won: Vec<(&MetricVerdict, f64)> = av
        .metrics
        .iter()
        .filter(|mv| mv.decided() && mv.winners.iter().any(|w| leaders.contains(w)))
        .map(|mv| {
            let f = mv
                .runner_up
                .as_ref()
                .filter(|_| mv.best > 0.0)
                .and_then(|&(_, r)| factor(mv.metric, mv.best, r))
                .unwrap_or(0.0);
            (mv, f)
        })
        .collect();
    let example = won
        .iter()
        .find(|&&(_, f)| f >= 1.1)
        .or_else(|| won.iter().max_by(|a, b| a.1.total_cmp(&b.1)));
    if let Some(&(mv, _)) = example {
        let m = mv.metric;
        let _ = write!(s, ": {} {}", esc(m.label), esc(&figure(m, mv.best)));
        if let Some((t, r)) = &mv.runner_up {
            let r = *r;
            let _ = write!(s, " vs {} {}", esc(t), esc(&figure(m, r)));
            if let Some(f) = factor(m, mv.best, r) {
                let _ = write!(s, " ({})", times(f));
            }
        }
        if let Some(fl) = mv.floor {
            let _ = write!(s, "; raw-TCP floor {}", esc(&figure(m, fl)));
        }
        if mv.contenders < v.contenders.len() {
            let _ = write!(s, " (among the {} transports it applies to)", mv.contenders);
        }
    }
    s.push('.');
    s
}

/// The table behind the sentences: one row per metric with a direction.
fn verdict_table(out: &mut String, v: &Verdict) {
    if v.aspects.iter().all(|a| a.metrics.is_empty()) {
        return;
    }
    // The floor column only when the floor ran (and verified): a column of dashes says nothing.
    let with_floor = v
        .aspects
        .iter()
        .flat_map(|a| &a.metrics)
        .any(|mv| mv.floor.is_some());
    out.push_str(
        "<table class=\"verdict-table\">\n<thead><tr><th>aspect</th><th>metric</th>\
         <th>better</th><th>best verified</th><th class=\"num\">figure</th>\
         <th>runner-up</th>",
    );
    if with_floor {
        out.push_str("<th class=\"num\">raw-TCP floor</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for av in &v.aspects {
        for mv in &av.metrics {
            let m = mv.metric;
            let best = if mv.contenders == 1 {
                format!("{} (only one with figures)", names(&mv.winners))
            } else if !mv.decided() {
                format!("tie: {}", names(&mv.winners))
            } else {
                names(&mv.winners)
            };
            let runner = match &mv.runner_up {
                Some((t, r)) => {
                    let r = *r;
                    let f = factor(m, mv.best, r)
                        .map(|f| format!(" ({})", times(f)))
                        .unwrap_or_default();
                    format!("{t} {}{f}", figure(m, r))
                }
                None => "–".to_string(),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td class=\"winner\">{}</td>\
                 <td class=\"num\">{}</td><td>{}</td>",
                av.aspect.label(),
                esc(m.description),
                esc(m.label),
                m.better.describe(),
                esc(&best),
                esc(&figure(m, mv.best)),
                esc(&runner),
            );
            if with_floor {
                let floor = mv.floor.map(|f| figure(m, f));
                let _ = write!(
                    out,
                    "<td class=\"num\">{}</td>",
                    esc(floor.as_deref().unwrap_or("–"))
                );
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"note\">Only verified transports compete; the raw-TCP \
         floor is the physical reference, never a winner. Figures equal as shown are ties. \
         ×N = how much worse the runner-up is.</p>\n",
    );
}

// ---------------------------------------------------------------------------
// Page
// ---------------------------------------------------------------------------

/// The page's stylesheet: readable tables, invalid figures unmistakable.
const CSS: &str = "\
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b1b1b; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.8em 0; display: block; overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #d5d5d5; padding: 4px 8px; white-space: nowrap; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
del, .invalid { color: #a01010; text-decoration: line-through; background: #fdecec; }
.bad { color: #a01010; font-weight: 600; }
.ok { color: #11643a; font-weight: 600; }
.na { color: #666; font-style: italic; }
.warn { background: #fff4e0; border-left: 4px solid #e69f00; padding: 6px 10px; }
.verdict { background: #f6f9fc; border: 1px solid #cfdcea; border-radius: 6px; padding: 4px 16px 10px; }
.verdict h2 { border: 0; margin-top: 0.6em; }
.verdict .winner { font-weight: 600; }
.verdict-table td, .verdict-table th { white-space: normal; }
.verdict-table .num { white-space: nowrap; text-align: right; }
.note { color: #555; font-size: 0.92em; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; display: block; border: 1px solid #e3e3e3; }
figcaption { color: #555; font-size: 0.92em; }
code, pre { font-family: ui-monospace, 'SFMono-Regular', Menlo, monospace; font-size: 0.92em; }
pre { background: #f5f5f5; padding: 8px 10px; overflow-x: auto; }
blockquote { margin: 1em 0; padding: 4px 12px; border-left: 4px solid #e69f00; background: #fff4e0; }
footer { margin-top: 2em; color: #666; font-size: 0.9em; }
";

/// Nothing may be fetched and no script may run: the page is a document.
/// Inline styles are ours (and pulldown-cmark's `style="text-align…"`).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Renders the whole page: head, the Markdown report up to its first
/// section, the verdict, the rest of the report with plots inlined, plots the
/// report does not mention, and a footer.
pub fn render_html(run: &RunFile, markdown: &str, plots: &[SvgFile]) -> String {
    let name = report::scenario_name(&run.scenario).unwrap_or_else(|| "unnamed scenario".into());
    let mut out =
        String::with_capacity(64 * 1024 + plots.iter().map(|p| p.svg.len()).sum::<usize>());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"generator\" content=\"pushbench {}\">\n\
         <title>pushbench: {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&name)
    );

    let verdict = verdict(run);
    let mut used = vec![false; plots.len()];
    // A sweep's points each have their own figures: one verdict over them
    // all would mix workloads, so its page has none (report.md's per-point
    // tables say it all).
    let mut verdict_done = report::is_sweep(run);
    let mut in_cell = false;
    let mut reopen_paragraph = false;
    // Markdown events waiting to be rendered, so our own HTML can be put between them.
    let mut pending: Vec<Event<'_>> = Vec::new();

    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events = Parser::new_ext(markdown, options);
    while let Some(event) = events.next() {
        match event {
            // The verdict goes before the first section (after the title,
            // scenario line and headline), so it is the first thing read.
            Event::Start(Tag::Heading {
                level: HeadingLevel::H2,
                ..
            }) if !verdict_done => {
                flush(&mut out, &mut pending);
                verdict_html(&mut out, run, &verdict);
                verdict_done = true;
                pending.push(event);
            }
            // A local SVG image: the SVG itself, inline, as a figure. A
            // figure may not sit in a paragraph, so an image alone in one
            // (as report.md writes them) takes its paragraph's place.
            Event::Start(Tag::Image { dest_url, .. }) => {
                if matches!(pending.last(), Some(Event::Start(Tag::Paragraph))) {
                    pending.pop();
                    reopen_paragraph = true;
                }
                // The alt text is the caption; consume it up to the end of the image.
                let mut alt = String::new();
                for inner in events.by_ref() {
                    match inner {
                        Event::End(TagEnd::Image) => break,
                        Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                        _ => {}
                    }
                }
                flush(&mut out, &mut pending);
                let file = dest_url.trim_start_matches("./");
                match plots.iter().position(|p| p.file_name == file) {
                    Some(i) => {
                        used[i] = true;
                        figure_html(&mut out, &plots[i], &alt);
                    }
                    None => {
                        let _ = write!(
                            out,
                            "<span class=\"na\">[{}: {} is not in this run directory, or not an \
                             SVG chart]</span>",
                            esc(&alt),
                            esc(&dest_url)
                        );
                    }
                }
            }
            // The paragraph an image was alone in ends with it.
            Event::End(TagEnd::Paragraph) if reopen_paragraph => reopen_paragraph = false,
            // More after the image in its paragraph: open the paragraph again for it.
            _ if reopen_paragraph => {
                reopen_paragraph = false;
                pending.push(Event::Start(Tag::Paragraph));
                handle_event(event, &mut pending, &mut in_cell);
            }
            other => handle_event(other, &mut pending, &mut in_cell),
        }
    }
    flush(&mut out, &mut pending);
    if !verdict_done {
        verdict_html(&mut out, run, &verdict);
    }

    let rest: Vec<&SvgFile> = plots
        .iter()
        .zip(&used)
        .filter(|&(_, &u)| !u)
        .map(|(p, _)| p)
        .collect();
    if !rest.is_empty() {
        out.push_str("<section id=\"plots\">\n<h2>Plots</h2>\n");
        for p in rest {
            figure_html(&mut out, p, p.file_name.trim_end_matches(".svg"));
        }
        out.push_str("</section>\n");
    }
    let _ = write!(
        out,
        "<footer>Generated by pushbench {} from <code>run.json</code> alone; \
         <code>pushbench report DIR</code> regenerates this page, <code>report.md</code> and the \
         plots.</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// Queues one Markdown event, restyled where the report's Markdown means
/// more than its markup: raw HTML becomes text, status cells get a class,
/// struck (invalid) figures say why.
fn handle_event<'a>(event: Event<'a>, pending: &mut Vec<Event<'a>>, in_cell: &mut bool) {
    match event {
        // Raw HTML in the Markdown is shown as text, never interpreted.
        Event::Html(t) | Event::InlineHtml(t) => pending.push(Event::Text(t)),
        Event::Start(Tag::TableCell) => {
            *in_cell = true;
            pending.push(event);
        }
        Event::End(TagEnd::TableCell) => {
            *in_cell = false;
            pending.push(event);
        }
        // Status cells get a class, so "✗ not verified" is red in every table.
        Event::Text(t) if *in_cell && (t.starts_with('✗') || t.starts_with('✓')) => {
            let class = if t.starts_with('✗') { "bad" } else { "ok" };
            pending.push(Event::InlineHtml(CowStr::from(format!(
                "<span class=\"{class}\">{}</span>",
                esc(&t)
            ))));
        }
        // report.md strikes exactly the speed figures of unverified transports.
        Event::Start(Tag::Strikethrough) => pending.push(Event::InlineHtml(CowStr::Borrowed(
            "<del class=\"invalid\" title=\"invalid: this transport did not verify\">",
        ))),
        other => pending.push(other),
    }
}

/// Renders the Markdown events waiting in `pending` and empties it.
fn flush(out: &mut String, pending: &mut Vec<Event<'_>>) {
    pulldown_cmark::html::push_html(out, pending.drain(..));
}

/// One plot as a figure: the SVG inline, captioned; a plot that is not a
/// plain SVG document is named instead of inlined.
fn figure_html(out: &mut String, svg_file: &SvgFile, caption: &str) {
    out.push_str("<figure>\n");
    match inline_svg(&svg_file.svg) {
        Ok(svg) => {
            out.push_str(svg);
            out.push('\n');
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "<p class=\"warn\">{} not inlined: {why}.</p>",
                esc(&svg_file.file_name)
            );
        }
    }
    let _ = writeln!(
        out,
        "<figcaption>{} <span class=\"note\">({})</span></figcaption>\n</figure>",
        esc(caption),
        esc(&svg_file.file_name)
    );
}

/// The `<svg>…</svg>` element of an SVG file, ready to inline: an XML
/// declaration, a doctype and comments before it are dropped. Anything that
/// is not one plain SVG element, or that carries a script or foreign HTML, is
/// refused (the CSP would block it anyway; refusing says why on the page).
pub fn inline_svg(text: &str) -> Result<&str, &'static str> {
    let mut s = text.trim_start_matches('\u{feff}').trim();
    loop {
        let skip = if s.starts_with("<?") {
            s.find("?>").map(|i| i + 2)
        } else if s.starts_with("<!--") {
            s.find("-->").map(|i| i + 3)
        } else if s.starts_with("<!") {
            s.find('>').map(|i| i + 1)
        } else {
            break;
        };
        match skip {
            Some(i) => s = s[i..].trim_start(),
            None => return Err("malformed prolog"),
        }
    }
    let opens =
        s.starts_with("<svg") && s[4..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>');
    if !opens || !s.ends_with("</svg>") {
        return Err("not an SVG document");
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("<script") || lower.contains("<foreignobject") {
        return Err("it contains a script or foreign content");
    }
    Ok(s)
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<b a="x">Tom & 'Jerry'</b>"#),
            "&lt;b a=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn every_metric_has_an_aspect_and_the_known_ones_are_right() {
        let aspect = |k| aspect_of(report::metric(k).unwrap());
        assert_eq!(aspect("latency_p50"), Aspect::Latency);
        assert_eq!(aspect("connect_p99"), Aspect::Latency);
        assert_eq!(aspect("delivered_per_s"), Aspect::Throughput);
        assert_eq!(aspect("requests_per_event"), Aspect::Cost);
        assert_eq!(aspect("missing"), Aspect::Correctness);
        assert_eq!(aspect("errors"), Aspect::Correctness);
    }

    #[test]
    fn svg_is_inlined_without_prolog_and_refused_when_unsafe() {
        let svg = "<svg width=\"1\" height=\"1\"><rect/></svg>";
        let with_prolog =
            format!("\u{feff}<?xml version=\"1.0\"?>\n<!-- made -->\n<!DOCTYPE svg>\n{svg}\n");
        assert_eq!(inline_svg(&with_prolog), Ok(svg));
        assert!(inline_svg("<svgx></svgx>").is_err());
        assert!(inline_svg("<div>hi</div>").is_err());
        assert!(inline_svg("<svg><SCRIPT>alert(1)</SCRIPT></svg>").is_err());
        assert!(inline_svg("<svg><foreignObject><p/></foreignObject></svg>").is_err());
        assert!(inline_svg("<?xml version=\"1.0\"").is_err());
    }

    /// A run without transports: the page around the Markdown is what is tested.
    fn empty_run() -> RunFile {
        serde_json::from_value(serde_json::json!({
            "schema_version": results::SCHEMA_VERSION,
            "provenance": results::Provenance::default(),
            "scenario": { "name": "t" },
            "complete": true,
            "generator_bound": false,
            "transports": [],
        }))
        .unwrap()
    }

    fn svg(name: &str) -> SvgFile {
        SvgFile {
            file_name: name.to_string(),
            svg: format!("<svg width=\"10\" height=\"10\"><title>{name}</title></svg>"),
        }
    }

    #[test]
    fn images_become_figures_and_unmentioned_plots_follow() {
        let md = "# t\n\n## Plot\n\n![the a chart](a.svg)\n\n![gone](missing.svg)\n\n\
                  ![b](./b.svg) and text after\n\n<b>raw</b>\n";
        let page = render_html(
            &empty_run(),
            md,
            &[svg("a.svg"), svg("b.svg"), svg("c.svg")],
        );
        // Inline, captioned, never inside a paragraph.
        assert!(
            page.contains("<figure>\n<svg width=\"10\" height=\"10\"><title>a.svg</title></svg>")
        );
        assert!(page.contains("<figcaption>the a chart <span class=\"note\">(a.svg)</span>"));
        assert!(!page.contains("<p><figure>"), "{page}");
        assert!(page.contains("</figure>\n<p> and text after</p>"), "{page}");
        assert!(page.contains("[gone: missing.svg is not in this run directory"));
        // c.svg is not in the Markdown: it gets a section of its own; a and b are not repeated.
        let plots = &page[page.find("<section id=\"plots\">").unwrap()..];
        assert!(plots.contains("<title>c.svg</title>") && !plots.contains("<title>a.svg</title>"));
        assert_eq!(page.matches("<title>b.svg</title>").count(), 1);
        // Raw HTML in the Markdown is text.
        assert!(page.contains("&lt;b&gt;raw&lt;/b&gt;") && !page.contains("<b>raw</b>"));
        // The verdict sits before the first section even with nothing measured.
        assert!(page.find("id=\"verdict\"").unwrap() < page.find("<h2>Plot</h2>").unwrap());
        assert!(page.contains("No transport was measured in this run."));
    }

    #[test]
    fn factors_and_names_read_well() {
        let p50 = report::metric("latency_p50").unwrap();
        let rate = report::metric("delivered_per_s").unwrap();
        assert_eq!(times(factor(p50, 2.0, 3.0).unwrap()), "×1.50");
        assert_eq!(times(factor(rate, 300.0, 100.0).unwrap()), "×3.00");
        assert_eq!(factor(p50, 0.0, 3.0), None);
        assert_eq!(figure(p50, 1.294), "1.29 ms");
        assert_eq!(figure(rate, 400.0), "400/s");
        assert_eq!(
            names(&[
                protocol::TransportKind::Sse.label().to_string(),
                protocol::TransportKind::Ws.label().to_string(),
                "django-eventstream (SSE)".to_string()
            ]),
            "SSE, WebSocket and django-eventstream (SSE)"
        );
    }
}
