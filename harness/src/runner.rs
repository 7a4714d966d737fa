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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use protocol::{Schedule, TransportKind};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fleet::{self, Fleet};
use crate::placement::Placement;
use crate::probe::{self, LagProbe, ProcUsage, Sampler};
use crate::progress::{Progress, Timed, TransportPlan, TransportProgress};
use crate::recorder::{Presence, Recorder, Totals, Window};
use crate::results::{
    self, FleetUsage, GroupResult, Histograms, RunFile, SCHEMA_VERSION, Sample, ServerUsage,
    Summary, TcpEvents, TransportResult, Wire,
};
use crate::scenario::check::fmt_duration;
use crate::scenario::sweep::SweepPoint;
use crate::scenario::{Contender, Scenario};
use crate::server_process::{self, ServerProcess, ServerSpec, ServerStats};
use crate::{provenance, report};

/// How often waits wake up to check the server, the fleet and Ctrl-C, and to redraw progress.
const TICK: Duration = Duration::from_millis(200);

/// Slack beyond the ramp-up time for every client to connect.
const CONNECT_SLACK: Duration = Duration::from_secs(10);

/// Least time between fixing the window and its start, so every recorder
/// sees the bounds before any event due in the window can arrive.
const WINDOW_LEAD: Duration = Duration::from_millis(50);

/// Drain after the window for push transports (and beyond the poll interval for short polling).
const DRAIN: Duration = Duration::from_secs(1);

/// Bound on waiting for the previous run's sockets to close before a baseline.
const SETTLE: Duration = Duration::from_secs(5);

/// Bound, beyond its pause, on a restarted server coming back (its port may
/// take a moment to be free again): past it the run ends, saved as incomplete.
const RESTART_BOUND: Duration = Duration::from_secs(15);

/// Pause between attempts to start a restarted server.
const RESTART_RETRY: Duration = Duration::from_millis(200);

/// Events scheduled this long before a kill may not have reached a push
/// client yet when the server died (in flight, or a client resuming from an
/// earlier drop): their loss is the kill's. Short polling adds its interval
/// (the events since a client's last poll die with the server's history).
const OUTAGE_SLACK: Duration = Duration::from_millis(200);

/// A fleet that used at least this share of its cores over the window is
/// saturated: its own queueing is in every latency it records.
pub const FLEET_CPU_BOUND: f64 = 0.90;

/// A fleet whose lag probe woke this late at p99 is behind its own schedule.
pub const FLEET_LAG_BOUND_US: u64 = 20_000;

/// How a run is carried out (everything that is not the scenario).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where `run.json`, the report and the server logs go.
    pub out_dir: PathBuf,
    /// A server already running (`--target URL`): no server is started.
    pub target: Option<String>,
    /// The `push-server` binary (required unless `target` is set).
    pub server_bin: Option<PathBuf>,
    /// The command line, recorded in the provenance.
    pub command_line: Vec<String>,
    /// Cancelled on Ctrl-C: the run stops and saves what it measured.
    pub interrupt: CancellationToken,
    /// How progress is shown.
    pub progress: Progress,
    /// Where the server and the fleet run. The runner pins each server it
    /// starts to `server_cpus`; pinning the fleet (this process) is the
    /// caller's job, before it builds its runtime (see
    /// [`placement::pin_process`]). The fleet's cores are recorded as
    /// observed, whatever was asked.
    pub placement: Placement,
}

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

/// ` (repetition 2)` when the run has several repetitions, else empty.
fn repetition_suffix(run: &RunFile, repetition: u32) -> String {
    if run.transports.iter().any(|t| t.repetition > 1) {
        format!(" (repetition {repetition})")
    } else {
        String::new()
    }
}

/// The order of the transports in repetition `rep` (1-based): the
/// scenario's order in odd repetitions, reversed in even ones (ABCD DCBA …;
/// see the module documentation for why).
pub fn repetition_order<T: Clone>(transports: &[T], rep: u32) -> Vec<T> {
    let mut order = transports.to_vec();
    if rep % 2 == 0 {
        order.reverse();
    }
    order
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
        opts.out_dir.join(results::RUN_FILE).display()
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
fn observed_placement(asked: &Placement, target: bool) -> Placement {
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

async fn write_run_blocking(dir: &Path, run: &RunFile) -> anyhow::Result<()> {
    let (dir, run) = (dir.to_path_buf(), run.clone());
    tokio::task::spawn_blocking(move || results::write_run(&dir, &run))
        .await
        .context("writing run.json")?
}

/// Why a wait ended.
#[derive(Debug)]
enum Waited {
    /// The condition held.
    Done,
    /// The deadline passed first.
    Deadline,
    /// Ctrl-C.
    Interrupted,
    /// The server process exited (the message says how).
    ServerExited(String),
    /// A restarted server did not come back (the message says why): the run ends.
    ServerLost(String),
}

/// Everything a wait watches.
struct Watch<'a> {
    fleet: &'a Fleet,
    server: Option<&'a mut ServerProcess>,
    interrupt: &'a CancellationToken,
    progress: &'a TransportProgress,
}

impl Watch<'_> {
    /// Waits until `done` holds or `deadline` passes, checking every [`TICK`]
    /// for Ctrl-C and for the server's exit, and redrawing progress.
    async fn until(
        &mut self,
        deadline: Instant,
        phase_start: Instant,
        done: impl Fn(&Fleet) -> bool,
    ) -> Waited {
        loop {
            if done(self.fleet) {
                return Waited::Done;
            }
            if let Some(server) = self.server.as_deref_mut() {
                if let Some(status) = server.exited() {
                    return Waited::ServerExited(format!(
                        "{} exited unexpectedly ({status}){}",
                        server.name(),
                        server.log_tail()
                    ));
                }
            }
            let now = Instant::now();
            self.progress.tick(
                self.fleet.connected(),
                now.saturating_duration_since(phase_start),
            );
            if now >= deadline {
                return Waited::Deadline;
            }
            tokio::select! {
                () = self.interrupt.cancelled() => return Waited::Interrupted,
                () = tokio::time::sleep_until(deadline.min(now + TICK)) => {}
            }
        }
    }

    /// Waits until `deadline` (a timed phase).
    async fn sleep_until(&mut self, deadline: Instant, phase_start: Instant) -> Waited {
        match self.until(deadline, phase_start, |_| false).await {
            Waited::Deadline => Waited::Done,
            other => other,
        }
    }
}

/// The tokio instant of a wall-clock time (µs since the Unix epoch).
fn instant_at(us: u64) -> Instant {
    let now_us = protocol::now_us();
    let now = Instant::now();
    if us >= now_us {
        now + Duration::from_micros(us - now_us)
    } else {
        now.checked_sub(Duration::from_micros(now_us - us))
            .unwrap_or(now)
    }
}

/// What was read at one instant: the server's counters and the CPU and
/// memory of the server and of the fleet.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    stats: Option<ServerStats>,
    server: Option<ProcUsage>,
    fleet: Option<ProcUsage>,
    /// The kernel's cumulative TCP event counters.
    tcp: Option<TcpEvents>,
}

impl Snapshot {
    /// Reads `/proc` first (instantaneous), then `/stats` (bounded) of
    /// `stats_url` (`None`: a target, which has no `/stats`).
    async fn take(server_pid: Option<u32>, stats_url: Option<&str>) -> Self {
        let server = server_pid.and_then(|pid| probe::read_process(Some(pid)));
        let fleet = probe::read_process(None);
        let tcp = probe::read_tcp_counters();
        let stats = match stats_url {
            Some(url) => match server_process::fetch_stats(url).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("GET /stats: {e:#}");
                    None
                }
            },
            None => None,
        };
        Self {
            stats,
            server,
            fleet,
            tcp,
        }
    }
}

