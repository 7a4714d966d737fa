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
//! struck through, never shown as if they were valid. A transport whose load
//! generator was saturated is marked "⚠ generator-bound". The headline only
//! considers verified transports that were not generator-bound, and never the
//! raw-TCP floor, which is the reference, not a contender.
//!
//! Repetitions are aggregated by [`rows`]: one [`Row`] per transport, whose
//! [`Row::figure`] gives the median and min–max of a metric over its
//! repetitions. Ratios to the floor are metrics too: [`rows`] attaches to
//! each entry the floor's entry of the same repetition
//! ([`TransportResult::floor`]), and the `…_x_floor` metrics divide by it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use protocol::TransportKind;
use serde_json::Value;

use crate::plot;
use crate::results::{self, RunFile, TransportResult};
use crate::sweep::SweepPoint;

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
    /// Microseconds.
    Us,
    /// Bytes.
    Bytes,
    /// Kibibytes (1024 bytes).
    KiB,
    /// Mebibytes (1024 KiB).
    MiB,
    /// Percent.
    Percent,
    /// A multiple of the raw-TCP floor's figure (`2.5×`).
    Multiple,
}

impl Unit {
    /// Short suffix for a column header (empty when the label says it all).
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Us => "µs",
            Unit::Bytes => "B",
            Unit::KiB => "KiB",
            Unit::MiB => "MiB",
            Unit::Percent => "%",
            // Rates carry their unit in the label ("delivered/s"); multiples
            // say "×" in every cell.
            Unit::PerSecond | Unit::Count | Unit::Ratio | Unit::Multiple => "",
        }
    }

    /// The unit in words, for the definitions table.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::PerSecond => "events/s",
            Unit::Count => "count",
            Unit::Ratio => "ratio",
            Unit::Us => "µs",
            Unit::Bytes => "bytes",
            Unit::KiB => "KiB",
            Unit::MiB => "MiB",
            Unit::Percent => "%",
            Unit::Multiple => "× floor",
        }
    }

    /// Formats a value of this unit with a precision that suits it.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Ms => format_ms(v),
            Unit::Count => format!("{v:.0}"),
            Unit::Multiple => format!("{}×", format_significant(v)),
            Unit::PerSecond
            | Unit::Ratio
            | Unit::Us
            | Unit::Bytes
            | Unit::KiB
            | Unit::MiB
            | Unit::Percent => format_significant(v),
        }
    }
}

/// Which table of the report a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The summary: latency, throughput and correctness.
    Summary,
    /// The cost: memory, CPU, bytes and requests, and the fleet's own load.
    Cost,
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
    /// The table it is shown in.
    pub group: Group,
    /// The value for one transport entry (one repetition), `None` when it
    /// does not apply or there is no data. Ratio metrics read the floor
    /// attached by [`rows`].
    pub value: fn(&TransportResult) -> Option<f64>,
}

/// µs → ms, or `None` for a histogram without samples.
pub(crate) fn ms(count: u64, us: u64) -> Option<f64> {
    (count > 0).then(|| us as f64 / 1000.0)
}

/// `x` per delivered event, or `None` when nothing was delivered.
fn per_event(r: &TransportResult, x: f64) -> Option<f64> {
    (r.counts.delivered > 0).then(|| x / r.counts.delivered as f64)
}

/// Server CPU µs per delivered event.
fn cpu_us_per_event(r: &TransportResult) -> Option<f64> {
    per_event(r, r.server.as_ref()?.cpu_s * 1e6)
}

/// Bytes down + up per delivered event.
fn bytes_per_event(r: &TransportResult) -> Option<f64> {
    let w = r.wire.as_ref()?;
    per_event(r, (w.window.bytes_out + w.window.bytes_in) as f64)
}

/// Server RSS per connected client, KiB (connected idle − baseline).
fn rss_per_conn_kib(r: &TransportResult) -> Option<f64> {
    let s = r.server.as_ref()?;
    (s.idle_clients > 0).then(|| {
        (s.rss_idle_bytes as f64 - s.rss_baseline_bytes as f64) / s.idle_clients as f64 / 1024.0
    })
}

