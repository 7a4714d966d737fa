//! The runner: one transport after another, each on a fresh server.
//!
//! For each transport of the scenario:
//!
//! 1. start a fresh `push-server` (its schedule starting now), or, with a
//!    target URL, use the running server and its schedule from `/stats`;
//! 2. start the fleet and wait (bounded) until every client has connected;
//! 3. fix the measured window `[start, end)` in advance — `start` is the end
//!    of the warm-up — and publish it to every recorder before it opens;
//! 4. warm up, measure, then drain (clients keep running a little, so events
//!    due just before the end can still arrive);
//! 5. stop the fleet and the server, and verify: every client connected, and
//!    every client received exactly the ids the schedule put in the window on
//!    its topic, once each and in order.
//!
//! Latency and counts come from the recorders; the expected ids come from
//! [`protocol::Schedule`] alone, so a server that silently drops events cannot
//! hide it. A server that dies, or a Ctrl-C, ends the transport early: what
//! was measured is kept, marked unverified, and `run.json` is written after
//! every transport so nothing measured is lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use protocol::{Schedule, TransportKind};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fleet::{self, Fleet};
use crate::progress::{Progress, TransportProgress};
use crate::recorder::{Totals, Window};
use crate::results::{self, Histograms, RunFile, SCHEMA_VERSION, Summary, TransportResult};
use crate::scenario::{Scenario, fmt_duration};
use crate::server_process::{self, ServerProcess, ServerSpec};
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
                "{} not verified ({})",
                t.transport,
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
    let provenance = tokio::task::spawn_blocking(move || provenance::collect(command_line))
        .await
        .context("collecting provenance")?;

    let mut scenario = scenario.clone();
    let mut scenario_json = scenario.to_json();
    if let Some(url) = &opts.target {
        // The running server decides what is generated: adopt its settings so
        // clients pick existing topics and the recorded scenario is the truth.
        let stats = server_process::fetch_stats(url)
            .await
            .with_context(|| format!("cannot read the schedule of target {url}"))?;
        let c = &stats.config;
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

    let mut run = RunFile {
        schema_version: SCHEMA_VERSION,
        provenance,
        scenario: scenario_json,
        complete: false,
        transports: Vec::new(),
    };
    let mut interrupted = false;
    for &transport in &scenario.transports {
        if opts.interrupt.is_cancelled() {
            interrupted = true;
            break;
        }
        let (result, cut_short) = run_transport(transport, &scenario, opts).await;
        run.transports.extend(result);
        // Saved after every transport: a crash later loses nothing measured.
        write_run_blocking(&opts.out_dir, &run).await?;
        if cut_short {
            interrupted = true;
            break;
        }
    }
    run.complete = !interrupted;
    write_run_blocking(&opts.out_dir, &run).await?;

    let mut problems = Vec::new();
    let dir = opts.out_dir.clone();
    match tokio::task::spawn_blocking(move || report::render_dir(&dir)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("the report could not be rendered: {e:#}")),
        Err(e) => problems.push(format!("the report could not be rendered: {e}")),
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
                        "push-server exited unexpectedly ({status}){}",
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

/// Runs one transport. Returns its result (none if it never got to start a
/// fleet because of Ctrl-C) and whether the run must stop (Ctrl-C).
async fn run_transport(
    transport: TransportKind,
    scenario: &Scenario,
    opts: &RunOptions,
) -> (Option<TransportResult>, bool) {
    let progress = opts.progress.transport(transport, scenario.clients);
    let mut problems: Vec<String> = Vec::new();

    // 1. The server and its schedule.
    let (mut server, base_url, tcp_addr, schedule) = match &opts.target {
        Some(url) => {
            progress.starting(&format!("using the server at {url}"));
            match server_process::fetch_stats(url).await {
                // A target's raw-TCP port is not known here: a tcp fleet
                // against a target reports the missing address as errors.
                Ok(stats) => (
                    None,
                    url.trim_end_matches('/').to_string(),
                    None,
                    stats.config.schedule(),
                ),
                Err(e) => {
                    let r = unstarted(transport, scenario, format!("target unreachable: {e:#}"));
                    progress.finish(&r);
                    return (Some(r), false);
                }
            }
        }
        None => {
            progress.starting("starting push-server");
            // A whole millisecond, in the future: ids and times read cleanly in logs.
            let start_epoch_us = protocol::now_us().div_ceil(1000) * 1000;
            let mut spec = ServerSpec::from_scenario(scenario, start_epoch_us);
            // The floor's port is opened only for its own run: the others' servers stay identical.
            spec.tcp = transport == TransportKind::Tcp;
            let log = opts.out_dir.join(format!("server-{transport}.log"));
            let Some(bin) = opts.server_bin.as_deref() else {
                let r = unstarted(transport, scenario, "no push-server binary given".into());
                progress.finish(&r);
                return (Some(r), false);
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
                    (Some(s), url, tcp, spec.schedule)
                }
                Err(e) => {
                    let r = unstarted(transport, scenario, format!("{e:#}"));
                    progress.finish(&r);
                    return (Some(r), false);
                }
            }
        }
    };

    // 2. The fleet.
    let window = Arc::new(Window::new());
    let hint = (schedule.rate * scenario.duration.as_secs_f64()).ceil() as u64 + 2;
    let configs = fleet::client_configs(transport, &base_url, tcp_addr, scenario);
    let fleet = Fleet::start(configs, scenario.connect_rate, window.clone(), hint);
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

    // 3. Fix the window before it opens, then warm up, measure and drain.
    let mut window_start = 0;
    if matches!(ended, Waited::Done) {
        let lead = scenario.warmup.max(WINDOW_LEAD);
        window_start = (protocol::now_us() + lead.as_micros() as u64).div_ceil(1000) * 1000;
        let window_end = window_start + scenario.duration.as_micros() as u64;
        window.set(window_start, window_end);
        let drain = match transport {
            TransportKind::ShortPoll => scenario.poll_interval + DRAIN,
            _ => DRAIN,
        };
        let phases = [
            ("warming up", instant_at(window_start)),
            ("measuring", instant_at(window_end)),
            ("draining", instant_at(window_end) + drain),
        ];
        let mut phase_start = Instant::now();
        for (name, until) in phases {
            progress.timed_phase(
                name,
                until.saturating_duration_since(phase_start),
                fleet.connected(),
            );
            ended = watch.sleep_until(until, phase_start).await;
            if !matches!(ended, Waited::Done) {
                break;
            }
            if name == "measuring" {
                log_server_stats(transport, &base_url).await;
            }
            phase_start = until;
        }
    }
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
    };

    // 4. Stop everything (bounded), then verify.
    progress.starting("stopping");
    let outcome = fleet.stop(fleet::STOP_TIMEOUT).await;
    problems.extend(outcome.problems);
    if let Some(server) = server {
        match server.stop().await {
            Ok(status) => tracing::debug!(%transport, %status, "push-server stopped"),
            Err(e) => tracing::warn!(%transport, "stopping push-server: {e:#}"),
        }
    }

    let window_end = window.end_us().max(window_start);
    let mut totals = Totals::new();
    for (i, rec) in outcome.recorders.into_iter().enumerate() {
        let topic = fleet::topic_of(i, schedule.topics);
        let expected = schedule.ids_in_window(topic, window_start, window_end);
        match rec {
            Some(r) => totals.merge(&r.finish(expected)),
            None => totals.add_lost_clients(1, expected.map_or(0, |(a, b)| b - a + 1)),
        }
    }
    let result = build_result(
        transport,
        scenario,
        &schedule,
        window_start,
        window_end,
        &totals,
        problems,
    );
    progress.finish(&result);
    (Some(result), interrupted)
}