/// What runs in repetition `rep`: the transports in [`repetition_order`],
/// or in a mixed run its one entry (named after its first group's
/// transport; [`fleet_parts`] holds the groups).
fn contenders(at: &Scenario, rep: u32) -> Vec<Contender> {
    match at.group.first() {
        Some(g) => vec![g.transport.into()],
        None => repetition_order(&at.transports, rep),
    }
}

/// The transport whose phases plan a run: short polling's, when a mixed
/// run has a short-polling group (its connect and drain are the longest).
fn plan_transport(contender: &Contender, scenario: &Scenario) -> TransportKind {
    let polls = |g: &crate::scenario::Group| g.transport == TransportKind::ShortPoll;
    if scenario.group.iter().any(polls) {
        TransportKind::ShortPoll
    } else {
        protocol_of(contender, scenario)
    }
}

/// One part of a run's fleet: clients of one transport on their own range
/// of topics with their own schedule. A mixed run has one per group;
/// any other run is one part, the whole fleet.
#[derive(Debug, Clone)]
struct Part {
    /// The group's name (`None` outside a mixed run).
    name: Option<String>,
    /// What its clients speak.
    transport: TransportKind,
    /// The part's own scenario: its clients, topics, rate and chat keys
    /// (see [`crate::scenario::Group::scenario`]).
    scenario: Scenario,
    /// Index of its first topic on the server.
    first_topic: u32,
    /// Its topics' schedule (topic `j` of it is the server's `first_topic + j`).
    schedule: Schedule,
}

/// The parts of a run's fleet (see [`Part`]); `schedule` is the server's
/// (only its start epoch counts in a mixed run, whose groups have their own).
fn fleet_parts(transport: TransportKind, scenario: &Scenario, schedule: &Schedule) -> Vec<Part> {
    if !scenario.is_mixed() {
        return vec![Part {
            name: None,
            transport,
            scenario: scenario.clone(),
            first_topic: 0,
            schedule: *schedule,
        }];
    }
    let schedules = protocol::schedule::TopicGroup::schedules(
        &scenario.topic_groups(),
        schedule.start_epoch_us,
    );
    scenario
        .group
        .iter()
        .zip(schedules)
        .map(|(g, (first_topic, schedule))| Part {
            name: Some(g.name.clone()),
            transport: g.transport,
            scenario: g.scenario(scenario),
            first_topic,
            schedule,
        })
        .collect()
}

/// Which run this is: what runs, its repetition and, in a sweep, its point.
#[derive(Debug, Clone)]
struct RunId {
    contender: Contender,
    repetition: u32,
    point: Option<SweepPoint>,
}

/// The log file of a server: `server-sse.log`, `server-sse-2.log` for
/// repetition 2, `server-sse-p3.log` at sweep point 3; a target's is named
/// after it (`server-django-eventstream.log`), a mixed run's is
/// `server-mixed.log`.
fn server_log_name(id: &RunId, name: &str) -> String {
    let point = id
        .point
        .map(|p| format!("-p{}", p.index))
        .unwrap_or_default();
    if id.repetition <= 1 {
        format!("server-{name}{point}.log")
    } else {
        format!("server-{name}{point}-{}.log", id.repetition)
    }
}

/// The protocol `contender`'s clients speak (a target's `transport`).
fn protocol_of(contender: &Contender, scenario: &Scenario) -> TransportKind {
    match contender {
        Contender::Builtin(t) => *t,
        // Validation guarantees the target is declared; SSE is a harmless
        // fallback for an unvalidated scenario (its run then fails to start).
        Contender::Target(name) => scenario
            .targets
            .get(name)
            .map_or(TransportKind::Sse, |t| t.transport),
    }
}

