//! One [`Row`] per transport (or per group of a mixed run): its repetitions
//! aggregated, and [`Row::figure`] giving the median and min–max of a
//! metric over them. Ratios to the floor come from each entry's floor of
//! the same repetition ([`TransportResult::floor`]).

use crate::report::metrics::{Metric, Unit};
use crate::results::{RunFile, TransportResult};
use crate::scenario::sweep::SweepPoint;
use protocol::TransportKind;

/// A metric's median and range over the repetitions of one transport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many repetitions had a value.
    pub n: usize,
}

impl Figure {
    /// The figure of `values` (non-finite ones ignored); `None` if none is left.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// `median` alone, or `median (min–max)` when repetitions differ.
    pub fn format(&self, unit: Unit) -> String {
        let (lo, hi) = (unit.format(self.min), unit.format(self.max));
        // A range that reads as one number is no range.
        if self.n > 1 && lo != hi {
            format!("{} ({lo}–{hi})", unit.format(self.median))
        } else {
            unit.format(self.median)
        }
    }
}

/// One transport of a run with all its repetitions: what every table row
/// and chart bar shows.
#[derive(Debug, Clone)]
pub struct Row {
    /// Which transport (for a target: the protocol its clients spoke).
    pub transport: TransportKind,
    /// The target measured (`None`: push-server).
    pub target: Option<String>,
    /// Its entries (one per repetition, in run order), each with the floor
    /// of its repetition attached.
    pub entries: Vec<TransportResult>,
    /// Every repetition verified.
    pub verified: bool,
    /// Some repetition was generator-bound.
    pub generator_bound: bool,
}

impl Row {
    /// The median and min–max of `m` over the repetitions (`None`: no value in any).
    pub fn figure(&self, m: &Metric) -> Option<Figure> {
        let values: Vec<f64> = self.entries.iter().filter_map(|r| (m.value)(r)).collect();
        Figure::of(&values)
    }

    /// Whether its speed figures may compete: verified, not generator-bound, not the floor.
    pub fn contends(&self) -> bool {
        self.verified && !self.generator_bound && !self.is_floor()
    }

    /// `SSE`, or `django-eventstream (SSE)` for a target.
    pub fn label(&self) -> String {
        // An entry knows its label best (a mixed run's names its groups).
        self.entries.first().map_or_else(
            || crate::results::entry_label(self.transport, self.target.as_deref()),
            TransportResult::label,
        )
    }

    /// Whether this is push-server's raw-TCP floor.
    pub fn is_floor(&self) -> bool {
        self.target.is_none() && self.transport.is_floor()
    }
}

/// The rows of a run: one per transport in order of first appearance, each
/// entry with the floor's entry of the same repetition attached (or, if
/// that repetition has none, the first floor entry), for the ratio metrics.
pub fn rows(run: &RunFile) -> Vec<Row> {
    let floors: Vec<&TransportResult> = run.transports.iter().filter(|r| r.is_floor()).collect();
    let floor_of = |rep: u32| -> Option<Box<TransportResult>> {
        let f = floors
            .iter()
            .find(|f| f.repetition == rep)
            .or_else(|| floors.first())?;
        let mut f = (*f).clone();
        f.floor = None;
        Some(Box::new(f))
    };
    let mut rows: Vec<Row> = Vec::new();
    for r in &run.transports {
        let mut entry = r.clone();
        entry.floor = floor_of(r.repetition);
        match rows
            .iter_mut()
            .find(|row| row.transport == r.transport && row.target == r.target)
        {
            Some(row) => {
                row.verified &= r.verified;
                row.generator_bound |= r.fleet.generator_bound;
                row.entries.push(entry);
            }
            None => rows.push(Row {
                transport: r.transport,
                target: r.target.clone(),
                verified: r.verified,
                generator_bound: r.fleet.generator_bound,
                entries: vec![entry],
            }),
        }
    }
    rows
}

/// Whether `run` is a mixed run (its entries carry client groups).
pub fn is_mixed(run: &RunFile) -> bool {
    run.transports.iter().any(TransportResult::is_mixed)
}

/// Whether `run` is a sweep (its entries carry sweep points).
pub fn is_sweep(run: &RunFile) -> bool {
    run.transports.iter().any(|t| t.point.is_some())
}

/// A sweep's entries split by point, in grid order: one run per point,
/// holding only that point's entries, so every per-run table and figure
/// (repetitions, ratios to the floor) reads as it does for a single run.
pub fn point_runs(run: &RunFile) -> Vec<(SweepPoint, RunFile)> {
    let mut points: Vec<SweepPoint> = Vec::new();
    for p in run.transports.iter().filter_map(|t| t.point) {
        if !points.iter().any(|q| q.same_workload(&p)) {
            points.push(p);
        }
    }
    points.sort_by_key(|p| p.index);
    points
        .into_iter()
        .map(|p| {
            let mut sub = run.clone();
            sub.transports
                .retain(|t| t.point.is_some_and(|q| q.same_workload(&p)));
            (p, sub)
        })
        .collect()
}
