//! The comparison's data and its judgement of one figure: the change, the
//! tolerance, better or worse by the metric's direction, and whether both
//! sides were valid to compare.

use crate::report::Better;
use crate::report::Metric;
use crate::report::Row;
use crate::scenario::sweep::SweepPoint;
use protocol::TransportKind;

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
pub(crate) fn valid(row: &Row) -> bool {
    row.verified && !row.generator_bound
}

/// Why a row's speed figures are not valid.
pub(crate) fn why_invalid(row: &Row) -> &'static str {
    if !row.verified {
        "not verified"
    } else {
        "generator-bound"
    }
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
