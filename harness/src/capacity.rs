//! `pushbench capacity`: how many clients (or how high a rate) each
//! transport serves on this machine within a latency SLO.
//!
//! Per transport, the search probes one point after another, each probe a
//! normal run of that transport alone (fresh server, warm-up, measured
//! window, verification) through the [`runner`]. It grows geometrically from
//! `--start` by `--factor` until a probe fails (p99 above `--slo-p99`,
//! delivery below `--min-delivery`, or not verified), then bisects between
//! the last pass and the first failure for `--refine` probes. It never
//! probes above `--max` (nor, for clients, above what the open-file limit
//! lets one fleet hold). A probe whose fleet was the bottleneck
//! (`generator_bound`) says nothing about the server: the search of that
//! transport stops there and says so.
//!
//! The stepping is the pure function [`next`] (probes so far in, next probe
//! or the end out), unit-tested apart from any measuring.
//!
//! Output, in `results/capacity-NAME/`: `capacity.json` (every probe with its
//! figures and verdict, the highest passing point per transport and why each
//! search stopped), `report.md` and `capacity.svg`; each probe's own run
//! (run.json, report, server log) under `probes/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use protocol::TransportKind;
use serde::{Deserialize, Serialize};

use crate::report;
use crate::report::plot::xy::{self as plot_xy, Reference, Series, XyChart};
use crate::results::{self, Provenance, TransportResult};
use crate::runner::{self, RunOptions};
use crate::scenario::Scenario;
use crate::scenario::check::fmt_duration;
use crate::scenario::sweep::SweepPoint;

/// Name of the search's results file.
pub const CAPACITY_JSON: &str = "capacity.json";
/// Name of the chart of the probes.
pub const CAPACITY_SVG: &str = "capacity.svg";
/// Version of the `capacity.json` layout.
pub const CAPACITY_VERSION: u32 = 1;
/// Measured window of a probe unless `--duration` (or a scenario file) says otherwise.
pub const PROBE_DURATION: Duration = Duration::from_secs(5);
/// Warm-up of a probe unless `--warmup` (or a scenario file) says otherwise.
pub const PROBE_WARMUP: Duration = Duration::from_secs(2);

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
fn delivery(r: &TransportResult) -> Option<f64> {
    (r.counts.expected > 0).then(|| r.counts.delivered as f64 / r.counts.expected as f64)
}

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