/// Runs one transport. Returns its result (none if it never got to start a
/// fleet because of Ctrl-C) and whether the run must stop (Ctrl-C).
async fn run_transport(
    id: &RunId,
    scenario: &Scenario,
    opts: &RunOptions,
    placement: &Placement,
) -> (Option<TransportResult>, bool) {
    let (contender, repetition) = (&id.contender, id.repetition);
    let transport = protocol_of(contender, scenario);
    // A target: its name and how to start it (`None`: a transport of push-server).
    let foreign = match contender {
        Contender::Target(name) => scenario.targets.get(name).map(|t| (name.as_str(), t)),
        Contender::Builtin(_) => None,
    };
    let target_name = foreign.map(|(name, _)| name);
    let plan = transport_plan(plan_transport(contender, scenario), scenario);
    let name = match foreign {
        Some((name, _)) => name,
        None if scenario.is_mixed() => MIXED,
        None => transport.as_str(),
    };
    let progress = opts.progress.transport(name, scenario.clients, plan);
    let mut problems: Vec<String> = Vec::new();

    // Faults need the admin routes (or the restart) of a push-server of ours.
    let faults = if scenario.faults.is_empty() {
        &[][..]
    } else if opts.target.is_some() {
        problems.push(
            "faults are injected only into a server pushbench starts, not a --target: none were"
                .to_string(),
        );
        &[][..]
    } else if foreign.is_some() {
        problems.push(format!(
            "faults are injected only into push-server (its admin routes and restart), \
             not into target `{name}`: none were"
        ));
        &[][..]
    } else {
        &scenario.faults[..]
    };
    let mut restart_ctx: Option<(ServerSpec, PathBuf, PathBuf)> = None;

    // 1. The server and its schedule.
    let (mut server, base_url, tcp_addr, schedule) = match (&opts.target, foreign) {
        (_, Some((name, target))) => {
            progress.starting(&format!("starting target {name}"));
            let start_epoch_us = protocol::now_us().div_ceil(1000) * 1000;
            let spec = ServerSpec::from_scenario(scenario, start_epoch_us);
            let log = opts.out_dir.join(server_log_name(id, name));
            let started = async {
                let listen = server_process::free_loopback_addr()?;
                let env = server_process::target_env(&spec, listen);
                ServerProcess::start_target(
                    name,
                    target,
                    (listen, &env, &placement.server_cpus),
                    &log,
                )
                .await
            };
            let started = tokio::select! {
                () = opts.interrupt.cancelled() => return (None, true),
                s = started => s,
            };
            match started {
                Ok(s) => {
                    let url = s.base_url().to_string();
                    tracing::info!(target = name, pid = s.pid(), %url, "target ready");
                    (Some(s), url, None, spec.schedule)
                }
                Err(e) => {
                    let r = unstarted((transport, target_name), scenario, format!("{e:#}"));
                    progress.finish(&r);
                    return (Some(with_repetition(r, repetition)), false);
                }
            }
        }
        (Some(url), None) => {
            progress.starting(&format!("using the server at {url}"));
            match server_process::fetch_stats(url).await {
                // A target's raw-TCP port is not known here: a tcp fleet
                // against a target reports the missing address as errors.
                Ok(stats) if scenario.is_chat() && stats.config.schedule().is_active() => {
                    let r = unstarted(
                        (transport, target_name),
                        scenario,
                        format!(
                            "chat needs a server that generates no events (rate 0): every event \
                             on a chat topic must be a message; the target generates {} events/s \
                             per topic",
                            stats.config.schedule().rate
                        ),
                    );
                    progress.finish(&r);
                    return (Some(with_repetition(r, repetition)), false);
                }
                Ok(stats) => (
                    None,
                    url.trim_end_matches('/').to_string(),
                    None,
                    stats.config.schedule(),
                ),
                Err(e) => {
                    let r = unstarted(
                        (transport, target_name),
                        scenario,
                        format!("target unreachable: {e:#}"),
                    );
                    progress.finish(&r);
                    return (Some(with_repetition(r, repetition)), false);
                }
            }
        }
        (None, None) => {
            progress.starting("starting push-server");
            // A whole millisecond, in the future: ids and times read cleanly in logs.
            let start_epoch_us = protocol::now_us().div_ceil(1000) * 1000;
            let mut spec = ServerSpec::from_scenario(scenario, start_epoch_us);
            // The floor's port is opened only for its own run: the others' servers stay identical.
            // (A mixed run has no floor: validation keeps tcp out of groups.)
            spec.tcp = transport == TransportKind::Tcp;
            spec.cpus = placement.server_cpus.clone();
            if !faults.is_empty() {
                match server_process::random_token() {
                    Ok(t) => spec.admin_token = Some(t),
                    Err(e) => {
                        let r = unstarted((transport, target_name), scenario, format!("{e:#}"));
                        progress.finish(&r);
                        return (Some(with_repetition(r, repetition)), false);
                    }
                }
            }
            let log = opts.out_dir.join(server_log_name(id, name));
            let Some(bin) = opts.server_bin.as_deref() else {
                let r = unstarted(
                    (transport, target_name),
                    scenario,
                    "no push-server binary given".into(),
                );
                progress.finish(&r);
                return (Some(with_repetition(r, repetition)), false);
            };
            let started = tokio::select! {
                () = opts.interrupt.cancelled() => return (None, true),
                s = ServerProcess::start(bin, &spec, &log) => s,
            };
            match started {
                Ok(s) => {
                    let url = s.base_url().to_string();
                    tracing::info!(%transport, pid = s.pid(), %url, "push-server ready");
                    let tcp = s.tcp_addr();
                    // A restart listens where this one does, with the same schedule.
                    let mut again = spec.clone();
                    again.listen = Some(s.addr());
                    again.tcp_listen = tcp;
                    restart_ctx = Some((again, bin.to_path_buf(), log.clone()));
                    (Some(s), url, tcp, spec.schedule)
                }
                Err(e) => {
                    let r = unstarted((transport, target_name), scenario, format!("{e:#}"));
                    progress.finish(&r);
                    return (Some(with_repetition(r, repetition)), false);
                }
            }
        }
    };
    let mut server_pid = server.as_ref().map(ServerProcess::pid);
    // The sampler follows a restarted server to its new process.
    let shared_pid = Arc::new(std::sync::atomic::AtomicU32::new(server_pid.unwrap_or(0)));
    // Before any client: the baseline of memory (once the previous run's
    // sockets have closed), and the settings the server states.
    probe::settle_sockets(SETTLE).await;
    let baseline = probe::sample(server_pid);
    // A target has no `/stats`: its bytes on the wire are not counted.
    let stats_url = foreign.is_none().then_some(base_url.as_str());
    let baseline_stats = match stats_url {
        Some(url) => server_process::fetch_stats(url).await.ok(),
        None => None,
    };
    let presence = Presence::new();
    let sampler = Sampler::following(
        shared_pid.clone(),
        Some(presence.clone()),
        probe::SAMPLE_EVERY,
    );
    let window = Arc::new(Window::new());
    let lag_probe = LagProbe::start(window.clone());

    // 2. The fleet: every part's clients, in order, each with its recorder.
    let parts = fleet_parts(transport, scenario, &schedule);
    // Chat senders wait for the window: it is sent to them once fixed.
    let (send_window, send_window_rx) = tokio::sync::watch::channel(None);
    let mut clients = Vec::with_capacity(scenario.clients);
    for part in &parts {
        let sc = &part.scenario;
        let hint =
            (expected_per_client(sc, &part.schedule) * sc.duration.as_secs_f64()).ceil() as u64 + 2;
        let mut configs =
            fleet::client_configs(part.transport, &base_url, tcp_addr, sc, &send_window_rx);
        fleet::place_group(&mut configs, part.first_topic, clients.len());
        for mut c in configs {
            if let Some((_, target)) = foreign {
                c.path = Some(target.path.clone());
            }
            let mut recorder = Recorder::new(window.clone(), presence.clone(), hint);
            if sc.is_chat() {
                recorder = recorder.chat(c.chat.as_ref().map(|c| c.sender));
            }
            clients.push((c, recorder));
        }
    }
    let fleet = Fleet::start(clients, scenario.connect_rate, presence);
    progress.connecting();
    let ramp = Duration::from_secs_f64(scenario.clients as f64 / scenario.connect_rate);
    // Short-polling clients "connect" at their first answer, up to one interval in.
    let connect_bound = ramp + scenario.poll_interval + CONNECT_SLACK;
    let mut watch = Watch {
        fleet: &fleet,
        server: server.as_mut(),
        interrupt: &opts.interrupt,
        progress: &progress,
    };
    let t0 = Instant::now();
    let clients = scenario.clients;
    let mut ended = watch
        .until(t0 + connect_bound, t0, |f| f.connected() >= clients)
        .await;
    if matches!(ended, Waited::Deadline) {
        problems.push(format!(
            "only {} of {clients} clients connected within {} (the run went on)",
            fleet.connected(),
            fmt_duration(round_s(connect_bound))
        ));
        ended = Waited::Done;
    }
    // Connected and (with rare events) idle: memory per connection is this minus the baseline.
    let idle = probe::sample(server_pid);
    let idle_clients = fleet.connected();

    // 3. Fix the window before it opens, then warm up, measure and drain.
    let mut window_start = 0;
    let (mut at_start, mut at_end) = (None, None);
    let mut fault_log = FaultLog::default();
    if matches!(ended, Waited::Done) {
        let lead = scenario.warmup.max(WINDOW_LEAD);
        window_start = (protocol::now_us() + lead.as_micros() as u64).div_ceil(1000) * 1000;
        let window_end = window_start + scenario.duration.as_micros() as u64;
        window.set(window_start, window_end);
        send_window.send_replace(Some((window_start, window_end)));
        let phases = [
            (Timed::WarmingUp, instant_at(window_start)),
            (Timed::Measuring, instant_at(window_end)),
            (Timed::Draining, instant_at(window_end) + plan.drain),
        ];
        let mut phase_start = Instant::now();
        for (phase, until) in phases {
            progress.timed_phase(
                phase,
                until.saturating_duration_since(phase_start),
                fleet.connected(),
            );
            if matches!(phase, Timed::Measuring) {
                ended = inject_faults(
                    &mut watch,
                    faults,
                    (window_start, phase_start),
                    &base_url,
                    restart_ctx.as_ref(),
                    (&window, &shared_pid),
                    &mut fault_log,
                )
                .await;
                if let Some(pid) = fault_log.new_pid {
                    server_pid = Some(pid);
                }
                if !matches!(ended, Waited::Done) {
                    break;
                }
            }
            ended = watch.sleep_until(until, phase_start).await;
            if !matches!(ended, Waited::Done) {
                break;
            }
            match phase {
                Timed::WarmingUp => at_start = Some(Snapshot::take(server_pid, stats_url).await),
                Timed::Measuring => at_end = Some(Snapshot::take(server_pid, stats_url).await),
                Timed::Draining => {}
            }
            phase_start = until;
        }
    }
    // The window was cut: by Ctrl-C, or because the server died or was lost.
    let ended_early = !matches!(ended, Waited::Done | Waited::Deadline);
    let interrupted = match ended {
        Waited::Done | Waited::Deadline => false,
        Waited::Interrupted => {
            problems.push(
                "interrupted (Ctrl-C or SIGTERM) before the transport finished; \
                 the figures cover the window up to then"
                    .to_string(),
            );
            window.cut(protocol::now_us());
            true
        }
        Waited::ServerExited(msg) => {
            problems.push(msg);
            window.cut(protocol::now_us());
            false
        }
        Waited::ServerLost(msg) => {
            problems.push(msg);
            window.cut(protocol::now_us());
            // The run ends here: later transports would meet the same failure.
            true
        }
    };
    if at_start.is_some() && at_end.is_none() {
        // Cut short: the window's costs run to the cut (if the server is still there).
        at_end = Some(Snapshot::take(server_pid, stats_url).await);
    }
    if let Some(u) = at_end.as_mut().and_then(|s| s.server.as_mut()) {
        // CPU of the killed servers since they started, so that end − start
        // covers every process that served the window (the window's share
        // of the first one's set-up is then included too: an overestimate).
        u.cpu_s += fault_log.cpu_carry_s;
    }
    // Totals since the server started, handshakes included, and the peak RSS it ever had.
    let drained_stats = if let (Some(_), Some(url)) = (&at_start, stats_url) {
        server_process::fetch_stats(url).await.ok()
    } else {
        None
    };
    let hwm = server_pid
        .and_then(|pid| probe::read_process(Some(pid)))
        .map(|u| u.hwm_bytes);
    // Chat: each chat part's topics' last ids, while the server is still there.
    let mut chat_last = Vec::with_capacity(parts.len());
    for part in &parts {
        let ids = if part.scenario.is_chat() && at_start.is_some() {
            match chat_last_ids(&base_url, &part.scenario, part.first_topic).await {
                Ok(ids) => Some(ids),
                Err(e) => {
                    problems.push(format!(
                        "chat: cannot read the topics' last ids, nothing verified: {e:#}"
                    ));
                    None
                }
            }
        } else {
            None
        };
        chat_last.push(ids);
    }

    // 4. Stop everything (bounded), then verify.
    progress.stopping();
    let outcome = fleet.stop(fleet::STOP_TIMEOUT).await;
    problems.extend(outcome.problems);
    let timeline = sampler.stop().await;
    let lag = lag_probe.stop().await;
    if let Some(server) = server {
        match server.stop().await {
            Ok(status) => tracing::debug!(%transport, %status, "push-server stopped"),
            Err(e) => tracing::warn!(%transport, "stopping push-server: {e:#}"),
        }
    }

    let window_end = window.end_us().max(window_start);
    let slack = OUTAGE_SLACK
        + if transport == TransportKind::ShortPoll {
            scenario.poll_interval
        } else {
            Duration::ZERO
        };
    let outage_times = outage_spans(&fault_log.outages, slack.as_micros() as u64);
    let mut outage_ids = Vec::new();
    let mut recorders = outcome.recorders.into_iter();
    let mut part_totals = Vec::with_capacity(parts.len());
    for (part, last_ids) in parts.iter().zip(&chat_last) {
        let schedule = &part.schedule;
        let mut totals = Totals::new();
        for (j, rec) in recorders.by_ref().take(part.scenario.clients).enumerate() {
            // The part's own topic index: its schedule counts from its first topic.
            let topic = fleet::topic_of(j, schedule.topics);
            let expected = match last_ids {
                Some(last) => last
                    .get(topic as usize)
                    .and_then(|&n| (n > 0).then_some((1, n))),
                None => schedule.ids_in_window(topic, window_start, window_end),
            };
            outage_ids.clear();
            outage_ids.extend(outage_times.iter().filter_map(|&(a, b, epoch)| {
                schedule
                    .ids_in_window(topic, a, b)
                    .map(|(first, last)| (first, last, epoch))
            }));
            match rec {
                Some(r) => totals.merge(&r.finish_with_outages(expected, &outage_ids)),
                None => totals.add_lost_clients(1, expected.map_or(0, |(a, b)| b - a + 1)),
            }
        }
        part_totals.push(totals);
    }
    // Everything the fleet saw: the entry's counts, latency and recovery.
    let mut totals = Totals::new();
    for t in &part_totals {
        totals.merge(t);
    }
    let window_span = (window_start, window_end);
    let mut result = if scenario.is_mixed() {
        mixed_result(
            scenario,
            &parts,
            &part_totals,
            &totals,
            window_span,
            problems,
        )
    } else {
        part_result(&parts[0], &totals, window_span, problems)
    };
    result.repetition = repetition;
    for g in &mut result.groups {
        g.result.repetition = repetition;
    }
    result.target = target_name.map(str::to_string);
    for (i, f) in fault_log.records.iter_mut().enumerate() {
        if let Some(&(n, max)) = totals.per_fault.get(i) {
            f.recovered = n;
            f.all_back_us = (n > 0).then_some(max);
        }
        if f.kind != "restart" {
            f.server_cpu_s = cpu_after(&timeline, f.at_us, results::FAULT_CPU_SPAN_S);
        }
    }
    result.recovery = results::Recovery {
        faults: fault_log.records,
        reconnect_attempts: totals.reconnect_attempts,
        reconnect: Summary::from_histogram(&totals.reconnect),
        reconnect_us: results::encode_histogram(&totals.reconnect),
        lost_outage: totals.lost_outage,
        delivered_per_s: totals.delivered_per_s.clone(),
    };
    let costs = Costs {
        window_start_us: window_start,
        window_end_us: window_end,
        local_server: server_pid.is_some(),
        restarted: fault_log.cpu_carry_s > 0.0,
        baseline,
        idle,
        idle_clients,
        at_start: at_start.unwrap_or_default(),
        at_end: at_end.unwrap_or_default(),
        drained_stats,
        hwm_bytes: hwm,
        timeline: &timeline,
        lag: Summary::from_histogram(&lag),
        fleet_cpus: &placement.fleet_cpus,
    };
    result.wire = costs.wire();
    result.ended_early = ended_early;
    result.kernel_tcp = match (&costs.at_start.tcp, &costs.at_end.tcp) {
        (Some(a), Some(b)) => Some(probe::tcp_events_between(a, b)),
        _ => None,
    };
    result.server = costs.server();
    result.fleet = costs.fleet();
    result.server_config = [
        costs.at_start.stats.as_ref(),
        baseline_stats.as_ref(),
        costs.drained_stats.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|s| s.config_raw.clone())
    .next()
    .unwrap_or_default();
    result.timeline = timeline;
    progress.finish(&result);
    (Some(result), interrupted)
}

