//! The runner: one transport after another, each on a fresh server.
//!
//! For each transport of the scenario:
//!
//! 1. start a fresh `push-server` (its schedule starting now, pinned to its
//!    cores), or, with a target URL, use the running server and its schedule
//!    from `/stats`; sample its memory before any client (the baseline) and
//!    start the resource timeline and the fleet's lag probe;
//! 2. start the fleet and wait (bounded) until every client has connected,
//!    then sample memory again (connected and idle);
//! 3. fix the measured window `[start, end)` in advance — `start` is the end
//!    of the warm-up — and publish it to every recorder before it opens;
//! 4. warm up, measure, then drain (clients keep running a little, so events
//!    due just before the end can still arrive); at both ends of the window
//!    read the server's `/stats` (bytes, requests) and the CPU time of the
//!    server and of the fleet, so the window's costs are differences that
//!    leave connection set-up and warm-up out;
//! 5. stop the fleet and the server, and verify: every client connected, and
//!    every client received exactly the ids the schedule put in the window on
//!    its topic, once each and in order. A fleet that saturated its cores or
//!    lagged behind its own timers marks the transport `generator_bound`.
//!
//! With `repeat = K` the transports run K times, odd repetitions in the
//! scenario's order and even ones reversed (ABCD DCBA ABCD …): slow drift of
//! the machine (other load, page cache, sockets in TIME_WAIT piling up) then
//! touches every transport alike on average, which plain ABCD ABCD would not
//! (the first transport would always run on the "freshest" machine).
//!
//! Latency and counts come from the recorders; the expected ids come from
//! [`protocol::Schedule`] alone, so a server that silently drops events cannot
//! hide it.
//!
//! Chat runs (`senders` > 0) have no generator (`rate = 0`), and senders
//! send only in the window, so a chat topic's log holds the window's
//! messages and nothing else: ids `1..=N`, `N` being the topic's last id,
//! read from the server after the drain (`/poll`'s `next`). Each subscriber
//! must then have received exactly `1..=N` of its topic, once each and in
//! order, and each sender every message it sent (none lost, no send
//! failed). A server that dies, or a Ctrl-C, ends the transport early: what
//! was measured is kept, marked unverified, and `run.json` is written after
//! every transport so nothing measured is lost.
//!
//! Mixed runs (`[[group]]`) run one entry per repetition instead of one per
//! transport: one server whose topic groups (`--topic-group`) give each
//! client group its own topics and rate, and one fleet holding every
//! group's clients at once. Each group is verified and summarised on its
//! own, against its own schedule, exactly as a transport would be
//! ([`Part`]); the server's and the fleet's costs belong to the entry.

use crate::placement::Placement;
use crate::progress::TransportPlan;
use crate::results::{self, RunFile, SCHEMA_VERSION};
use crate::runner::plan::RunId;
use crate::runner::plan::contenders;
use crate::runner::plan::plan_transport;
use crate::runner::plan::repetition_suffix;
use crate::runner::plan::transport_plan;
use crate::runner::transport::run_transport;
use crate::scenario::Scenario;
use crate::scenario::contender::Contender;
use crate::scenario::sweep::SweepPoint;
use crate::server_process::{self};
use crate::{provenance, report};
use anyhow::Context as _;
use std::path::{Path, PathBuf};

mod bounds;
mod browser;
mod cluster;
mod costs;
mod faults;
mod fleets;
mod plan;
mod start;
#[cfg(test)]
mod tests;
mod transport;
mod verify;
mod watch;

pub use plan::{RunOptions, repetition_order};

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Where the results are.
    pub out_dir: PathBuf,
    /// What was written to `run.json`.
    pub run: RunFile,
    /// Problems of the run as a whole (e.g. the report could not be rendered).
    pub problems: Vec<String>,
}

impl RunOutcome {
    /// The contract's success: the run completed and every transport verified.
    ///
    /// A generator-bound transport still passes: its events were all
    /// delivered; the report marks its figures as the fleet's.
    pub fn passed(&self) -> bool {
        self.failure().is_none()
    }

