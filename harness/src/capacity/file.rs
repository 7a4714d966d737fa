//! What a capacity search writes: `capacity.json` (every probe and each
//! transport's verdict), its chart and `report.md`.

use crate::capacity::rules::highest_pass;
use crate::capacity::rules::{Axis, Search, Slo, Stop, Verdict, fmt_value};
use crate::report;
use crate::report::plot::xy as plot_xy;
use crate::report::plot::xy::Reference;
use crate::report::plot::xy::Series;
use crate::report::plot::xy::XyChart;
use crate::results::{self, Provenance};
use anyhow::Context as _;
use protocol::TransportKind;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Name of the search's results file.
pub const CAPACITY_JSON: &str = "capacity.json";

/// Name of the chart of the probes.
pub const CAPACITY_SVG: &str = "capacity.svg";

/// Version of the `capacity.json` layout.
pub const CAPACITY_VERSION: u32 = 1;

/// One probe as `capacity.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The value probed on the search's axis.
    pub value: f64,
    /// Clients of the probe.
    pub clients: usize,
    /// Events per second per topic of the probe.
    pub rate: f64,
    /// What it showed.
    pub verdict: Verdict,
    /// Why it did not pass (empty when it did).
    pub reasons: Vec<String>,
    /// Median latency, µs (`None`: no sample).
    pub p50_us: Option<u64>,
    /// 99th percentile latency, µs (`None`: no sample).
    pub p99_us: Option<u64>,
    /// Delivered / expected events (`None`: none expected).
    pub delivery: Option<f64>,
    /// Delivered events per second, all clients.
    pub delivered_per_s: f64,
    /// Runs of the probe (`--repeat`); the figures above are the median
    /// repetition's (by p99). Absent in files from before repetitions: 1.
    #[serde(default = "one")]
    pub repetitions: u32,
    /// The lowest and highest p99 over the repetitions, µs (`None`: one
    /// repetition, or no sample).
    #[serde(default)]
    pub p99_range_us: Option<(u64, u64)>,
    /// Whether the probe verified.
    pub verified: bool,
    /// The probe's own run directory, relative to the capacity directory.
    pub dir: String,
}

/// The search of one transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportCapacity {
    /// Which transport.
    pub transport: TransportKind,
    /// Every probe, in the order made.
    pub probes: Vec<ProbeRecord>,
    /// The highest passing value (`None`: none passed).
    pub highest_passing: Option<f64>,
    /// Why the search stopped.
    pub stop: Stop,
    /// The same in words.
    pub stopped_because: String,
}

/// The whole of `capacity.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityFile {
    /// Layout version ([`CAPACITY_VERSION`]).
    pub capacity_version: u32,
    /// Where and how the search was made.
    pub provenance: Provenance,
    /// The scenario every probe started from (its `clients` or `rate` replaced per probe).
    pub scenario: serde_json::Value,
    /// The search's settings.
    pub search: Search,
    /// The pass criteria.
    pub slo: Slo,
    /// Whether every transport's search ended on its own (not by Ctrl-C).
    pub complete: bool,
    /// One search per transport, in order.
    pub transports: Vec<TransportCapacity>,
}

/// Writes `capacity.json`, `report.md` and `capacity.svg`, atomically each.
pub fn write_outputs(dir: &Path, file: &CapacityFile) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(file).context("serialising capacity.json")?;
    json.push(b'\n');
    results::io::write_atomic(&dir.join(CAPACITY_JSON), &json)?;
    results::io::write_atomic(&dir.join(CAPACITY_SVG), capacity_svg(file)?.as_bytes())?;
    results::io::write_atomic(
        &dir.join(report::REPORT_MD),
        render_markdown(file).as_bytes(),
    )
}

/// The chart: p99 against the axis for every probe, the SLO as a line,
/// passing probes as dots and failing ones as crosses.
pub fn capacity_svg(file: &CapacityFile) -> anyhow::Result<String> {
    let series = file
        .transports
        .iter()
        .map(|t| Series {
            transport: t.transport,
            label: t.transport.label().to_string(),
            points: t
                .probes
                .iter()
                .filter_map(|p| {
                    Some((
                        p.value,
                        p.p99_us? as f64 / 1000.0,
                        p.verdict == Verdict::Pass,
                    ))
                })
                .collect(),
            dashed: false,
        })
        .collect();
    let left_out = file
        .transports
        .iter()
        .flat_map(|t| {
            t.probes
                .iter()
                .filter(|p| p.p99_us.is_none())
                .map(move |p| {
                    format!(
                        "{} at {} (no latency)",
                        t.transport.label(),
                        fmt_value(file.search.axis, p.value)
                    )
                })
        })
        .collect();
    plot_xy::render(&XyChart {
        title: format!(
            "Capacity search: p99 latency against {}",
            axis_title(file.search.axis)
        ),
        x_desc: axis_title(file.search.axis).into(),
        y_desc: "p99 latency (ms)".into(),
        no_data: "no data: no probe recorded latency".into(),
        x_label: plot_xy::number_label,
        y_label: plot_xy::ms_label,
        series,
        left_out,
        reference: Reference::Level(
            file.slo.p99_ms,
            format!("dashed: SLO, p99 ≤ {} ms", file.slo.p99_ms),
        ),
    })
}

