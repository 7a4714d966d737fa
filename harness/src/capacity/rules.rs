//! The search's rules, without any run: the axis searched, the next value
//! to probe (doubling, then bisecting), when to stop and why, and whether a
//! probe met the SLO.

use crate::report;
use crate::results::TransportResult;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// What the search raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// Simulated clients (the rate per topic fixed).
    Clients,
    /// Events per second per topic (the clients fixed).
    Rate,
}

impl Axis {
    /// The axis as the command line and reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clients => "clients",
            Self::Rate => "rate",
        }
    }
}

/// The search's settings: where it starts, how it steps, where it stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Search {
    /// What is raised.
    pub axis: Axis,
    /// The first value probed.
    pub start: f64,
    /// Growth factor between probes until the first failure (above 1).
    pub factor: f64,
    /// Bisection probes between the last pass and the first failure.
    pub refine: u32,
    /// The largest value probed.
    pub max: f64,
}

/// What a probe showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Within the SLO, delivered, verified.
    Pass,
    /// Not (see the probe's reasons).
    Fail,
    /// The fleet was the bottleneck: the figures are the load generator's.
    FleetBound,
    /// Cut short by Ctrl-C or a failure to run: says nothing.
    Unfinished,
}

impl Verdict {
    /// The verdict as `capacity.json` and reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::FleetBound => "fleet-bound",
            Self::Unfinished => "unfinished",
        }
    }
}

/// Why a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Stop {
    /// Bisection narrowed the boundary as far as `--refine` allows, or to
    /// adjacent values.
    Refined,
    /// Every probe up to the bound passed: the capacity is at least `max`.
    ReachedMax,
    /// The fleet was the bottleneck at `at`: the server's capacity is unknown beyond.
    FleetBound {
        /// The value probed.
        at: f64,
    },
    /// The start point failed, and so did every value tried below it.
    NonePassed,
    /// Ctrl-C (or a probe that could not run) ended the search.
    Interrupted,
}

impl Stop {
    /// One sentence for the report.
    pub fn describe(&self, axis: Axis) -> String {
        match self {
            Self::Refined => "boundary bisected as far as --refine allows".into(),
            Self::ReachedMax => {
                "every probe passed up to the bound (--max-clients or --max-rate, or the open-file limit)".into()
            }
            Self::FleetBound { at } => format!(
                "fleet-bound at {} {}: the load generator, not the server, was the limit",
                fmt_value(axis, *at),
                axis.as_str()
            ),
            Self::NonePassed => {
                "none passed: the start failed, and every smaller value tried".into()
            }
            Self::Interrupted => "interrupted before the search ended".into(),
        }
    }
}

/// The next step of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Probe this value.
    Probe(f64),
    /// The search is over.
    Done(Stop),
}

/// Rounds `v` to what the axis can take: whole clients (at least 1), or a
/// rate with three significant digits (at least 0.001 events/s).
pub fn round_value(axis: Axis, v: f64) -> f64 {
    match axis {
        Axis::Clients => v.round().max(1.0),
        // Through decimal text, so 12.3 is the double nearest 12.3, not 123 × 0.1.
        Axis::Rate => format!("{:.2e}", v.max(0.001)).parse().unwrap_or(v),
    }
}

/// The next probe of a search, from the probes so far (value, verdict) in
/// the order made: a pure function, so the stepping is tested apart from
/// any measuring.
///
/// - Nothing probed: the start (bounded by `max`).
/// - A fleet-bound or unfinished probe ends the search.
/// - All passed so far: the last pass × `factor`, bounded by `max`; at `max`, done.
/// - A failure: bisect between the highest pass (or 0 when none: never
///   below 1 client) and the lowest failure, for `refine` probes after the
///   first failure, or until the two are adjacent.
pub fn next(s: &Search, probes: &[(f64, Verdict)]) -> Next {
    if let Some(&(at, _)) = probes.iter().find(|p| p.1 == Verdict::FleetBound) {
        return Next::Done(Stop::FleetBound { at });
    }
    if probes.iter().any(|p| p.1 == Verdict::Unfinished) {
        return Next::Done(Stop::Interrupted);
    }
    let max = round_value(s.axis, s.max);
    if probes.is_empty() {
        return Next::Probe(round_value(s.axis, s.start).min(max));
    }
    let pass = highest_pass(probes.iter().copied());
    let first_fail = probes.iter().position(|p| p.1 == Verdict::Fail);
    let Some(first_fail) = first_fail else {
        // Growing.
        let last = pass.unwrap_or(0.0);
        if last >= max {
            return Next::Done(Stop::ReachedMax);
        }
        let grown = round_value(s.axis, last * s.factor);
        // A factor too small to move a whole client still moves by one.
        let grown = if grown <= last { last + 1.0 } else { grown };
        return Next::Probe(grown.min(max));
    };
    let fail = probes
        .iter()
        .filter(|p| p.1 == Verdict::Fail)
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min);
    let lo = pass.filter(|p| *p < fail).unwrap_or(0.0);
    let refined = probes.len() - 1 - first_fail;
    let done = if pass.is_some() {
        Stop::Refined
    } else {
        Stop::NonePassed
    };
    if refined >= s.refine as usize {
        return Next::Done(done);
    }
    let mid = round_value(s.axis, (lo + fail) / 2.0);
    if mid <= lo || mid >= fail || probes.iter().any(|p| p.0 == mid) {
        return Next::Done(done);
    }
    Next::Probe(mid)
}

/// The pass criteria of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Highest acceptable p99 latency, ms.
    pub p99_ms: f64,
    /// Lowest acceptable share of expected events delivered (0.999 = 99.9 %).
    pub min_delivery: f64,
}

/// The verdict of one probe's result, with the reasons of a failure.
pub fn judge(r: &TransportResult, slo: &Slo) -> (Verdict, Vec<String>) {
    if r.fleet.generator_bound {
        return (Verdict::FleetBound, r.fleet.generator_bound_reasons.clone());
    }
    let mut why = Vec::new();
    if !r.verified {
        why.push(format!("not verified: {}", r.problems.join("; ")));
    }
    let delivery = delivery(r);
    if delivery.is_some_and(|d| d < slo.min_delivery) {
        why.push(format!(
            "delivered {:.3} % of expected events, below {:.3} %",
            delivery.unwrap_or(0.0) * 100.0,
            slo.min_delivery * 100.0
        ));
    }
    if r.latency.count == 0 {
        why.push("no latency sample".into());
    } else if r.latency.p99 as f64 / 1000.0 > slo.p99_ms {
        why.push(format!(
            "p99 {} ms above the SLO of {} ms",
            report::format_ms(r.latency.p99 as f64 / 1000.0),
            slo.p99_ms
        ));
    }
    if why.is_empty() {
        (Verdict::Pass, why)
    } else {
        (Verdict::Fail, why)
    }
}

/// Delivered / expected (`None`: nothing was expected).
pub(crate) fn delivery(r: &TransportResult) -> Option<f64> {
    (r.counts.expected > 0).then(|| r.counts.delivered as f64 / r.counts.expected as f64)
}

/// The highest value whose probe passed (`None`: none did).
pub(crate) fn highest_pass(probes: impl Iterator<Item = (f64, Verdict)>) -> Option<f64> {
    probes
        .filter(|p| p.1 == Verdict::Pass)
        .map(|p| p.0)
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

/// A value of the axis as reports write it.
pub fn fmt_value(axis: Axis, v: f64) -> String {
    match axis {
        Axis::Clients => format!("{}", v as u64),
        Axis::Rate => format!("{v}"),
    }
}