/// `f(r) / f(floor)`, the floor being the verified raw-TCP entry attached
/// by [`rows`]; `None` without one, or when the floor's figure is 0.
fn floor_ratio(r: &TransportResult, f: fn(&TransportResult) -> Option<f64>) -> Option<f64> {
    let floor = r.floor.as_deref().filter(|f| f.verified)?;
    let (own, base) = (f(r)?, f(floor)?);
    (base > 0.0 && own.is_finite()).then(|| own / base)
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
        group: Group::Summary,
        value: |r| ms(r.latency.count, r.latency.p50),
    },
    Metric {
        key: "latency_p90",
        label: "p90",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "90th percentile latency",
        group: Group::Summary,
        value: |r| ms(r.latency.count, r.latency.p90),
    },
    Metric {
        key: "latency_p99",
        label: "p99",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "99th percentile latency",
        group: Group::Summary,
        value: |r| ms(r.latency.count, r.latency.p99),
    },
    Metric {
        key: "latency_p999",
        label: "p99.9",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "99.9th percentile latency",
        group: Group::Summary,
        value: |r| ms(r.latency.count, r.latency.p999),
    },
    Metric {
        key: "latency_max",
        label: "max",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "largest latency observed",
        group: Group::Summary,
        value: |r| ms(r.latency.count, r.latency.max),
    },
    Metric {
        key: "latency_p50_x_floor",
        label: "p50 ×floor",
        unit: Unit::Multiple,
        better: Better::Lower,
        speed: true,
        description: "median latency as a multiple of the raw-TCP floor's in the same repetition",
        group: Group::Summary,
        value: |r| floor_ratio(r, |r| ms(r.latency.count, r.latency.p50)),
    },
    Metric {
        key: "latency_p99_x_floor",
        label: "p99 ×floor",
        unit: Unit::Multiple,
        better: Better::Lower,
        speed: true,
        description: "99th percentile latency as a multiple of the raw-TCP floor's",
        group: Group::Summary,
        value: |r| floor_ratio(r, |r| ms(r.latency.count, r.latency.p99)),
    },
    Metric {
        key: "connect_p50",
        label: "connect p50",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "median connection set-up time (first response, for polling)",
        group: Group::Summary,
        value: |r| ms(r.connect.count, r.connect.p50),
    },
    Metric {
        key: "connect_p99",
        label: "connect p99",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: true,
        description: "99th percentile connection set-up time",
        group: Group::Summary,
        value: |r| ms(r.connect.count, r.connect.p99),
    },
    Metric {
        key: "delivered_per_s",
        label: "delivered/s",
        unit: Unit::PerSecond,
        better: Better::Higher,
        speed: true,
        description: "events delivered per second, all clients together, over the measured window",
        group: Group::Summary,
        value: |r| (r.window_s > 0.0 && r.delivered_per_s.is_finite()).then_some(r.delivered_per_s),
    },
    Metric {
        key: "expected",
        label: "expected",
        unit: Unit::Count,
        better: Better::Neither,
        speed: false,
        description: "events the clients should have received (scheduled in the window on their topics)",
        group: Group::Summary,
        value: |r| Some(r.counts.expected as f64),
    },
    Metric {
        key: "delivered",
        label: "delivered",
        unit: Unit::Count,
        better: Better::Higher,
        speed: false,
        description: "distinct expected events received",
        group: Group::Summary,
        value: |r| Some(r.counts.delivered as f64),
    },
    Metric {
        key: "missing",
        label: "missing",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "expected events never received",
        group: Group::Summary,
        value: |r| Some(r.counts.missing as f64),
    },
    Metric {
        key: "duplicated",
        label: "dup",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "extra copies of events already received",
        group: Group::Summary,
        value: |r| Some(r.counts.duplicated as f64),
    },
    Metric {
        key: "out_of_order",
        label: "out of order",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "events received after an event with a higher id",
        group: Group::Summary,
        value: |r| Some(r.counts.out_of_order as f64),
    },
    Metric {
        key: "errors",
        label: "errors",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "errors reported by clients (connect failures, bad responses…)",
        group: Group::Summary,
        value: |r| Some(r.counts.errors as f64),
    },
    Metric {
        key: "lost_outage",
        label: "lost (outage)",
        unit: Unit::Count,
        better: Better::Lower,
        speed: false,
        description: "expected events a killed server took with it (scheduled while it was down, \
                      or undelivered when it died) and never received; counted apart from \
                      missing, the transport's own losses (runs with faults only)",
        group: Group::Summary,
        value: |r| (!r.recovery.faults.is_empty()).then_some(r.recovery.lost_outage as f64),
    },
    Metric {
        key: "reconnect_p50",
        label: "reconnect p50",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: false,
        description: "median time from losing a connection to the first event after it \
                      (reconnect and resume), over every recovery",
        group: Group::Summary,
        value: |r| ms(r.recovery.reconnect.count, r.recovery.reconnect.p50),
    },
    Metric {
        key: "reconnect_p99",
        label: "reconnect p99",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: false,
        description: "99th percentile of the same",
        group: Group::Summary,
        value: |r| ms(r.recovery.reconnect.count, r.recovery.reconnect.p99),
    },
    Metric {
        key: "reconnect_max",
        label: "reconnect max",
        unit: Unit::Ms,
        better: Better::Lower,
        speed: false,
        description: "the slowest recovery: after a storm, the time until every client was back",
        group: Group::Summary,
        value: |r| ms(r.recovery.reconnect.count, r.recovery.reconnect.max),
    },
    Metric {
        key: "reconnect_attempts",
        label: "reconnect tries",
        unit: Unit::Count,
        better: Better::Neither,
        speed: false,
        description: "reconnection attempts, failed ones included (runs with faults only)",
        group: Group::Summary,
        value: |r| (!r.recovery.faults.is_empty()).then_some(r.recovery.reconnect_attempts as f64),
    },
    Metric {
        key: "rss_per_conn",
        label: "RSS/conn",
        unit: Unit::KiB,
        better: Better::Lower,
        speed: true,
        description: "server memory per connection: (server RSS right after every client connected, \
                      before the warm-up − RSS before any client) / clients connected; with rare \
                      events, memory per idle connection",
        group: Group::Cost,
        value: rss_per_conn_kib,
    },
    Metric {
        key: "tcp_mem_per_conn",
        label: "kernel TCP/conn",
        unit: Unit::KiB,
        better: Better::Lower,
        speed: true,
        description: "kernel memory charged to TCP socket buffers (/proc/net/sockstat `mem`) over \
                      the same span, per connection: both ends of a loopback connection, the whole \
                      machine; it excludes the socket structures themselves, so idle sockets show \
                      little here",
        group: Group::Cost,
        value: |r| {
            let s = r.server.as_ref()?;
            let (a, b) = (s.tcp_mem_baseline_bytes?, s.tcp_mem_idle_bytes?);
            (s.idle_clients > 0).then(|| (b as f64 - a as f64) / s.idle_clients as f64 / 1024.0)
        },
    },
    Metric {
        key: "rss_peak",
        label: "peak RSS",
        unit: Unit::MiB,
        better: Better::Lower,
        speed: true,
        description: "largest server RSS sampled (every 250 ms) in the measured window",
        group: Group::Cost,
        value: |r| {
            let s = r.server.as_ref()?;
            (s.rss_peak_bytes > 0).then(|| s.rss_peak_bytes as f64 / (1024.0 * 1024.0))
        },
    },
    Metric {
        key: "cpu_us_per_event",
        label: "CPU/event",
        unit: Unit::Us,
        better: Better::Lower,
        speed: true,
        description: "server user + system CPU time over the measured window per delivered event \
                      (/proc/<pid>/stat, 10 ms ticks)",
        group: Group::Cost,
        value: cpu_us_per_event,
    },
    Metric {
        key: "cpu_x_floor",
        label: "CPU ×floor",
        unit: Unit::Multiple,
        better: Better::Lower,
        speed: true,
        description: "server CPU per delivered event as a multiple of the raw-TCP floor's",
        group: Group::Cost,
        value: |r| floor_ratio(r, cpu_us_per_event),
    },
    Metric {
        key: "bytes_down_per_event",
        label: "down/event",
        unit: Unit::Bytes,
        better: Better::Lower,
        speed: true,
        description: "bytes the server wrote to client sockets over the measured window per \
                      delivered event (framing, headers, keep-alives and empty answers included)",
        group: Group::Cost,
        value: |r| per_event(r, r.wire.as_ref()?.window.bytes_out as f64),
    },
    Metric {
        key: "bytes_up_per_event",
        label: "up/event",
        unit: Unit::Bytes,
        better: Better::Lower,
        speed: true,
        description: "bytes the server read from client sockets over the window per delivered event \
                      (requests, pongs)",
        group: Group::Cost,
        value: |r| per_event(r, r.wire.as_ref()?.window.bytes_in as f64),
    },
    Metric {
        key: "bytes_x_floor",
        label: "bytes ×floor",
        unit: Unit::Multiple,
        better: Better::Lower,
        speed: true,
        description: "bytes down + up per delivered event as a multiple of the raw-TCP floor's",
        group: Group::Cost,
        value: |r| floor_ratio(r, bytes_per_event),
    },
    Metric {
        key: "requests_per_event",
        label: "req/event",
        unit: Unit::Ratio,
        better: Better::Lower,
        speed: true,
        description: "HTTP requests per delivered event (polling transports only)",
        group: Group::Cost,
        value: |r| {
            (r.transport.is_polling() && r.counts.delivered > 0)
                .then(|| r.counts.requests as f64 / r.counts.delivered as f64)
        },
    },
    Metric {
        key: "bytes_down_per_conn_min",
        label: "down/conn/min",
        unit: Unit::Bytes,
        better: Better::Lower,
        speed: true,
        description: "bytes the server wrote per connected client per minute of the window; while \
                      idle, what keep-alives (or polls) cost",
        group: Group::Cost,
        value: |r| {
            let w = r.wire.as_ref()?;
            (r.window_s > 0.0 && r.clients_connected > 0).then(|| {
                w.window.bytes_out as f64 / r.clients_connected as f64 / (r.window_s / 60.0)
            })
        },
    },
    Metric {
        key: "fleet_cpu",
        label: "fleet CPU",
        unit: Unit::Percent,
        better: Better::Neither,
        speed: false,
        description: "the fleet's own CPU use over the window, as a share of the cores it ran on \
                      (≥ 90 % marks the transport generator-bound)",
        group: Group::Cost,
        value: |r| {
            let cores = r.fleet.cpus.len();
            (r.window_s > 0.0 && cores > 0)
                .then(|| r.fleet.cpu_s / (r.window_s * cores as f64) * 100.0)
        },
    },
    Metric {
        key: "fleet_lag_p99",
        label: "fleet lag p99",
        unit: Unit::Ms,
        better: Better::Neither,
        speed: false,
        description: "how late the fleet's runtime woke a task sleeping 10 ms, 99th percentile \
                      (> 20 ms marks the transport generator-bound)",
        group: Group::Cost,
        value: |r| ms(r.fleet.lag.count, r.fleet.lag.p99),
    },
];