    /// Why the run did not pass, in one line (`None` when it passed).
    pub fn failure(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.run.complete {
            why.push("the run was interrupted before every transport ran".to_string());
        }
        for t in self.run.transports.iter().filter(|t| !t.verified) {
            why.push(format!(
                "{}{} not verified ({})",
                t.transport,
                repetition_suffix(&self.run, t.repetition),
                t.problems.join("; ")
            ));
        }
        if self.run.transports.is_empty() && self.run.complete {
            why.push("no transport ran".to_string());
        }
        why.extend(self.problems.iter().cloned());
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Runs `scenario` (already validated) and writes `run.json` and the report into `opts.out_dir`.
///
/// Errors only when nothing can be measured or saved at all (output directory
/// not writable, target unreachable); a transport that fails is recorded as
/// unverified and the run goes on.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<RunOutcome> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create output directory {}", opts.out_dir.display()))?;
    let command_line = opts.command_line.clone();
    let mut provenance = tokio::task::spawn_blocking(move || provenance::collect(command_line))
        .await
        .context("collecting provenance")?;
    provenance.placement = observed_placement(&opts.placement, opts.target.is_some());

    let mut scenario = scenario.clone();
    let mut scenario_json = scenario.to_json();
    if let Some(url) = &opts.target {
        // The running server decides what is generated: adopt its settings so
        // clients pick existing topics and the recorded scenario is the truth.
        let stats = server_process::fetch_stats(url)
            .await
            .with_context(|| format!("cannot read the schedule of target {url}"))?;
        let c = &stats.config;
        if !c.topic_groups.is_empty() {
            anyhow::bail!(
                "target {url} runs topic groups (--topic-group) with rates of their own: a run \
                 against it would expect one rate on every topic; start it with --rate and --topics"
            );
        }
        if (c.rate, c.topics, c.payload_bytes)
            != (scenario.rate, scenario.topics, scenario.payload_bytes)
        {
            opts.progress.line(&format!(
                "target {url} generates {} events/s on {} topics of {} B; the scenario's values are replaced",
                c.rate, c.topics, c.payload_bytes
            ));
        }
        scenario.rate = c.rate;
        scenario.topics = c.topics;
        scenario.payload_bytes = c.payload_bytes;
        scenario.history = c.history;
        scenario.event_type = c.event_type.clone();
        scenario_json = scenario.to_json();
        scenario_json["target"] = serde_json::Value::String(url.clone());
    }

    let placement = provenance.placement.clone();
    let mut run = RunFile {
        schema_version: SCHEMA_VERSION,
        provenance,
        scenario: scenario_json,
        complete: false,
        generator_bound: false,
        transports: Vec::new(),
    };
    // A sweep runs the whole scenario (every transport, every repetition)
    // at each point in turn; without one, the scenario is its one point.
    let swept = scenario.sweep.is_active();
    let points: Vec<(Option<SweepPoint>, Scenario)> = scenario
        .points()
        .into_iter()
        .map(|p| (swept.then_some(p), scenario.at(&p)))
        .collect();
    let plans: Vec<TransportPlan> = points
        .iter()
        .flat_map(|(_, at)| {
            (1..=at.repeat.max(1))
                .flat_map(|rep| contenders(at, rep))
                .map(|c| transport_plan(plan_transport(&c, at), at))
        })
        .collect();
    opts.progress.plan(&plans);
    let mut interrupted = false;
    'points: for (point, at) in &points {
        if let Some(p) = point {
            opts.progress
                .line(&format!("sweep point {} of {}: {p}", p.index, points.len()));
        }
        for rep in 1..=at.repeat.max(1) {
            let order = contenders(at, rep);
            if at.repeat > 1 {
                let names: Vec<&str> = order.iter().map(Contender::name).collect();
                opts.progress.line(&format!(
                    "repetition {rep} of {}: {}",
                    at.repeat,
                    names.join(", ")
                ));
            }
            for contender in order {
                if opts.interrupt.is_cancelled() {
                    interrupted = true;
                    break 'points;
                }
                let run_id = RunId {
                    contender,
                    repetition: rep,
                    point: *point,
                };
                let (result, cut_short) = run_transport(&run_id, at, opts, &placement).await;
                run.transports.extend(result.map(|mut r| {
                    r.point = *point;
                    r
                }));
                run.generator_bound = run.transports.iter().any(|t| t.fleet.generator_bound);
                // Saved after every transport: a crash later loses nothing measured.
                write_run_blocking(&opts.out_dir, &run).await?;
                if cut_short {
                    interrupted = true;
                    break 'points;
                }
            }
        }
    }
    // Complete: every planned transport ran its whole window (one whose
    // server died mid-run did not, even if the run went on).
    run.complete = !interrupted && !run.transports.iter().any(|t| t.ended_early);
    write_run_blocking(&opts.out_dir, &run).await?;

    opts.progress.finish();
    let mut problems = Vec::new();
    let dir = opts.out_dir.clone();
    match tokio::task::spawn_blocking(move || report::render_dir(&dir)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("the report could not be rendered: {e:#}")),
        Err(e) => problems.push(format!("the report could not be rendered: {e}")),
    }
    if run.generator_bound {
        opts.progress.line(
            "warning: the load generator was saturated or lagging in some runs; \
             the report marks those figures as the fleet's, not the server's",
        );
    }
    opts.progress.line(&format!(
        "results: {}",
        opts.out_dir.join(results::io::RUN_FILE).display()
    ));
    Ok(RunOutcome {
        out_dir: opts.out_dir.clone(),
        run,
        problems,
    })
}

/// The placement as it really is: the fleet's cores are read from this
/// thread's affinity (a runtime worker, which inherited the process's), and
/// a target server is not ours to pin.
pub(crate) fn observed_placement(asked: &Placement, target: bool) -> Placement {
    let mut p = asked.clone();
    let mut notes = vec![p.note.clone()];
    let actual = crate::sys::allowed_cpus();
    if !p.fleet_cpus.is_empty() && p.fleet_cpus != actual {
        notes.push(format!(
            "the fleet was to run on cores {:?} but runs on {actual:?} (not pinned by this process)",
            p.fleet_cpus
        ));
    }
    p.fleet_cpus = actual;
    if target && !p.server_cpus.is_empty() {
        p.server_cpus.clear();
        notes.push("the server is a --target: not started, so not pinned, by pushbench".into());
    }
    p.note = notes
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    p
}

pub(crate) async fn write_run_blocking(dir: &Path, run: &RunFile) -> anyhow::Result<()> {
    let (dir, run) = (dir.to_path_buf(), run.clone());
    tokio::task::spawn_blocking(move || results::io::write_run(&dir, &run))
        .await
        .context("writing run.json")?
}
