//! The verdict on top of `report.html`: for each aspect (latency,
//! throughput, cost, bytes, resilience) and each metric of [`METRICS`] with a
//! direction, the best transport with valid figures and its figure, the
//! runner-up and the raw-TCP floor for reference. The floor never wins; an
//! unverified or generator-bound transport never wins.

use crate::report::format::esc;
use crate::report::metrics::{Better, METRICS, Metric, Unit};
use crate::report::mixed::shows;
use crate::report::rows::{Row, is_mixed, rows};
use crate::results::{RunFile, TransportResult};
use pulldown_cmark::Parser;
use std::fmt::Write as _;

/// What a metric speaks to. Derived from the metric's key (see [`aspect_of`]),
/// so metrics added to [`METRICS`] join the verdict without a change here.
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
    } else if m.unit == Unit::PerSecond || has("throughput") {
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
    /// the floor ([`Row::contends`]), in run order.
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

/// Computes the verdict of `run` from [`METRICS`] over
/// [`rows`] (repetitions aggregated to their median, as in the
/// tables): for every metric with a direction, the best contending
/// transport. The raw-TCP floor is a reference, shown beside the winner,
/// never the winner; unverified and generator-bound transports do not contend.
///
/// Figures equal as displayed (same formatted value) are ties: a difference
/// the report does not show is not a win.
pub fn verdict(run: &RunFile) -> Verdict {
    let rows = rows(run);
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
    for m in METRICS {
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
pub(crate) fn figure(m: &Metric, v: f64) -> String {
    let n = m.unit.format(v);
    match m.unit {
        Unit::PerSecond => format!("{n}/s"),
        Unit::Percent => format!("{n}%"),
        u if !u.suffix().is_empty() => format!("{n} {}", u.suffix()),
        _ => n,
    }
}

/// How much worse `other` is than `best`, as a factor ≥ 1 (`None` when it
/// cannot be said: a zero or a sign change).
pub(crate) fn factor(m: &Metric, best: f64, other: f64) -> Option<f64> {
    let f = match m.better {
        Better::Lower => other / best,
        _ => best / other,
    };
    (f.is_finite() && f > 0.0).then_some(f)
}

/// `×1.24`, three significant digits.
pub(crate) fn times(f: f64) -> String {
    if f >= 100.0 {
        format!("×{f:.0}")
    } else if f >= 10.0 {
        format!("×{f:.1}")
    } else {
        format!("×{f:.2}")
    }
}

/// Names joined for prose: `A`, `A and B`, `A, B and C`.
pub(crate) fn names(ts: &[String]) -> String {
    let labels: Vec<&str> = ts.iter().map(String::as_str).collect();
    match labels.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The first of `reasons`, with how many more there are.
pub(crate) fn first_reason(reasons: &[String]) -> String {
    match reasons {
        [] => "no reason recorded".to_string(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// The verdict of a mixed run: what it shows, group by group; its groups
/// do different work, so no transport is ranked (see [`crate::mixed_report`]).
pub(crate) fn mixed_verdict_html(out: &mut String, run: &RunFile) {
    out.push_str("<section id=\"verdict\" class=\"verdict\">\n<h2>Verdict</h2>\n");
    let shows = shows(run);
    pulldown_cmark::html::push_html(out, Parser::new(&shows));
    out.push_str("</section>\n");
}

/// The verdict section (HTML).
pub(crate) fn verdict_html(out: &mut String, run: &RunFile, v: &Verdict) {
    if is_mixed(run) {
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
pub(crate) fn aspect_sentence(av: &AspectVerdict, v: &Verdict) -> String {
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
pub(crate) fn verdict_table(out: &mut String, v: &Verdict) {
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