/// Flags of `pushbench capacity` beyond the scenario's.
///
/// The scenario flags are `run`'s, but a search makes many probes, so
/// three of them mean something else here, and their help says so.
#[derive(Debug, Args)]
#[command(
    mut_arg("duration", |a| a.help(format!(
        "Length of each probe's measured window, e.g. 10s [default: {}, shorter than a run's]",
        fmt_duration(PROBE_DURATION)
    ))),
    mut_arg("warmup", |a| a.help(format!(
        "Time each probe's fleet runs before its window opens [default: {}]",
        fmt_duration(PROBE_WARMUP)
    ))),
    mut_arg("repeat", |a| a.help(
        "Runs of each probe; the repetition with the median p99 decides pass or fail \
         (any repetition that loses events fails the probe) and the p99 spread is reported \
         [default: 1]"
    )),
)]
pub struct CapacityArgs {
    /// The scenario and the flags that override its values (its `clients`
    /// or `rate` is what the search replaces).
    #[command(flatten)]
    pub flags: crate::scenario::args::ScenarioArgs,
    /// What to raise: clients (rate fixed) or rate (clients fixed).
    #[arg(long, value_enum, default_value_t = Axis::Clients)]
    pub axis: Axis,
    /// The first value probed [default: 100 clients, or 1 event/s for --axis rate].
    #[arg(long, value_name = "N")]
    pub start: Option<f64>,
    /// Growth factor between probes until the first failure, above 1 and at most 100.
    #[arg(long, value_name = "F", default_value_t = 2.0)]
    pub factor: f64,
    /// Bisection probes between the last pass and the first failure (0 to 20).
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub refine: u32,
    /// Highest acceptable p99 latency, e.g. 100ms, 1s.
    #[arg(long, value_name = "DUR", default_value = "100ms", value_parser = crate::scenario::args::parse_duration)]
    pub slo_p99: Duration,
    /// Lowest acceptable share of expected events delivered, percent (0 to 100).
    #[arg(long, value_name = "PCT", default_value_t = 99.9)]
    pub min_delivery: f64,
    /// Largest fleet probed [default: what the open-file limit lets one fleet hold].
    #[arg(long, value_name = "N")]
    pub max_clients: Option<usize>,
    /// Largest rate probed with --axis rate, events/s per topic [default: 1000000].
    #[arg(long, value_name = "F")]
    pub max_rate: Option<f64>,
    /// Output directory [default: results/capacity-NAME, NAME being the scenario's name].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The push-server binary [default: push-server beside the pushbench executable].
    #[arg(long, value_name = "PATH", env = crate::server_process::SERVER_BIN_ENV)]
    pub server_bin: Option<PathBuf>,
    /// Print nothing but errors [default: off].
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Largest rate the scenario accepts (see `Scenario::validate`).
const MAX_RATE: f64 = 1_000_000.0;

impl CapacityArgs {
    /// The scenario probes start from (probe length defaults applied), and the search.
    pub fn plan(&self, fd_limit: Option<u64>) -> anyhow::Result<(Scenario, Search, Slo)> {
        let mut s = self.flags.scenario()?;
        if s.is_mixed() {
            bail!(
                "capacity cannot search a mixed scenario ([[group]]): it grows one transport's \
                 fleet; run the mix with `pushbench run` at the sizes to compare"
            );
        }
        // A search makes many probes: shorter ones unless asked otherwise.
        if self.flags.scenario.is_none() {
            s.duration = self.flags.duration.unwrap_or(PROBE_DURATION);
            s.warmup = self.flags.warmup.unwrap_or(PROBE_WARMUP);
        }
        // A sweep has no meaning here (the search is the sweep); repetitions
        // repeat each probe (`--repeat`, or the scenario file's `repeat`).
        if self.flags.scenario.is_none() {
            s.repeat = self.flags.repeat.unwrap_or(1);
        }
        if s.repeat > 9 {
            bail!(
                "--repeat must be from 1 to 9 for a capacity search (every probe runs that often), got {}",
                s.repeat
            );
        }
        s.sweep = Default::default();
        s.resolve_topics();
        s.validate_with_fd_limit(fd_limit)?;
        let fleet_max = crate::scenario::max_clients(fd_limit) as f64;
        if !(self.factor > 1.0 && self.factor <= 100.0) {
            bail!(
                "--factor must be above 1 and at most 100, got {}",
                self.factor
            );
        }
        if self.refine > 20 {
            bail!("--refine must be between 0 and 20, got {}", self.refine);
        }
        let slo_ms = self.slo_p99.as_secs_f64() * 1000.0;
        if self.slo_p99.is_zero() {
            bail!(
                "--slo-p99 must be longer than 0, got {}",
                fmt_duration(self.slo_p99)
            );
        }
        if !(self.min_delivery >= 0.0 && self.min_delivery <= 100.0) {
            bail!(
                "--min-delivery must be between 0 and 100 (percent), got {}",
                self.min_delivery
            );
        }
        let (start, max) = match self.axis {
            Axis::Clients => {
                if self.max_rate.is_some() {
                    bail!("--max-rate applies to --axis rate only");
                }
                let max = match self.max_clients {
                    Some(m) if m < 1 || m as f64 > fleet_max => bail!(
                        "--max-clients must be between 1 and {fleet_max} (the open-file limit), got {m}"
                    ),
                    Some(m) => m as f64,
                    None => fleet_max,
                };
                (self.start.unwrap_or(100.0), max)
            }
            Axis::Rate => {
                if self.max_clients.is_some() {
                    bail!(
                        "--max-clients applies to --axis clients only (set the fleet with --clients)"
                    );
                }
                let max = match self.max_rate {
                    Some(m) if !(m > 0.0 && m <= MAX_RATE) => {
                        bail!("--max-rate must be above 0 and at most {MAX_RATE}, got {m}")
                    }
                    Some(m) => m,
                    None => MAX_RATE,
                };
                (self.start.unwrap_or(1.0), max)
            }
        };
        let lowest = if self.axis == Axis::Clients {
            1.0
        } else {
            0.001
        };
        if !(start >= lowest && start <= max) {
            bail!(
                "--start must be between {lowest} and {} (--max-{}), got {start}",
                fmt_value(self.axis, max),
                self.axis.as_str()
            );
        }
        let search = Search {
            axis: self.axis,
            start,
            factor: self.factor,
            refine: self.refine,
            max,
        };
        let slo = Slo {
            p99_ms: slo_ms,
            min_delivery: self.min_delivery / 100.0,
        };
        Ok((s, search, slo))
    }
}

/// A value of the axis as reports write it.
pub fn fmt_value(axis: Axis, v: f64) -> String {
    match axis {
        Axis::Clients => format!("{}", v as u64),
        Axis::Rate => format!("{v}"),
    }
}

/// The scenario of one probe: `transport` alone at `value`.
fn probe_scenario(base: &Scenario, transport: TransportKind, axis: Axis, value: f64) -> Scenario {
    let point = SweepPoint {
        index: 0,
        clients: if axis == Axis::Clients {
            value as usize
        } else {
            base.clients
        },
        rate: if axis == Axis::Rate { value } else { base.rate },
        payload_bytes: base.payload_bytes,
    };
    let mut s = base.at(&point);
    s.transports = vec![transport.into()];
    s
}

/// Runs the search for every transport of `base` and writes `capacity.json`,
/// `report.md` and `capacity.svg` into `opts.out_dir` (saved after every
/// probe, so Ctrl-C keeps what was probed).
pub async fn search(
    base: &Scenario,
    search: &Search,
    slo: &Slo,
    opts: &RunOptions,
) -> anyhow::Result<CapacityFile> {
    // Each probe starts a fresh push-server of the transport; a target's
    // figures would need their own search set-up.
    let transports = base
        .transports
        .iter()
        .map(|c| match c {
            crate::scenario::Contender::Builtin(t) => Ok(*t),
            crate::scenario::Contender::Target(_) => Err(anyhow::anyhow!(
                "capacity searches push-server's transports; `{c}` is a target: \
                 measure it with `pushbench run` (or a [sweep])"
            )),
        })
        .collect::<anyhow::Result<Vec<TransportKind>>>()?;
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create output directory {}", opts.out_dir.display()))?;
    let command_line = opts.command_line.clone();
    let provenance = tokio::task::spawn_blocking(move || crate::provenance::collect(command_line))
        .await
        .context("collecting provenance")?;
    let mut file = CapacityFile {
        capacity_version: CAPACITY_VERSION,
        provenance,
        scenario: base.to_json(),
        search: *search,
        slo: *slo,
        complete: false,
        transports: Vec::new(),
    };
    for &transport in &transports {
        let mut done = TransportCapacity {
            transport,
            probes: Vec::new(),
            highest_passing: None,
            stop: Stop::Interrupted,
            stopped_because: String::new(),
        };
        let mut seen: Vec<(f64, Verdict)> = Vec::new();
        let stop = loop {
            let value = match next(search, &seen) {
                Next::Done(stop) => break stop,
                Next::Probe(v) => v,
            };
            if opts.interrupt.is_cancelled() {
                break Stop::Interrupted;
            }
            opts.progress.line(&format!(
                "capacity: {} at {} {}",
                transport.label(),
                fmt_value(search.axis, value),
                search.axis.as_str()
            ));
            let record = probe(base, transport, search.axis, value, slo, opts).await?;
            seen.push((value, record.verdict));
            opts.progress.line(&format!(
                "capacity: {} at {} {}: {}",
                transport.label(),
                fmt_value(search.axis, value),
                search.axis.as_str(),
                verdict_text(&record)
            ));
            done.probes.push(record);
            done.highest_passing = highest_passing(&done.probes);
            // Saved after every probe: Ctrl-C loses nothing probed.
            let mut partial = file.clone();
            partial.transports.push(done.clone());
            write_outputs(&opts.out_dir, &partial)?;
        };
        done.stop = stop;
        done.stopped_because = stop.describe(search.axis);
        file.transports.push(done);
        write_outputs(&opts.out_dir, &file)?;
        if stop == Stop::Interrupted {
            break;
        }
    }
    file.complete = file.transports.len() == transports.len()
        && file.transports.iter().all(|t| t.stop != Stop::Interrupted);
    write_outputs(&opts.out_dir, &file)?;
    opts.progress.line(&format!(
        "results: {}",
        opts.out_dir.join(CAPACITY_JSON).display()
    ));
    Ok(file)
}

/// The highest value whose probe passed (`None`: none did).
fn highest_pass(probes: impl Iterator<Item = (f64, Verdict)>) -> Option<f64> {
    probes
        .filter(|p| p.1 == Verdict::Pass)
        .map(|p| p.0)
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

/// The highest value whose probe passed.
fn highest_passing(probes: &[ProbeRecord]) -> Option<f64> {
    highest_pass(probes.iter().map(|p| (p.value, p.verdict)))
}

/// A probe's verdict and, unless it passed, why.
fn verdict_text(p: &ProbeRecord) -> String {
    if p.reasons.is_empty() {
        p.verdict.as_str().to_string()
    } else {
        format!("{} ({})", p.verdict.as_str(), p.reasons.join("; "))
    }
}

/// One probe: a normal run of `transport` alone at `value`, in its own
/// directory under `probes/`.
async fn probe(
    base: &Scenario,
    transport: TransportKind,
    axis: Axis,
    value: f64,
    slo: &Slo,
    opts: &RunOptions,
) -> anyhow::Result<ProbeRecord> {
    let scenario = probe_scenario(base, transport, axis, value);
    let dir = format!(
        "probes/{}-{}-{}",
        transport,
        axis.as_str(),
        fmt_value(axis, value)
    );
    let probe_opts = RunOptions {
        out_dir: opts.out_dir.join(&dir),
        ..opts.clone()
    };
    let outcome = runner::run(&scenario, &probe_opts).await?;
    let reps = &outcome.run.transports;
    let entry = median_by_p99(reps);
    let (verdict, reasons) = match entry {
        _ if !outcome.run.complete => (Verdict::Unfinished, vec!["interrupted".to_string()]),
        None => (
            Verdict::Unfinished,
            vec!["the probe did not run".to_string()],
        ),
        Some(r) => judge_repetitions(r, reps, slo),
    };
    let p99s: Vec<u64> = reps
        .iter()
        .filter(|r| r.latency.count > 0)
        .map(|r| r.latency.p99)
        .collect();
    let p99_range_us = (reps.len() > 1 && !p99s.is_empty()).then(|| {
        (
            p99s.iter().copied().min().unwrap_or(0),
            p99s.iter().copied().max().unwrap_or(0),
        )
    });
    Ok(ProbeRecord {
        value,
        clients: scenario.clients,
        rate: scenario.rate,
        verdict,
        reasons,
        p50_us: entry.filter(|r| r.latency.count > 0).map(|r| r.latency.p50),
        p99_us: entry.filter(|r| r.latency.count > 0).map(|r| r.latency.p99),
        delivery: entry.and_then(delivery),
        delivered_per_s: entry.map_or(0.0, |r| r.delivered_per_s),
        verified: !reps.is_empty() && reps.iter().all(|r| r.verified),
        repetitions: reps.len() as u32,
        p99_range_us,
        dir,
    })
}

fn one() -> u32 {
    1
}

/// The repetition whose p99 is the median (the lower middle of an even
/// count); repetitions without a latency sample sort first.
fn median_by_p99(reps: &[TransportResult]) -> Option<&TransportResult> {
    let mut sorted: Vec<&TransportResult> = reps.iter().collect();
    sorted.sort_by_key(|r| (r.latency.count > 0, r.latency.p99));
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// The verdict of a repeated probe: the median repetition's, except that a
/// repetition that did not verify (lost, duplicated or reordered events)
/// fails the probe whatever the others did.
fn judge_repetitions(
    median: &TransportResult,
    reps: &[TransportResult],
    slo: &Slo,
) -> (Verdict, Vec<String>) {
    let (verdict, mut reasons) = judge(median, slo);
    if verdict == Verdict::Pass
        && let Some(bad) = reps.iter().find(|r| !r.verified)
    {
        reasons.push(format!(
            "repetition {} not verified: {}",
            bad.repetition,
            bad.problems.join("; ")
        ));
        return (Verdict::Fail, reasons);
    }
    (verdict, reasons)
}

/// Writes `capacity.json`, `report.md` and `capacity.svg`, atomically each.
pub fn write_outputs(dir: &Path, file: &CapacityFile) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(file).context("serialising capacity.json")?;
    json.push(b'\n');
    results::write_atomic(&dir.join(CAPACITY_JSON), &json)?;
    results::write_atomic(&dir.join(CAPACITY_SVG), capacity_svg(file)?.as_bytes())?;
    results::write_atomic(
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

fn axis_title(axis: Axis) -> &'static str {
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
fn p99_cell(p: &ProbeRecord) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(start: f64, max: f64, refine: u32) -> Search {
        Search {
            axis: Axis::Clients,
            start,
            factor: 2.0,
            refine,
            max,
        }
    }

    /// Runs the search against a server that passes up to `limit` (and, if
    /// given, is fleet-bound from `fleet`), returning the values probed and
    /// the stop.
    fn simulate(s: &Search, limit: f64, fleet: Option<f64>) -> (Vec<f64>, Stop) {
        let mut probes = Vec::new();
        loop {
            match next(s, &probes) {
                Next::Done(stop) => return (probes.iter().map(|p| p.0).collect(), stop),
                Next::Probe(v) => {
                    assert!(probes.len() < 100, "the search must end");
                    let verdict = if fleet.is_some_and(|f| v >= f) {
                        Verdict::FleetBound
                    } else if v <= limit {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    };
                    probes.push((v, verdict));
                }
            }
        }
    }

    #[test]
    fn grows_geometrically_then_bisects_for_refine_steps() {
        let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 1000.0, None);
        // 100 200 400 800 pass, 1600 fails; bisect 1200 (f), 1000 (p), 1100 (f).
        assert_eq!(
            probed,
            [100.0, 200.0, 400.0, 800.0, 1600.0, 1200.0, 1000.0, 1100.0]
        );
        assert_eq!(stop, Stop::Refined);
    }

    #[test]
    fn refinement_count_is_respected() {
        for refine in [0, 1, 5] {
            let (probed, _) = simulate(&clients(100.0, 19_000.0, refine), 1000.0, None);
            let first_fail = probed.iter().position(|&v| v > 1000.0).unwrap();
            assert_eq!(probed.len() - 1 - first_fail, refine as usize, "{probed:?}");
        }
    }

    #[test]
    fn bisection_stops_at_adjacent_values() {
        let (probed, stop) = simulate(&clients(4.0, 1000.0, 20), 6.0, None);
        // 4 8(f) 6 7(f): 6 and 7 adjacent.
        assert_eq!(probed, [4.0, 8.0, 6.0, 7.0]);
        assert_eq!(stop, Stop::Refined);
    }

    #[test]
    fn never_probes_above_the_bound() {
        let (probed, stop) = simulate(&clients(100.0, 300.0, 3), 1e9, None);
        assert_eq!(probed, [100.0, 200.0, 300.0]);
        assert_eq!(stop, Stop::ReachedMax);
        // A start above the bound starts at the bound.
        let (probed, stop) = simulate(&clients(500.0, 300.0, 3), 1e9, None);
        assert_eq!((probed, stop), (vec![300.0], Stop::ReachedMax));
        // Failing near the bound bisects below it.
        let (probed, _) = simulate(&clients(100.0, 300.0, 3), 250.0, None);
        assert!(probed.iter().all(|&v| v <= 300.0), "{probed:?}");
    }

    #[test]
    fn a_fleet_bound_probe_stops_the_search() {
        let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 1e9, Some(800.0));
        assert_eq!(probed, [100.0, 200.0, 400.0, 800.0]);
        assert_eq!(stop, Stop::FleetBound { at: 800.0 });
        assert!(stop.describe(Axis::Clients).contains("fleet-bound at 800"));
    }

    #[test]
    fn a_failing_start_searches_down_but_never_below_one() {
        // Nothing passes: 100 fails, then 50, 25, 13 (refine 3), none passed.
        let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 0.0, None);
        assert_eq!(probed, [100.0, 50.0, 25.0, 13.0]);
        assert_eq!(stop, Stop::NonePassed);
        // A start of 1 that fails ends at once.
        let (probed, stop) = simulate(&clients(1.0, 19_000.0, 10), 0.0, None);
        assert_eq!((probed, stop), (vec![1.0], Stop::NonePassed));
        // Enough refinement reaches 1 and stops there.
        let (probed, stop) = simulate(&clients(8.0, 19_000.0, 20), 0.0, None);
        assert_eq!(probed, [8.0, 4.0, 2.0, 1.0]);
        assert_eq!(stop, Stop::NonePassed);
        // Something below the start passes: a normal bisection result.
        let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 30.0, None);
        assert_eq!(probed, [100.0, 50.0, 25.0, 38.0]);
        assert_eq!(stop, Stop::Refined);
    }

    #[test]
    fn the_rate_axis_steps_in_three_significant_digits() {
        let s = Search {
            axis: Axis::Rate,
            start: 1.0,
            factor: 10.0,
            refine: 2,
            max: 1e6,
        };
        let (probed, stop) = simulate(&s, 300.0, None);
        // 1 10 100 pass, 1000 fails; 550 (f), 325 (f).
        assert_eq!(probed, [1.0, 10.0, 100.0, 1000.0, 550.0, 325.0]);
        assert_eq!(stop, Stop::Refined);
        assert_eq!(round_value(Axis::Rate, 12.345), 12.3);
    }

    #[test]
    fn verdict_names_are_the_json_names() {
        for v in [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::FleetBound,
            Verdict::Unfinished,
        ] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }

    #[test]
    fn an_unfinished_probe_ends_the_search() {
        let s = clients(100.0, 1000.0, 3);
        let stop = next(&s, &[(100.0, Verdict::Pass), (200.0, Verdict::Unfinished)]);
        assert_eq!(stop, Next::Done(Stop::Interrupted));
    }
}
