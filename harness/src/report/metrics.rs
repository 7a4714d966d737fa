//! The one table of metric definitions ([`METRICS`]): key, label, unit,
//! which direction is better, and a function of a [`TransportResult`].
//! Adding a metric is adding a row; the summary table, the definitions
//! section, the headline, the HTML verdict and `compare` all follow from it.

use crate::report::format::{format_ms, format_significant};
use crate::results::TransportResult;

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
pub(crate) fn per_event(r: &TransportResult, x: f64) -> Option<f64> {
    (r.counts.delivered > 0).then(|| x / r.counts.delivered as f64)
}

/// Server CPU µs per delivered event.
pub(crate) fn cpu_us_per_event(r: &TransportResult) -> Option<f64> {
    per_event(r, r.server.as_ref()?.cpu_s * 1e6)
}

/// Bytes down + up per delivered event.
pub(crate) fn bytes_per_event(r: &TransportResult) -> Option<f64> {
    let w = r.wire.as_ref()?;
    per_event(r, (w.window.bytes_out + w.window.bytes_in) as f64)
}

/// Server RSS per connected client, KiB (connected idle − baseline).
pub(crate) fn rss_per_conn_kib(r: &TransportResult) -> Option<f64> {
    let s = r.server.as_ref()?;
    (s.idle_clients > 0).then(|| {
        (s.rss_idle_bytes as f64 - s.rss_baseline_bytes as f64) / s.idle_clients as f64 / 1024.0
    })
}

/// `f(r) / f(floor)`, the floor being the verified raw-TCP entry attached
/// by [`rows`]; `None` without one, or when the floor's figure is 0.
pub(crate) fn floor_ratio(
    r: &TransportResult,
    f: fn(&TransportResult) -> Option<f64>,
) -> Option<f64> {
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