/// Fetches `/stats` at the end of the window and logs the server's byte counts.
async fn log_server_stats(transport: TransportKind, base_url: &str) {
    match server_process::fetch_stats(base_url).await {
        Ok(s) => tracing::info!(
            %transport,
            bytes_in = s.bytes_in,
            bytes_out = s.bytes_out,
            events_generated = s.events_generated,
            "server counters at the end of the window"
        ),
        Err(e) => tracing::warn!(%transport, "GET /stats: {e:#}"),
    }
}

fn round_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().ceil() as u64)
}

/// The result of a transport whose server never started.
fn unstarted(transport: TransportKind, scenario: &Scenario, problem: String) -> TransportResult {
    let empty = crate::recorder::total_histogram();
    TransportResult {
        transport,
        verified: false,
        problems: vec![problem],
        clients: scenario.clients,
        clients_connected: 0,
        window_s: 0.0,
        window_start_us: 0,
        counts: results::Counts::default(),
        delivered_per_s: 0.0,
        latency: Summary::default(),
        connect: Summary::default(),
        histograms: Histograms {
            latency_us: results::encode_histogram(&empty),
            connect_us: results::encode_histogram(&empty),
        },
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
        transport,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Recorder;
    use clients::Observer as _;
    use std::sync::atomic::AtomicUsize;

    fn totals(delivered_ids: &[u64], connected: bool) -> Totals {
        let w = Arc::new(Window::new());
        w.set(1_000_000, 2_000_000);
        let mut r = Recorder::new(w, Arc::new(AtomicUsize::new(0)), 10);
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
}
