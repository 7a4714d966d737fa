//! A link sweep's charts (`[sweep] rtt_ms`): latency, connect time and
//! bytes per event against the link's round-trip time, one line per
//! transport (and per loss, when that is swept too).

use crate::report::metrics::metric;
use crate::report::plot::style::titled;
use crate::report::plot::xy::{
    Reference, XyChart, ms_label, number_label, rate_and_payload, render, sweep_series,
};
use crate::results::{RunFile, TransportResult};

/// Whether `run` is a sweep over the link's round-trip time.
pub(crate) fn sweeps_rtt(run: &RunFile) -> bool {
    run.transports
        .iter()
        .any(|t| t.point.is_some_and(|p| p.rtt_ms.is_some()))
}

/// The x of an entry: its point's RTT, ms.
fn rtt(r: &TransportResult) -> Option<f64> {
    r.point.and_then(|p| p.rtt_ms)
}

/// What else tells one line from another: the loss, when swept, else the
/// rate and payload.
fn loss_or_workload(r: &TransportResult) -> String {
    match r.point.and_then(|p| p.loss_pct) {
        Some(loss) => format!("loss {loss} %"),
        None => rate_and_payload(r),
    }
}

fn against_rtt(
    run: &RunFile,
    title: &str,
    y_desc: &str,
    value: impl Fn(&TransportResult) -> Option<f64>,
    y_label: fn(f64) -> String,
) -> anyhow::Result<String> {
    let (mut series, left_out) = sweep_series(run, rtt, value, loss_or_workload);
    // A lossy line is dashed, beside its transport's loss-free line.
    for s in &mut series {
        s.dashed = s.label.contains("· loss") && !s.label.ends_with("· loss 0 %");
    }
    render(&XyChart {
        title: titled(run, title),
        x_desc: "round-trip time of the link (ms)".into(),
        y_desc: y_desc.into(),
        no_data: "no data: nothing was recorded at any point".into(),
        x_label: number_label,
        y_label,
        series,
        left_out,
        reference: Reference::None,
    })
}

/// Median latency against RTT.
pub fn rtt_p50_svg(run: &RunFile) -> anyhow::Result<String> {
    against_rtt(
        run,
        "Median latency against round-trip time",
        "median latency (ms)",
        |r| (r.latency.count > 0).then(|| r.latency.p50 as f64 / 1000.0),
        ms_label,
    )
}

/// p99 latency against RTT.
pub fn rtt_p99_svg(run: &RunFile) -> anyhow::Result<String> {
    against_rtt(
        run,
        "p99 latency against round-trip time",
        "p99 latency (ms)",
        |r| (r.latency.count > 0).then(|| r.latency.p99 as f64 / 1000.0),
        ms_label,
    )
}

/// Median connect time against RTT (first response, for polling).
pub fn rtt_connect_svg(run: &RunFile) -> anyhow::Result<String> {
    against_rtt(
        run,
        "Median connect time against round-trip time",
        "median connect time (ms)",
        |r| (r.connect.count > 0).then(|| r.connect.p50 as f64 / 1000.0),
        ms_label,
    )
}

/// Bytes down per delivered event against RTT.
pub fn rtt_bytes_svg(run: &RunFile) -> anyhow::Result<String> {
    against_rtt(
        run,
        "Bytes down per delivered event against round-trip time",
        "bytes down per delivered event",
        |r| metric("bytes_down_per_event").and_then(|m| (m.value)(r)),
        number_label,
    )
}