/// Server CPU seconds from `at_us` to `span_s` later, from the timeline's
/// samples around those instants (`None` without a sample on each side).
fn cpu_after(timeline: &[Sample], at_us: u64, span_s: f64) -> Option<f64> {
    let end_us = at_us + (span_s * 1e6) as u64;
    let before = timeline
        .iter()
        .rev()
        .find(|s| s.t_us <= at_us)?
        .server_cpu_s?;
    let after = timeline.iter().find(|s| s.t_us >= end_us)?.server_cpu_s?;
    Some((after - before).max(0.0))
}

/// What injecting a transport's faults left behind.
#[derive(Debug, Default)]
struct FaultLog {
    /// One record per fault, in order.
    records: Vec<results::FaultRecord>,
    /// `[kill, ready)` of each restart, µs since the Unix epoch, and the
    /// restart's fault epoch (what the recorders saw it as).
    outages: Vec<(u64, u64, usize)>,
    /// CPU seconds of the servers killed (gone from `/proc` afterwards).
    cpu_carry_s: f64,
    /// The pid of the latest restarted server.
    new_pid: Option<u32>,
}

/// The spans of scheduled time whose losses are the restarts': each
/// `[kill − slack, ready)`, as the `[a, b)` bounds `ids_in_window` takes,
/// kept disjoint so no loss is counted twice.
fn outage_spans(outages: &[(u64, u64, usize)], slack_us: u64) -> Vec<(u64, u64, usize)> {
    let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(outages.len());
    for &(kill, ready, epoch) in outages {
        let mut a = kill.saturating_sub(slack_us);
        if let Some(&(_, prev_end, _)) = spans.last() {
            a = a.max(prev_end);
        }
        if ready > a {
            spans.push((a, ready, epoch));
        }
    }
    spans
}