/// The metric with this key.
pub fn metric(key: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.key == key)
}

/// Reads `dir/run.json` and (re)writes `dir/report.md`, every chart of [`plot::PLOTS`] and
/// `dir/report.html` (which inlines the charts, so it comes last).
///
/// This is all `pushbench report DIR` does, so a report can be regenerated
/// (after a change to the report code, say) without re-running anything.
pub fn render_dir(dir: &Path) -> anyhow::Result<()> {
    let run = results::read_run(dir)?;
    let md = render_markdown(&run);
    results::write_atomic(&dir.join(REPORT_MD), md.as_bytes())?;
    plot::write_all(&run, dir)
        .with_context(|| format!("writing the charts in {}", dir.display()))?;
    crate::html::write_html(dir, &run, &md)
}

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

/// Renders the whole `report.md` for a run.
pub fn render_markdown(run: &RunFile) -> String {
    if is_sweep(run) {
        return render_sweep_markdown(run);
    }
    if is_mixed(run) {
        return crate::mixed_report::render_markdown(run);
    }
    let rows = rows(run);
    let mut md = String::new();
    preamble(&mut md, run);
    let _ = writeln!(md, "{}\n", headline(&rows));
    if run.generator_bound {
        md.push_str(
            "> **⚠ Generator-bound:** the load generator (the fleet) was saturated or lagging \
             while some transports ran (see *Load generator* below): their latency describes \
             the fleet, not the server, and they are left out of the headline.\n\n",
        );
    }

    md.push_str("## Summary\n\n");
    metric_table(&mut md, &rows, Group::Summary);
    floor_note(&mut md, &rows);
    problems(&mut md, &rows);

    for p in plot::plots_for(run).filter(|p| p.file == plot::LATENCY_SVG) {
        let _ = writeln!(md, "## {}\n", p.title);
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }

    faults(&mut md, run);
    chat(&mut md, run);
    crate::habits_report::habits(&mut md, run);
    cost(&mut md, run, &rows);
    how_to_read(&mut md, run);
    definitions(&mut md);
    provenance(&mut md, run);
    md.push_str(
        "---\n\nThis report is derived from `run.json` alone. Regenerate it (and its SVG charts) \
         with `pushbench report DIR`, where `DIR` is the directory holding this file.\n",
    );
    md
}

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

