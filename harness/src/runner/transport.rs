//! One transport's run, step by step: start its server, connect the fleet,
//! fix the window, warm up, measure, drain, stop, verify.

use crate::fleet::{self, Fleet};
use crate::link::Link;
use crate::placement::Placement;
use crate::probe::{self, LagProbe, Sampler};
use crate::progress::Timed;
use crate::recorder::{Presence, Recorder, Totals, Window};
use crate::results::{self, Histograms, Summary, TransportResult};
use crate::runner::bounds::CONNECT_SLACK;
use crate::runner::bounds::OUTAGE_SLACK;
use crate::runner::bounds::SETTLE;
use crate::runner::bounds::WINDOW_LEAD;
use crate::runner::browser::{finish_browsers, start_browsers};
use crate::runner::costs::{Costs, round_s};
use crate::runner::faults::recovery;
use crate::runner::faults::{FaultLog, inject_faults, outage_spans};
use crate::runner::plan::RunId;
use crate::runner::plan::RunOptions;
use crate::runner::plan::plan_transport;
use crate::runner::plan::protocol_of;
use crate::runner::plan::transport_plan;
use crate::runner::plan::with_repetition;
use crate::runner::start::{Emulation, link_emulation, start_relays};
use crate::runner::start::{Entry, NotStarted, Started, start_server};
use crate::runner::verify::Part;
use crate::runner::verify::tally;
use crate::runner::verify::{
    MIXED, chat_last_ids, expected_per_client, fleet_parts, mixed_result, part_result,
};
use crate::runner::watch::{Snapshot, Waited, Watch, instant_at};
use crate::scenario::Scenario;
use crate::scenario::check::fmt_duration;
use crate::scenario::contender::Contender;
use crate::scenario::contender::TargetSpec;
use crate::scenario::fault::Fault;
use crate::server_process::ServerSpec;
use crate::server_process::{self, ServerProcess};
use protocol::TransportKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;
use tokio::time::Instant;

/// Where fleet clients connect: a base URL and the raw-TCP port, if any.
type FleetTarget = (String, Option<SocketAddr>);