/// Injects `faults` at their offsets from `window_start` (µs), each wait
/// watching the server, the fleet and Ctrl-C like any other. Each fault is
/// announced to the recorders through `window` just before it acts, and a
/// restarted server's pid is published in `server_pid` for the sampler.
///
/// A drop or storm that fails is recorded with its error and the run goes
/// on; a restarted server that does not come back within its pause plus
/// [`RESTART_BOUND`] ends the run ([`Waited::ServerLost`]).
async fn inject_faults(
    watch: &mut Watch<'_>,
    faults: &[crate::scenario::Fault],
    (window_start, phase_start): (u64, Instant),
    base_url: &str,
    restart: Option<&(ServerSpec, PathBuf, PathBuf)>,
    (window, server_pid): (&Window, &std::sync::atomic::AtomicU32),
    log: &mut FaultLog,
) -> Waited {
    use crate::scenario::FaultKind;
    for (n, fault) in faults.iter().enumerate() {
        let at = window_start + fault.at.as_micros() as u64;
        let ended = watch.sleep_until(instant_at(at), phase_start).await;
        if !matches!(ended, Waited::Done) {
            return ended;
        }
        let mut record = results::FaultRecord {
            kind: fault.kind.as_str().to_string(),
            at_us: protocol::now_us(),
            fraction: fault.drop_fraction(),
            dropped: None,
            outage_us: None,
            recovered: 0,
            all_back_us: None,
            server_cpu_s: None,
            error: None,
        };
        // Before the fault acts, so every recovery from it is attributed to it.
        window.begin_fault();
        let token = restart.and_then(|(spec, _, _)| spec.admin_token.as_deref());
        match (fault.kind, fault.drop_fraction(), token) {
            (FaultKind::Drop | FaultKind::Storm, Some(fraction), Some(token)) => {
                match server_process::admin_drop(base_url, token, fraction).await {
                    Ok(r) => record.dropped = Some(r.dropped),
                    Err(e) => record.error = Some(format!("{e:#}")),
                }
            }
            (FaultKind::Restart, _, _) => {
                let (Some((spec, bin, first_log)), Some(server)) =
                    (restart, watch.server.as_deref_mut())
                else {
                    record.error = Some("no server of ours to restart".into());
                    log.records.push(record);
                    continue;
                };
                let pause = fault.pause.unwrap_or_default();
                if let Some(u) = probe::read_process(Some(server.pid())) {
                    log.cpu_carry_s += u.cpu_s;
                }
                if let Err(e) = server.kill().await {
                    record.error = Some(format!("SIGKILL: {e:#}"));
                    log.records.push(record);
                    continue;
                }
                let kill_us = protocol::now_us();
                record.at_us = kill_us;
                // Each incarnation logs to its own file: the first one's last words stay.
                let log_path = first_log.with_extension(format!("restart{}.log", n + 1));
                let deadline = Instant::now() + pause + RESTART_BOUND;
                tokio::select! {
                    () = watch.interrupt.cancelled() => return Waited::Interrupted,
                    () = tokio::time::sleep(pause) => {}
                }
                let mut last_err = String::new();
                let started = loop {
                    match ServerProcess::start(bin, spec, &log_path).await {
                        Ok(s) => break Some(s),
                        // Most likely the port is not free again yet.
                        Err(e) => last_err = format!("{e:#}"),
                    }
                    if Instant::now() + RESTART_RETRY >= deadline {
                        break None;
                    }
                    tokio::select! {
                        () = watch.interrupt.cancelled() => return Waited::Interrupted,
                        () = tokio::time::sleep(RESTART_RETRY) => {}
                    }
                };
                let Some(new) = started else {
                    let msg = format!(
                        "the server killed at +{} (restart fault) did not come back within {}: {last_err}; \
                         the run ends here and is saved as incomplete",
                        fmt_duration(fault.at),
                        fmt_duration(pause + RESTART_BOUND)
                    );
                    record.error = Some(msg.clone());
                    log.records.push(record);
                    // The window ends at the kill: what was due afterwards was
                    // never served, by this transport or any other.
                    window.cut(kill_us);
                    return Waited::ServerLost(msg);
                };
                let ready_us = protocol::now_us();
                record.outage_us = Some(ready_us - kill_us);
                log.outages.push((kill_us, ready_us, window.fault_epoch()));
                log.new_pid = Some(new.pid());
                // The sampler follows the new process from its next tick on.
                server_pid.store(new.pid(), std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    pid = new.pid(),
                    outage_us = ready_us - kill_us,
                    "push-server restarted"
                );
                *server = new;
            }
            _ => {
                record.error = Some("no admin token: the server was not started for faults".into())
            }
        }
        if let Some(e) = &record.error {
            tracing::warn!("fault {}: {e}", record.kind);
        }
        log.records.push(record);
    }
    Waited::Done
}

/// Name of a mixed run's entry in progress lines and its server's log.
const MIXED: &str = "mixed";

/// Verifies and summarises one part's clients (the whole fleet outside a
/// mixed run), chat included; `problems` holds what already went wrong.
fn part_result(
    part: &Part,
    totals: &Totals,
    (window_start, window_end): (u64, u64),
    mut problems: Vec<String>,
) -> TransportResult {
    if let Some(chat) = &totals.chat {
        check_chat(chat, &mut problems);
    }
    let mut r = build_result(
        part.transport,
        &part.scenario,
        &part.schedule,
        window_start,
        window_end,
        totals,
        problems,
    );
    r.chat = totals
        .chat
        .as_ref()
        .map(|c| chat_result(part.transport, &part.scenario, c));
    r
}

/// The entry of a mixed run: each group verified and summarised on its
/// own (in `groups`), the entry's figures those of all clients together,
/// verified only when every group is; `all` is every group's totals
/// merged. `problems` (the run's own: the
/// connect wait, the fleet's stop, the server) are the entry's; a group's
/// are listed under its name.
fn mixed_result(
    scenario: &Scenario,
    parts: &[Part],
    part_totals: &[Totals],
    all: &Totals,
    window: (u64, u64),
    mut problems: Vec<String>,
) -> TransportResult {
    let groups: Vec<GroupResult> = parts
        .iter()
        .zip(part_totals)
        .map(|(part, t)| GroupResult {
            name: part.name.clone().unwrap_or_default(),
            first_topic: part.first_topic,
            topics: part.schedule.topics,
            rate: part.schedule.rate,
            result: part_result(part, t, window, Vec::new()),
        })
        .collect();
    for g in &groups {
        problems.extend(
            g.result
                .problems
                .iter()
                .map(|p| format!("group `{}`: {p}", g.name)),
        );
    }
    // The checks are the groups' (each against its own schedule): the
    // entry only sums them, so an inactive schedule skips the "nothing was
    // due" check that a rate-0 chat group would trip here.
    let idle = Schedule {
        rate: 0.0,
        ..parts[0].schedule
    };
    let transport = parts[0].transport;
    let mut r = build_result(
        transport,
        scenario,
        &idle,
        window.0,
        window.1,
        all,
        Vec::new(),
    );
    r.verified = problems.is_empty();
    r.problems = problems;
    r.groups = groups;
    r
}