/// `report.md` of a sweep: the grid, the sweep charts, then one summary
/// table per point (the cost tables and per-run charts of a single run are
/// left out: they would mix points; `run.json` holds every figure).
fn render_sweep_markdown(run: &RunFile) -> String {
    let mut md = String::new();
    preamble(&mut md, run);
    let points = point_runs(run);
    let transports: Vec<&str> = rows(run).iter().map(|r| r.transport.label()).collect();
    let grid = lookup(&run.scenario, "sweep")
        .and_then(|v| serde_json::from_value::<crate::sweep::Sweep>(v.clone()).ok())
        .map(|s| s.describe())
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "**Sweep:** {} measured at {} (every transport at every point).\n",
        escape_md(&transports.join(", ")),
        counted(&points.len().to_string(), "point"),
    );
    if !grid.is_empty() {
        let _ = writeln!(md, "Grid: {}\n", code_span(&grid));
    }
    if run.generator_bound {
        md.push_str(
            "> **⚠ Generator-bound:** the load generator (the fleet) was saturated or lagging \
             at some points (marked below): their latency describes the fleet, not the server.\n\n",
        );
    }
    md.push_str("## Sweep charts\n\n");
    for p in plot::plots_for(run) {
        let _ = writeln!(md, "### {}\n", p.title);
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }
    md.push_str(
        "Each line is one transport (one line per rate and payload when those are swept too); \
         a filled dot is a verified point, a cross one that lost, duplicated or reordered \
         events or whose fleet was the bottleneck. Offered events/s is what the clients \
         should have received (events due in the window on their topics, per second); \
         a transport that keeps up lies on the dashed line y = x.\n\n",
    );
    md.push_str("## Points\n\n");
    for (p, sub) in &points {
        let rows = rows(sub);
        let _ = writeln!(md, "### Point {}: {}\n", p.index, code_span(&p.to_string()));
        metric_table(&mut md, &rows, Group::Summary);
        problems(&mut md, &rows);
    }
    definitions(&mut md);
    provenance(&mut md, run);
    md.push_str(
        "---\n\nThis report is derived from `run.json` alone. Regenerate it (and its SVG charts) \
         with `pushbench report DIR`, where `DIR` is the directory holding this file.\n",
    );
    md
}