pub(crate) fn axis_title(axis: Axis) -> &'static str {
    match axis {
        Axis::Clients => "clients",
        Axis::Rate => "events/s per topic",
    }
}

/// `report.md` of a search.
pub fn render_markdown(file: &CapacityFile) -> String {
    let axis = file.search.axis;
    let name = report::scenario_name(&file.scenario).unwrap_or_else(|| "unnamed".into());
    let mut md = String::new();
    let _ = writeln!(md, "# pushbench capacity: {name}\n");
    let fixed = match axis {
        Axis::Clients => format!(
            "rate {} events/s per topic",
            file.scenario.get("rate").cloned().unwrap_or_default()
        ),
        Axis::Rate => format!(
            "{} clients",
            file.scenario.get("clients").cloned().unwrap_or_default()
        ),
    };
    let _ = writeln!(
        md,
        "Highest {} each transport served with p99 latency ≤ {} ms, at least {} % of events \
         delivered and every event verified ({fixed}; payload {} B; each probe a {} window after \
         a {} warm-up). Search: from {} by ×{}, then {} bisection probes, at most {}.\n",
        axis.as_str(),
        file.slo.p99_ms,
        file.slo.min_delivery * 100.0,
        file.scenario
            .get("payload_bytes")
            .cloned()
            .unwrap_or_default(),
        file.scenario
            .get("duration")
            .and_then(|v| v.as_str())
            .unwrap_or("?"),
        file.scenario
            .get("warmup")
            .and_then(|v| v.as_str())
            .unwrap_or("?"),
        fmt_value(axis, file.search.start),
        file.search.factor,
        file.search.refine,
        fmt_value(axis, file.search.max),
    );
    if !file.complete {
        md.push_str("> **⚠ Incomplete:** the search was interrupted; transports missing below were not searched.\n\n");
    }
    let _ = writeln!(md, "## Highest passing {} per transport\n", axis.as_str());
    let _ = writeln!(
        md,
        "| transport | highest passing {} | p99 there | lowest failing | probes | why the search stopped |\n|---|---:|---:|---:|---:|---|",
        axis.as_str()
    );
    for t in &file.transports {
        let at = |v: Option<f64>| v.and_then(|v| t.probes.iter().find(|p| p.value == v));
        let pass = at(t.highest_passing);
        let fail = t
            .probes
            .iter()
            .filter(|p| p.verdict == Verdict::Fail)
            .min_by(|a, b| a.value.total_cmp(&b.value));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            t.transport.label(),
            pass.map_or("none passed".into(), |p| fmt_value(axis, p.value)),
            pass.map_or("–".into(), p99_cell),
            fail.map_or("–".into(), |p| fmt_value(axis, p.value)),
            t.probes.len(),
            t.stopped_because.replace('|', "\\|"),
        );
    }
    md.push_str(
        "\nA transport marked fleet-bound reached the load generator's limit before its own: \
         its capacity on this machine is at least the highest passing value, and unknown beyond.\n\n",
    );
    let _ = writeln!(md, "## Probes\n\n![capacity search]({CAPACITY_SVG})\n");
    let _ = writeln!(
        md,
        "| transport | {} | verdict | p50 | p99 | delivered | why | run |\n|---|---:|---|---:|---:|---:|---|---|",
        axis.as_str()
    );
    for t in &file.transports {
        for p in &t.probes {
            let ms = |v: Option<u64>| {
                v.map_or("–".into(), |us| {
                    format!("{} ms", report::format_ms(us as f64 / 1000.0))
                })
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | [{}]({}/report.md) |",
                t.transport.label(),
                fmt_value(axis, p.value),
                p.verdict.as_str(),
                ms(p.p50_us),
                p99_cell(p),
                p.delivery
                    .map_or("–".into(), |d| format!("{:.3} %", d * 100.0)),
                p.reasons.join("; ").replace('|', "\\|").replace('\n', " "),
                p.dir,
                p.dir,
            );
        }
    }
    let _ = writeln!(
        md,
        "\n---\n\nEvery probe is a normal pushbench run of one transport; its run.json and report \
         are in the directory the last column links. The search's figures are in `{CAPACITY_JSON}`. \
         Command line: `{}`.",
        file.provenance.command_line.join(" ")
    );
    md
}

/// A probe's p99, with its range over repetitions when it had several.
pub(crate) fn p99_cell(p: &ProbeRecord) -> String {
    let ms = |us: u64| report::format_ms(us as f64 / 1000.0);
    match (p.p99_us, p.p99_range_us) {
        (None, _) => "–".into(),
        (Some(us), None) => format!("{} ms", ms(us)),
        (Some(us), Some((lo, hi))) => format!(
            "{} ms (median of {}; {}–{})",
            ms(us),
            p.repetitions,
            ms(lo),
            ms(hi)
        ),
    }
}

pub(crate) fn one() -> u32 {
    1
}

/// The highest value whose probe passed.
pub(crate) fn highest_passing(probes: &[ProbeRecord]) -> Option<f64> {
    highest_pass(probes.iter().map(|p| (p.value, p.verdict)))
}

/// A probe's verdict and, unless it passed, why.
pub(crate) fn verdict_text(p: &ProbeRecord) -> String {
    if p.reasons.is_empty() {
        p.verdict.as_str().to_string()
    } else {
        format!("{} ({})", p.verdict.as_str(), p.reasons.join("; "))
    }
}