/// Events one client should receive per second: the generator's rate on
/// its topic, or in a chat run the messages of its topic's senders.
fn expected_per_client(scenario: &Scenario, schedule: &Schedule) -> f64 {
    if scenario.is_chat() {
        let topics = (scenario.topics.max(1) as usize).min(scenario.clients.max(1));
        scenario.senders.div_ceil(topics) as f64 * scenario.send_rate
    } else {
        schedule.rate
    }
}

/// The last id of every topic a client of `scenario` is on (index = its
/// topic counted from `first_topic`, the server's index of its first).
async fn chat_last_ids(
    base_url: &str,
    scenario: &Scenario,
    first_topic: u32,
) -> anyhow::Result<Vec<u64>> {
    let topics = (scenario.topics.max(1) as usize).min(scenario.clients);
    let mut last = Vec::with_capacity(topics);
    for topic in 0..topics {
        let name = protocol::schedule::topic_name(first_topic + topic as u32);
        last.push(server_process::fetch_last_id(base_url, &name).await?);
    }
    Ok(last)
}

/// A chat run verifies only if every message sent came back to its sender
/// and every due message could be sent, and something was sent at all.
fn check_chat(chat: &crate::recorder::ChatTotals, problems: &mut Vec<String>) {
    if chat.senders > 0 && chat.sent == 0 && chat.send_errors == 0 {
        problems.push("chat: no message was sent: nothing was verified".to_string());
    }
    if chat.lost() > 0 {
        problems.push(format!(
            "chat: {} of {} messages sent never came back to their sender",
            chat.lost(),
            chat.sent
        ));
    }
    if chat.send_errors > 0 {
        problems.push(format!(
            "chat: {} messages could not be sent",
            chat.send_errors
        ));
    }
}

/// The chat block of a transport's result.
fn chat_result(
    transport: TransportKind,
    scenario: &Scenario,
    chat: &crate::recorder::ChatTotals,
) -> results::ChatResult {
    results::ChatResult {
        senders: chat.senders,
        send_rate: scenario.send_rate,
        upstream: if transport == TransportKind::Ws {
            "websocket"
        } else {
            "publish"
        }
        .to_string(),
        sent: chat.sent,
        echoed: chat.echoed,
        lost: chat.lost(),
        send_errors: chat.send_errors,
        round_trip: Summary::from_histogram(&chat.round_trip),
        round_trip_us: results::encode_histogram(&chat.round_trip),
    }
}

/// The planned phases of one run of `transport` (for the run's ETA; the
/// drain is the one the run really uses).
fn transport_plan(transport: TransportKind, scenario: &Scenario) -> TransportPlan {
    // Validation keeps `connect_rate` above 0; an estimate must not panic if it was skipped.
    let ramp = Duration::try_from_secs_f64(scenario.clients as f64 / scenario.connect_rate)
        .unwrap_or_default();
    // The connect wait notices the last client at its next tick; short
    // polling connects at the first answer, up to one interval in, and
    // drains beyond the interval so the last poll's answer still counts.
    let (connect, drain) = match transport {
        TransportKind::ShortPoll => (
            ramp + scenario.poll_interval,
            scenario.poll_interval + DRAIN,
        ),
        _ => (ramp + TICK, DRAIN),
    };
    // A client that pauses reading ([behaviour]) may be paused as the
    // window closes: the drain outlasts a pause, so the events it owes
    // still arrive and count (late) rather than as missing.
    let longest_pause = scenario
        .group
        .iter()
        .filter_map(|g| g.behaviour.as_ref()?.pause_for)
        .chain(scenario.behaviour.pause_for)
        .max()
        .unwrap_or_default();
    let drain = drain + longest_pause;
    TransportPlan::new(
        connect,
        scenario.warmup.max(WINDOW_LEAD),
        scenario.duration,
        drain,
    )
}

/// Gives an entry its repetition number.
fn with_repetition(mut r: TransportResult, repetition: u32) -> TransportResult {
    r.repetition = repetition;
    r
}

/// Everything read while a transport ran, from which its costs are derived.
#[derive(Debug, Clone)]
struct Costs<'a> {
    window_start_us: u64,
    window_end_us: u64,
    /// Whether the server is a local process of ours (its `/proc` is the server's).
    local_server: bool,
    /// Whether a fault restarted the server in the window (its own CPU
    /// clock restarted with it: `/proc`'s ticks plus the killed ones' are used).
    restarted: bool,
    baseline: Sample,
    idle: Sample,
    idle_clients: usize,
    at_start: Snapshot,
    at_end: Snapshot,
    drained_stats: Option<ServerStats>,
    hwm_bytes: Option<u64>,
    timeline: &'a [Sample],
    lag: Summary,
    fleet_cpus: &'a [usize],
}

impl Costs<'_> {
    /// Samples of the timeline inside the measured window.
    fn in_window(&self) -> impl Iterator<Item = &Sample> {
        let (a, b) = (self.window_start_us, self.window_end_us);
        self.timeline
            .iter()
            .filter(move |s| s.t_us >= a && s.t_us <= b)
    }

    /// Bytes and requests over the window and in total (`None` without `/stats` at both ends).
    fn wire(&self) -> Option<Wire> {
        let (start, end) = (self.at_start.stats.as_ref()?, self.at_end.stats.as_ref()?);
        let (a, b) = (start.wire(), end.wire());
        let total = self.drained_stats.as_ref().map_or(b, ServerStats::wire);
        Some(Wire {
            window: results::WireCounts {
                bytes_in: b.bytes_in.saturating_sub(a.bytes_in),
                bytes_out: b.bytes_out.saturating_sub(a.bytes_out),
                requests: b.requests.saturating_sub(a.requests),
                connections_accepted: b
                    .connections_accepted
                    .saturating_sub(a.connections_accepted),
            },
            total,
        })
    }

    /// The server's CPU and memory (`None` when it is not our local process
    /// or it could not be read at both ends of the window).
    fn server(&self) -> Option<ServerUsage> {
        if !self.local_server {
            return None;
        }
        let (start, end) = (self.at_start.server?, self.at_end.server?);
        let peak = self
            .in_window()
            .filter_map(|s| s.server_rss_bytes)
            .chain([start.rss_bytes, end.rss_bytes])
            .max()
            .unwrap_or(0);
        let tcp_peak = self.in_window().filter_map(|s| s.tcp_mem_bytes).max();
        // The server's own CPU clock when it reports one at both ends of
        // the window and did not restart in it; `/proc`'s ticks otherwise.
        let precise = match (&self.at_start.stats, &self.at_end.stats) {
            (Some(a), Some(b))
                if !self.restarted
                    && a.process_cpu_ns > 0
                    && b.process_cpu_ns >= a.process_cpu_ns =>
            {
                Some((b.process_cpu_ns - a.process_cpu_ns) as f64 / 1e9)
            }
            _ => None,
        };
        Some(ServerUsage {
            cpu_s: precise.unwrap_or((end.cpu_s - start.cpu_s).max(0.0)),
            cpu_resolution_s: if precise.is_some() {
                1e-9
            } else {
                1.0 / crate::sys::clock_ticks() as f64
            },
            rss_baseline_bytes: self.baseline.server_rss_bytes?,
            rss_idle_bytes: self.idle.server_rss_bytes?,
            idle_clients: self.idle_clients,
            rss_peak_bytes: peak,
            rss_hwm_bytes: self.hwm_bytes.unwrap_or(end.hwm_bytes),
            tcp_mem_baseline_bytes: self.baseline.tcp_mem_bytes,
            tcp_mem_idle_bytes: self.idle.tcp_mem_bytes,
            tcp_mem_peak_bytes: tcp_peak,
        })
    }

    /// The fleet's own cost and whether it limited the measurement.
    fn fleet(&self) -> FleetUsage {
        let cpu_s = match (self.at_start.fleet, self.at_end.fleet) {
            (Some(a), Some(b)) => (b.cpu_s - a.cpu_s).max(0.0),
            _ => 0.0,
        };
        let window_s = self.window_end_us.saturating_sub(self.window_start_us) as f64 / 1e6;
        let reasons = generator_bound_reasons(cpu_s, window_s, self.fleet_cpus.len(), &self.lag);
        FleetUsage {
            cpu_s,
            cpus: self.fleet_cpus.to_vec(),
            rss_idle_bytes: self.idle.fleet_rss_bytes.unwrap_or(0),
            rss_peak_bytes: self
                .in_window()
                .filter_map(|s| s.fleet_rss_bytes)
                .max()
                .unwrap_or(0),
            lag: self.lag,
            generator_bound: !reasons.is_empty(),
            generator_bound_reasons: reasons,
        }
    }
}