/// Runs one transport. Returns its result (none if it never got to start a
/// fleet because of Ctrl-C) and whether the run must stop (Ctrl-C).
pub(crate) async fn run_transport(
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

    let faults = faults_for(scenario, opts, foreign, &mut problems);
    // 1. The link's emulation (validation has parsed `link` already), then
    // the server and its schedule.
    let link = scenario.link_spec().unwrap_or_else(|_| Link::default());
    let mut entry = Entry {
        id,
        scenario,
        opts,
        placement,
        transport,
        foreign,
        name,
        netns: None,
    };
    let emulation = match link_emulation(&entry, &link) {
        Ok(em) => em,
        Err(problem) => {
            let r = unstarted((transport, target_name), scenario, problem);
            progress.finish(&r);
            return (Some(with_repetition(r, repetition)), false);
        }
    };
    if let Emulation::Kernel(ns) = &emulation {
        entry.netns = Some(ns);
    }
    let Started {
        mut server,
        base_url,
        tcp_addr,
        schedule,
        restart: restart_ctx,
    } = match start_server(&entry, !faults.is_empty(), &progress).await {
        Ok(started) => started,
        Err(NotStarted::Interrupted) => return (None, true),
        Err(NotStarted::Failed(problem)) => {
            let r = unstarted((transport, target_name), scenario, problem);
            progress.finish(&r);
            return (Some(with_repetition(r, repetition)), false);
        }
    };
    // With the relay: every client through a relay process that emulates
    // the link. Where the fleet connects: the server (loopback, or the
    // kernel's link), or the relays (client `i` through relay `i % relays`).
    let mut relays = Vec::new();
    let targets: Vec<FleetTarget> = if !matches!(emulation, Emulation::Relay) {
        vec![(base_url.clone(), tcp_addr)]
    } else {
        match start_relays(&entry, &link, &base_url, tcp_addr).await {
            Ok(rs) => {
                relays = rs;
                relays
                    .iter()
                    .map(|r| (r.base_url().to_string(), r.tcp_addr()))
                    .collect()
            }
            Err(err) => {
                if let Some(s) = server {
                    let _ = s.stop().await;
                }
                let r = unstarted((transport, target_name), scenario, format!("{err:#}"));
                progress.finish(&r);
                return (Some(with_repetition(r, repetition)), false);
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

    // 2. The browser clients (if asked for; their pages connected first),
    // then the fleet: every part's clients, in order, each with its recorder.
    let browsers = start_browsers(
        scenario,
        transport,
        &targets[0].0,
        &placement.fleet_cpus,
        (&opts.out_dir, id, name),
    )
    .await;
    let parts = fleet_parts(transport, scenario, &schedule);
    // Chat senders wait for the window: it is sent to them once fixed.
    let (send_window, send_window_rx) = tokio::sync::watch::channel(None);
    let clients = fleet_clients(
        &parts,
        (&targets, foreign),
        (&window, &presence),
        &send_window_rx,
    );
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
        let measured = timed_phases(
            &mut watch,
            Phases {
                scenario,
                drain: plan.drain,
                window: &window,
                send_window: &send_window,
                faults,
                base_url: &base_url,
                restart: restart_ctx.as_ref(),
                shared_pid: &shared_pid,
                stats_url,
            },
            &mut server_pid,
            &mut fault_log,
        )
        .await;
        (ended, window_start, at_start, at_end) = measured;
    }
    // The window was cut: by Ctrl-C, or because the server died or was lost.
    let ended_early = !matches!(ended, Waited::Done | Waited::Deadline);
    let interrupted = note_cut(ended, &window, &mut problems);
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
    let chat_last = if at_start.is_some() {
        chat_last_of(&parts, &base_url, &mut problems).await
    } else {
        vec![None; parts.len()]
    };

    // 4. Stop everything (bounded), then verify.
    progress.stopping();
    let outcome = fleet.stop(fleet::STOP_TIMEOUT).await;
    problems.extend(outcome.problems);
    // The browsers hand over their records while the server still runs.
    let browsers_stopped = match browsers {
        Ok(Some(b)) => Ok(Some(b.stop().await)),
        other => other.map(|_| None),
    };
    let timeline = sampler.stop().await;
    let lag = lag_probe.stop().await;
    // Every relay's CPU, summed (`None` without a link).
    let mut relay_cpu_s: Option<f64> = None;
    for r in relays {
        if let Some(u) = probe::read_process(Some(r.pid())) {
            *relay_cpu_s.get_or_insert(0.0) += u.cpu_s;
        }
        if let Err(e) = r.stop().await {
            tracing::warn!("stopping the link relay: {e:#}");
        }
    }
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
    let part_totals = tally(
        &parts,
        outcome.recorders,
        &chat_last,
        (window_start, window_end),
        &outage_times,
    );
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
    let restarted = fault_log.cpu_carry_s > 0.0;
    result.recovery = recovery(fault_log.records, &totals, &timeline);
    let costs = Costs {
        window_start_us: window_start,
        window_end_us: window_end,
        local_server: server_pid.is_some(),
        restarted,
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
    costs.fill(&mut result, baseline_stats.as_ref());
    result.ended_early = ended_early;
    result.fleet.relay_cpu_s = relay_cpu_s;
    result.fleet.link_emulator = emulation.name().map(str::to_string);
    // The kernel's namespace goes only now, its server stopped.
    drop(emulation);
    finish_browsers(
        browsers_stopped,
        &schedule,
        (window_start, window_end),
        scenario,
        &mut result,
    );
    result.timeline = timeline;
    progress.finish(&result);
    (Some(result), interrupted)
}

/// The result of a transport whose server never started.
pub(crate) fn unstarted(
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

/// The faults to inject into this entry: the scenario's, unless the server
/// is not a push-server of ours (then none, and a problem says so).
fn faults_for<'a>(
    scenario: &'a Scenario,
    opts: &RunOptions,
    foreign: Option<(&str, &TargetSpec)>,
    problems: &mut Vec<String>,
) -> &'a [Fault] {
    // Faults need the admin routes (or the restart) of a push-server of ours.
    if scenario.faults.is_empty() {
        &[]
    } else if opts.target.is_some() {
        problems.push(
            "faults are injected only into a server pushbench starts, not a --target: none were"
                .to_string(),
        );
        &[]
    } else if let Some((name, _)) = foreign {
        problems.push(format!(
            "faults are injected only into push-server (its admin routes and restart), \
             not into target `{name}`: none were"
        ));
        &[]
    } else {
        &scenario.faults[..]
    }
}

/// Every part's clients, in order, each with its recorder, client `i`
/// connecting to `targets[i % targets.len()]` (the server, or the relays).
fn fleet_clients(
    parts: &[Part],
    (targets, foreign): (&[FleetTarget], Option<(&str, &TargetSpec)>),
    (window, presence): (&Arc<Window>, &Arc<Presence>),
    send_window_rx: &tokio::sync::watch::Receiver<Option<(u64, u64)>>,
) -> Vec<(clients::ClientConfig, Recorder)> {
    let mut clients = Vec::with_capacity(parts.iter().map(|p| p.scenario.clients).sum());
    for part in parts {
        let sc = &part.scenario;
        let hint =
            (expected_per_client(sc, &part.schedule) * sc.duration.as_secs_f64()).ceil() as u64 + 2;
        let (base_url, tcp_addr) = &targets[0];
        let mut configs =
            fleet::client_configs(part.transport, base_url, *tcp_addr, sc, send_window_rx);
        fleet::place_group(&mut configs, part.first_topic, clients.len());
        for mut c in configs {
            // Several relays: client `i` of the whole fleet through relay `i % relays`.
            let (url, tcp) = &targets[clients.len() % targets.len()];
            c.base_url.clone_from(url);
            c.tcp_addr = *tcp;
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
    clients
}

/// What the timed phases need besides the watch.
struct Phases<'a> {
    scenario: &'a Scenario,
    drain: Duration,
    window: &'a Arc<Window>,
    send_window: &'a tokio::sync::watch::Sender<Option<(u64, u64)>>,
    faults: &'a [Fault],
    base_url: &'a str,
    restart: Option<&'a (ServerSpec, PathBuf, PathBuf)>,
    shared_pid: &'a Arc<AtomicU32>,
    stats_url: Option<&'a str>,
}

/// Step 3: fixes the window before it opens, then warms up, measures
/// (injecting the faults) and drains. Returns how the phases ended, the
/// window's start and the server's figures at both ends of the window;
/// `server_pid` follows a restarted server.
async fn timed_phases(
    watch: &mut Watch<'_>,
    p: Phases<'_>,
    server_pid: &mut Option<u32>,
    fault_log: &mut FaultLog,
) -> (Waited, u64, Option<Snapshot>, Option<Snapshot>) {
    let (mut at_start, mut at_end) = (None, None);
    let lead = p.scenario.warmup.max(WINDOW_LEAD);
    let window_start = (protocol::now_us() + lead.as_micros() as u64).div_ceil(1000) * 1000;
    let window_end = window_start + p.scenario.duration.as_micros() as u64;
    p.window.set(window_start, window_end);
    p.send_window.send_replace(Some((window_start, window_end)));
    let phases = [
        (Timed::WarmingUp, instant_at(window_start)),
        (Timed::Measuring, instant_at(window_end)),
        (Timed::Draining, instant_at(window_end) + p.drain),
    ];
    let mut ended = Waited::Done;
    let mut phase_start = Instant::now();
    for (phase, until) in phases {
        watch.progress.timed_phase(
            phase,
            until.saturating_duration_since(phase_start),
            watch.fleet.connected(),
        );
        if matches!(phase, Timed::Measuring) {
            ended = inject_faults(
                watch,
                p.faults,
                (window_start, phase_start),
                p.base_url,
                p.restart,
                (p.window, p.shared_pid),
                fault_log,
            )
            .await;
            if let Some(pid) = fault_log.new_pid {
                *server_pid = Some(pid);
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
            Timed::WarmingUp => at_start = Some(Snapshot::take(*server_pid, p.stats_url).await),
            Timed::Measuring => at_end = Some(Snapshot::take(*server_pid, p.stats_url).await),
            Timed::Draining => {}
        }
        phase_start = until;
    }
    (ended, window_start, at_start, at_end)
}

/// The window was cut (by Ctrl-C, or because the server died or was lost)
/// unless the phases ended `Done` or at a deadline: says why in `problems`
/// and cuts the recorders' window now. Returns whether the run must stop.
fn note_cut(ended: Waited, window: &Window, problems: &mut Vec<String>) -> bool {
    match ended {
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
    }
}

/// Chat: each chat part's topics' last ids, read while the server is still
/// there (`None` for a part without chat, or when they cannot be read: then
/// a problem says nothing was verified).
async fn chat_last_of(
    parts: &[Part],
    base_url: &str,
    problems: &mut Vec<String>,
) -> Vec<Option<Vec<u64>>> {
    let mut chat_last = Vec::with_capacity(parts.len());
    for part in parts {
        let ids = if part.scenario.is_chat() {
            match chat_last_ids(base_url, &part.scenario, part.first_topic).await {
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
    chat_last
}