/// The values of a JSON list, comma-separated.
fn list_of(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.to_string().trim_matches('"').to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The headline: which contending transport had the lowest p50 and p99
/// latency (medians over repetitions).
fn headline(rows: &[Row]) -> String {
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
fn status(row: &Row) -> String {
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
fn metric_table(md: &mut String, rows: &[Row], group: Group) {
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
fn floor_note(md: &mut String, rows: &[Row]) {
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
fn target_note(md: &mut String, rows: &[Row]) {
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
fn faults(md: &mut String, run: &RunFile) {
    if !plot::has_faults(run) {
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
    for p in plot::plots_for(run)
        .filter(|p| [plot::FAULTS_SVG, plot::CONNECTED_SVG, plot::RECONNECT_SVG].contains(&p.file))
    {
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }
}

/// The "Chat round trip" section of a chat run: per transport (and
/// repetition), how senders sent, what came back and how fast.
pub(crate) fn chat(md: &mut String, run: &RunFile) {
    if !plot::has_chat(run) {
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
    for (label, t) in plot::spectrum_series(run) {
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
    for p in plot::plots_for(run).filter(|p| p.file == plot::CHAT_SVG) {
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
    crate::habits_report::cpu_resolution(md, run);
    let elsewhere = [
        plot::LATENCY_SVG,
        plot::FAULTS_SVG,
        plot::CONNECTED_SVG,
        plot::RECONNECT_SVG,
    ];
    for p in plot::plots_for(run).filter(|p| !elsewhere.contains(&p.file)) {
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
fn kernel_tcp(md: &mut String, run: &RunFile) {
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

/// The server's settings as its `/stats` states them (buffers included),
/// generically as key/value: a setting that differs between the servers of
/// the run (e.g. the schedule's start) says so.
fn server_settings(md: &mut String, run: &RunFile) {
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
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
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
    md.push_str(
        "**The raw-TCP floor** (`tcp`) sends the same event bytes, length-prefixed, over a plain \
         socket from the same server: no HTTP, no framing beyond four bytes. It is what pushing \
         costs on this machine at the least; ×floor columns say how far each transport is from \
         it. **Generator-bound** marks a transport whose fleet used ≥ 90 % of its cores over the \
         window, or whose runtime woke a 10 ms timer more than 20 ms late at p99: its latency \
         then includes the fleet's own queueing.\n\n",
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
fn scenario_line(run: &RunFile) -> String {
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
    if items.is_empty() {
        "(not recorded)".to_string()
    } else {
        items.join(" · ")
    }
}

/// One item per `[[group]]` of a mixed scenario: `idle: 1900 SSE clients
/// on 1900 topics at 0.033 events/s each` (empty for any other scenario).
fn mixed_groups(scenario: &Value) -> Vec<String> {
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

/// `1 topic`, `4 topics`.
pub(crate) fn counted(n: &str, noun: &str) -> String {
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
pub(crate) fn lookup_duration(v: &Value, key: &str) -> Option<String> {
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

/// Formats a rate or ratio with about three significant digits (the
/// precision is chosen on the rounded value, so 0.9999 reads `1.00`, not `1.000`).
pub(crate) fn format_significant(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a >= 99.95 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 9.995 {
        format!("{v:.1}")
    } else if a >= 0.9995 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Collapses line breaks so free text cannot break a list item or table row.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes the characters that would turn free text into Markdown or HTML.
pub(crate) fn escape_md(s: &str) -> String {
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
    fn significant_digits_follow_the_rounded_value() {
        assert_eq!(format_significant(0.99999), "1.00");
        assert_eq!(format_significant(0.4123), "0.412");
        assert_eq!(format_significant(9.999), "10.0");
        assert_eq!(format_significant(99.96), "100");
        assert_eq!(format_significant(183.4), "183");
        assert_eq!(Unit::Multiple.format(2.5), "2.50×");
    }

    #[test]
    fn figures_are_medians_with_ranges() {
        let f = Figure::of(&[3.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
        assert_eq!((f.median, f.min, f.max, f.n), (2.5, 1.0, 10.0, 4));
        assert_eq!(f.format(Unit::Us), "2.50 (1.00–10.0)");
        let one = Figure::of(&[7.0]).unwrap();
        assert_eq!(one.format(Unit::Bytes), "7.00");
        // A range that rounds to one number is shown as that number.
        let flat = Figure::of(&[134.1, 134.2, 134.3]).unwrap();
        assert_eq!(flat.format(Unit::Bytes), "134");
        assert_eq!(Figure::of(&[]), None);
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