/// Why the fleet limited the measurement, if it did: it used at least
/// [`FLEET_CPU_BOUND`] of its `cores` over the window, or its lag probe's
/// p99 lateness exceeded [`FLEET_LAG_BOUND_US`].
pub fn generator_bound_reasons(
    cpu_s: f64,
    window_s: f64,
    cores: usize,
    lag: &Summary,
) -> Vec<String> {
    let mut why = Vec::new();
    if window_s > 0.0 && cores > 0 {
        let share = cpu_s / (window_s * cores as f64);
        if share >= FLEET_CPU_BOUND {
            why.push(format!(
                "the fleet used {:.0}% of its {cores} core{} over the window (≥ {:.0}%)",
                share * 100.0,
                if cores == 1 { "" } else { "s" },
                FLEET_CPU_BOUND * 100.0
            ));
        }
    }
    if lag.count > 0 && lag.p99 > FLEET_LAG_BOUND_US {
        why.push(format!(
            "the fleet's runtime woke a 10 ms timer {:.1} ms late at p99 (> {} ms): it fell behind its own schedule",
            lag.p99 as f64 / 1000.0,
            FLEET_LAG_BOUND_US / 1000
        ));
    }
    why
}

fn round_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().ceil() as u64)
}

/// The result of a transport whose server never started.
fn unstarted(
    (transport, target): (TransportKind, Option<&str>),
    scenario: &Scenario,
    problem: String,
) -> TransportResult {
    let empty = crate::recorder::total_histogram();
    TransportResult {
        target: target.map(str::to_string),
        problems: vec![problem],
        clients: scenario.clients,
        histograms: Histograms {
            latency_us: results::encode_histogram(&empty),
            connect_us: results::encode_histogram(&empty),
        },
        ..TransportResult::empty(transport)
    }
}

