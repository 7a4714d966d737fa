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

use crate::capacity::file::highest_passing;
use crate::capacity::file::verdict_text;
use crate::capacity::file::write_outputs;
use crate::capacity::rules::delivery;
use crate::capacity::rules::fmt_value;
use crate::results::TransportResult;
use crate::runner::{self, RunOptions};
use crate::scenario::Scenario;
use crate::scenario::check::fmt_duration;
use crate::scenario::sweep::SweepPoint;
use anyhow::{Context as _, bail};
use clap::Args;
use protocol::TransportKind;
use std::path::PathBuf;
use std::time::Duration;

mod file;
mod rules;
#[cfg(test)]
mod tests;

pub use file::{
    CAPACITY_JSON, CAPACITY_SVG, CAPACITY_VERSION, CapacityFile, ProbeRecord, TransportCapacity,
    render_markdown,
};
pub use rules::{Axis, Next, Search, Slo, Stop, Verdict, judge, next};

/// Measured window of a probe unless `--duration` (or a scenario file) says otherwise.
pub const PROBE_DURATION: Duration = Duration::from_secs(5);

/// Warm-up of a probe unless `--warmup` (or a scenario file) says otherwise.
pub const PROBE_WARMUP: Duration = Duration::from_secs(2);

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
pub(crate) const MAX_RATE: f64 = 1_000_000.0;

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
        // One process holds at most its open-file limit: agents and servers
        // behind a broker spread the clients over several.
        let fleet_max =
            crate::scenario::max_clients(fd_limit).saturating_mul(s.processes() as u64) as f64;
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
                        "--max-clients must be between 1 and {fleet_max} (the open-file limit of \
                         each of {} processes: `agents` and `servers` add more), got {m}",
                        s.processes()
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

/// The scenario of one probe: `transport` alone at `value`.
pub(crate) fn probe_scenario(
    base: &Scenario,
    transport: TransportKind,
    axis: Axis,
    value: f64,
) -> Scenario {
    let point = SweepPoint {
        index: 0,
        clients: if axis == Axis::Clients {
            value as usize
        } else {
            base.clients
        },
        rate: if axis == Axis::Rate { value } else { base.rate },
        payload_bytes: base.payload_bytes,
        rtt_ms: None,
        loss_pct: None,
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

/// One probe: a normal run of `transport` alone at `value`, in its own
/// directory under `probes/`.
pub(crate) async fn probe(
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

/// The repetition whose p99 is the median (the lower middle of an even
/// count); repetitions without a latency sample sort first.
pub(crate) fn median_by_p99(reps: &[TransportResult]) -> Option<&TransportResult> {
    let mut sorted: Vec<&TransportResult> = reps.iter().collect();
    sorted.sort_by_key(|r| (r.latency.count > 0, r.latency.p99));
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// The verdict of a repeated probe: the median repetition's, except that a
/// repetition that did not verify (lost, duplicated or reordered events)
/// fails the probe whatever the others did.
pub(crate) fn judge_repetitions(
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