/// Verifies and summarises one transport. `problems` holds what already went
/// wrong; verification adds its own findings, and the transport is verified
/// only when there are none.
fn build_result(
    transport: TransportKind,
    scenario: &Scenario,
    schedule: &Schedule,
    window_start: u64,
    window_end: u64,
    t: &Totals,
    mut problems: Vec<String>,
) -> TransportResult {
    let c = t.counts;
    if t.clients_connected < t.clients {
        problems.push(format!(
            "{} of {} clients never connected",
            t.clients - t.clients_connected,
            t.clients
        ));
    }
    if schedule.is_active() && c.expected == 0 && problems.is_empty() {
        problems.push(format!(
            "no events were due in the {} window at {} events/s per topic: nothing was verified",
            fmt_duration(scenario.duration),
            schedule.rate
        ));
    }
    if c.missing > 0 {
        problems.push(format!(
            "{} of {} expected events missing",
            c.missing, c.expected
        ));
    }
    if c.duplicated > 0 {
        problems.push(format!("{} events delivered more than once", c.duplicated));
    }
    if c.out_of_order > 0 {
        problems.push(format!("{} events delivered out of order", c.out_of_order));
    }
    if t.unexpected > 0 {
        problems.push(format!(
            "{} events in the window had ids the schedule did not put there",
            t.unexpected
        ));
    }
    if !problems.is_empty() && c.errors > 0 {
        // Context for the failure, not a failure by itself (a retried connect loses nothing).
        problems.push(format!(
            "clients reported {} errors, e.g.: {}",
            c.errors,
            t.first_errors.join(" | ")
        ));
    }
    let window_s = window_end.saturating_sub(window_start) as f64 / 1e6;
    TransportResult {
        verified: problems.is_empty(),
        problems,
        clients: t.clients,
        clients_connected: t.clients_connected,
        window_s,
        window_start_us: window_start,
        counts: c,
        delivered_per_s: if window_s > 0.0 {
            c.delivered as f64 / window_s
        } else {
            0.0
        },
        latency: Summary::from_histogram(&t.latency),
        connect: Summary::from_histogram(&t.connect),
        histograms: Histograms {
            latency_us: results::encode_histogram(&t.latency),
            connect_us: results::encode_histogram(&t.connect),
        },
        habits: t.habits,
        ..TransportResult::empty(transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Recorder;
    use clients::Observer as _;

    fn totals(delivered_ids: &[u64], connected: bool) -> Totals {
        let w = Arc::new(Window::new());
        w.set(1_000_000, 2_000_000);
        let mut r = Recorder::new(w, Presence::new(), 10);
        if connected {
            r.connected(100);
        }
        for &id in delivered_ids {
            let at = 1_000_000 + (id - 1) * 100_000;
            r.event(
                &protocol::Event {
                    id,
                    topic: "t0".into(),
                    emitted_at_us: at,
                    data: String::new(),
                },
                at + 300,
            );
        }
        r.finish(Some((1, 10)))
    }

    fn schedule() -> Schedule {
        Schedule {
            start_epoch_us: 1_000_000,
            rate: 10.0,
            topics: 1,
        }
    }

    #[test]
    fn a_clean_transport_verifies() {
        let t = totals(&(1..=10).collect::<Vec<_>>(), true);
        let r = build_result(
            TransportKind::Ws,
            &Scenario::default(),
            &schedule(),
            1_000_000,
            2_000_000,
            &t,
            vec![],
        );
        assert!(r.verified, "{:?}", r.problems);
        assert_eq!(r.window_s, 1.0);
        assert_eq!(r.delivered_per_s, 10.0);
        assert_eq!(r.latency.p50, 300);
    }

    #[test]
    fn losses_and_absent_clients_fail_verification_with_reasons() {
        let t = totals(&[1, 2, 3], false);
        let r = build_result(
            TransportKind::Sse,
            &Scenario::default(),
            &schedule(),
            1_000_000,
            2_000_000,
            &t,
            vec![],
        );
        assert!(!r.verified);
        let all = r.problems.join("; ");
        assert!(all.contains("1 of 1 clients never connected"), "{all}");
        assert!(all.contains("7 of 10 expected events missing"), "{all}");
    }

    #[test]
    fn an_empty_window_at_a_positive_rate_is_not_verified() {
        let t = Totals::new();
        let r = build_result(
            TransportKind::Sse,
            &Scenario::default(),
            &schedule(),
            0,
            0,
            &t,
            vec![],
        );
        assert!(!r.verified);
        assert!(
            r.problems[0].contains("no events were due"),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn repetitions_alternate_the_order() {
        use TransportKind::*;
        let ts = [Sse, Ws, Tcp];
        assert_eq!(repetition_order(&ts, 1), vec![Sse, Ws, Tcp]);
        assert_eq!(repetition_order(&ts, 2), vec![Tcp, Ws, Sse]);
        assert_eq!(repetition_order(&ts, 3), vec![Sse, Ws, Tcp]);
    }

    #[test]
    fn a_saturated_or_lagging_fleet_is_generator_bound() {
        let calm = Summary {
            count: 1000,
            p99: 1_500,
            ..Summary::default()
        };
        assert!(generator_bound_reasons(2.0, 10.0, 1, &calm).is_empty());
        let busy = generator_bound_reasons(9.5, 10.0, 1, &calm);
        assert_eq!(busy.len(), 1);
        assert!(busy[0].contains("95% of its 1 core"), "{busy:?}");
        // The same CPU over two cores is under half their capacity.
        assert!(generator_bound_reasons(9.5, 10.0, 2, &calm).is_empty());
        let late = Summary {
            count: 1000,
            p99: 35_000,
            ..Summary::default()
        };
        let why = generator_bound_reasons(0.1, 10.0, 1, &late);
        assert!(why[0].contains("35.0 ms late at p99"), "{why:?}");
        // No window, no cores, no samples: nothing to judge, nothing claimed.
        assert!(generator_bound_reasons(5.0, 0.0, 0, &Summary::default()).is_empty());
    }

    fn sample(t_us: u64, server_rss: u64, tcp: u64, fleet_rss: u64) -> Sample {
        Sample {
            t_us,
            server_rss_bytes: Some(server_rss),
            server_cpu_s: None,
            fleet_rss_bytes: Some(fleet_rss),
            fleet_cpu_s: None,
            tcp_mem_bytes: Some(tcp),
            clients_connected: None,
        }
    }

    fn stats(bytes_in: u64, bytes_out: u64, polls: u64) -> ServerStats {
        let body = serde_json::json!({
            "bytes_in": bytes_in, "bytes_out": bytes_out, "connections_accepted": 10,
            "requests": {"poll": polls, "bad": 1},
            "config": {"rate": 1.0, "topics": 1, "payload_bytes": 8, "history": 4,
                       "start_epoch_us": 1, "buffers": {"ws_read": 4096}},
        });
        server_process::parse_stats(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn costs_are_differences_over_the_window() {
        let proc_at = |cpu_s: f64, rss: u64| {
            Some(ProcUsage {
                cpu_s,
                rss_bytes: rss,
                hwm_bytes: rss,
            })
        };
        let timeline = [
            sample(500_000, 9_000_000, 1, 1),
            sample(1_500_000, 7_000_000, 40_000, 3_000),
            sample(2_500_000, 6_000_000, 50_000, 2_000),
            sample(9_500_000, 99_000_000, 99, 99),
        ];
        let costs = Costs {
            window_start_us: 1_000_000,
            window_end_us: 3_000_000,
            local_server: true,
            restarted: false,
            baseline: sample(0, 1_000_000, 4096, 100),
            idle: sample(900_000, 5_096_000, 12_288, 200),
            idle_clients: 1000,
            at_start: Snapshot {
                stats: Some(stats(100, 1_000, 5)),
                server: proc_at(1.0, 5_500_000),
                fleet: proc_at(3.0, 0),
                tcp: None,
            },
            at_end: Snapshot {
                stats: Some(stats(300, 51_000, 25)),
                server: proc_at(1.25, 5_600_000),
                fleet: proc_at(3.5, 0),
                tcp: None,
            },
            drained_stats: Some(stats(400, 60_000, 30)),
            hwm_bytes: Some(12_000_000),
            timeline: &timeline,
            lag: Summary::default(),
            fleet_cpus: &[1],
        };
        let wire = costs.wire().unwrap();
        assert_eq!(
            (
                wire.window.bytes_in,
                wire.window.bytes_out,
                wire.window.requests
            ),
            (200, 50_000, 20)
        );
        assert_eq!(wire.total.bytes_out, 60_000, "handshakes included");
        let server = costs.server().unwrap();
        assert!((server.cpu_s - 0.25).abs() < 1e-9);
        assert_eq!(server.rss_baseline_bytes, 1_000_000);
        assert_eq!(server.rss_idle_bytes, 5_096_000);
        // Peak only inside the window: not the 9 MB before it nor the 99 MB after.
        assert_eq!(server.rss_peak_bytes, 7_000_000);
        assert_eq!(server.rss_hwm_bytes, 12_000_000);
        assert_eq!(server.tcp_mem_peak_bytes, Some(50_000));
        let fleet = costs.fleet();
        assert!((fleet.cpu_s - 0.5).abs() < 1e-9);
        assert_eq!(fleet.cpus, vec![1]);
        assert_eq!(fleet.rss_peak_bytes, 3_000);
        // 0.5 s of 2 s on one core: 25 %, not generator-bound.
        assert!(
            !fleet.generator_bound,
            "{:?}",
            fleet.generator_bound_reasons
        );

        // A remote target has no /proc of ours; without /stats at both ends there is no wire.
        let mut remote = costs.clone();
        remote.local_server = false;
        remote.at_end.stats = None;
        assert!(remote.server().is_none() && remote.wire().is_none());
    }

    #[test]
    fn outcome_explains_failure_in_one_line() {
        let mut t = totals(&[1], true);
        t.clients = 1;
        let bad = build_result(
            TransportKind::Sse,
            &Scenario::default(),
            &schedule(),
            1_000_000,
            2_000_000,
            &t,
            vec![],
        );
        let out = RunOutcome {
            out_dir: PathBuf::from("x"),
            run: RunFile {
                schema_version: SCHEMA_VERSION,
                provenance: Default::default(),
                scenario: serde_json::Value::Null,
                complete: false,
                generator_bound: false,
                transports: vec![bad],
            },
            problems: vec![],
        };
        assert!(!out.passed());
        let why = out.failure().unwrap();
        assert!(
            why.contains("interrupted") && why.contains("sse not verified"),
            "{why}"
        );
        assert!(!why.contains('\n'));
    }

    #[test]
    fn outage_spans_start_a_slack_before_each_kill_and_never_overlap() {
        assert_eq!(outage_spans(&[], 200), vec![]);
        assert_eq!(
            outage_spans(&[(1_000, 2_000, 2)], 200),
            vec![(800, 2_000, 2)]
        );
        // A second restart whose slack reaches back into the first outage starts where it ended.
        assert_eq!(
            outage_spans(&[(1_000, 2_000, 1), (2_100, 3_000, 3)], 200),
            vec![(800, 2_000, 1), (2_000, 3_000, 3)]
        );
        assert_eq!(outage_spans(&[(100, 500, 1)], 200), vec![(0, 500, 1)]);
    }
}
