//! One transport's run, step by step: start its server, connect the fleet,
//! fix the window, warm up, measure, drain, stop, verify.

use crate::agent::remote::AgentFleet;
use crate::agent::wire::SliceSpec;
use crate::fleet::Fleet;
use crate::fleet::parts::{FleetTarget, Part, Slice, fleet_clients, fleet_parts};
use crate::link::Link;
use crate::placement::Placement;
use crate::probe::Procs;
use crate::probe::{self, LagProbe, Sampler};
use crate::progress::Timed;
use crate::recorder::{Presence, Totals, Window};
use crate::results::{self, Histograms, Summary, TransportResult};
use crate::runner::bounds::CONNECT_SLACK;
use crate::runner::bounds::OUTAGE_SLACK;
use crate::runner::bounds::SETTLE;
use crate::runner::bounds::WINDOW_LEAD;
use crate::runner::browser::{finish_browsers, start_browsers};
use crate::runner::cluster::{start_agents, start_cluster, stop_all, targets_of_servers};
use crate::runner::costs::{Costs, round_s};
use crate::runner::faults::recovery;
use crate::runner::faults::{FaultLog, inject_faults, outage_spans};
use crate::runner::fleets::AnyFleet;
use crate::runner::plan::RunId;
use crate::runner::plan::RunOptions;
use crate::runner::plan::plan_transport;
use crate::runner::plan::protocol_of;
use crate::runner::plan::transport_plan;
use crate::runner::plan::with_repetition;
use crate::runner::start::{Emulation, link_emulation, start_relays};
use crate::runner::start::{Entry, NotStarted, Started, start_server};
use crate::runner::verify::{MIXED, chat_last_ids, mixed_result, part_result};
use crate::runner::watch;
use crate::runner::watch::{Snapshot, Waited, Watch, instant_at};
use crate::scenario::Scenario;
use crate::scenario::check::fmt_duration;
use crate::scenario::contender::Contender;
use crate::scenario::contender::TargetSpec;
use crate::scenario::fault::Fault;
use crate::server_process::ServerProcess;
use crate::server_process::ServerSpec;
use protocol::TransportKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;
use tokio::time::Instant;

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
    let begun = if scenario.brokered() && foreign.is_none() && opts.target.is_none() {
        start_cluster(&entry, !faults.is_empty(), &progress)
            .await
            .map(|(started, broker, others)| (started, Some(broker), others))
    } else {
        start_server(&entry, !faults.is_empty(), &progress)
            .await
            .map(|started| (started, None, Vec::new()))
    };
    let (
        Started {
            mut server,
            base_url,
            tcp_addr,
            schedule,
            restart: restart_ctx,
        },
        mut broker,
        mut others,
    ) = match begun {
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
        // Servers behind a broker: client `i` to server `i % servers`.
        std::iter::once((base_url.clone(), tcp_addr))
            .chain(
                others
                    .iter()
                    .map(|s| (s.base_url().to_string(), s.tcp_addr())),
            )
            .collect()
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
    // Every server summed; the sampler follows a restarted server to its new process.
    let mut procs = Procs::one(server_pid);
    procs.more_servers = others.iter().map(ServerProcess::pid).collect();
    procs.broker = broker.as_ref().map_or(0, ServerProcess::pid);
    let shared_pid = procs.server.clone();
    let presence = Presence::new();
    // The agents, started before the baseline (their clients come later).
    let agents = match start_agents(&entry, &presence).await {
        Ok(a) => a,
        Err(problem) => {
            stop_all(server, others, broker, Vec::new()).await;
            let r = unstarted((transport, target_name), scenario, problem);
            progress.finish(&r);
            return (Some(with_repetition(r, repetition)), false);
        }
    };
    if let Some(a) = &agents {
        procs.agents = a.pids();
    }
    let agent_clocks = agents.as_ref().map(AgentFleet::clocks).unwrap_or_default();
    // Before any client: the baseline of memory (once the previous run's
    // sockets have closed), and the settings the server states.
    probe::settle_sockets(SETTLE).await;
    let baseline = probe::sample(&procs);
    // A target has no `/stats`: its bytes on the wire are not counted.
    let stats_urls: Vec<String> = if foreign.is_none() {
        targets_of_servers(&base_url, &others)
    } else {
        Vec::new()
    };
    let baseline_stats = watch::fetch_summed_stats(&stats_urls).await;
    let sampler = Sampler::following(procs.clone(), Some(presence.clone()), probe::SAMPLE_EVERY);
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
    let path = foreign.map(|(_, t)| t.path.as_str());
    let mut fleet = match agents {
        None => {
            let clients = fleet_clients(
                &parts,
                Slice::ALL,
                (&targets, path),
                (&window, &presence),
                &send_window_rx,
            );
            AnyFleet::Local(Fleet::start(clients, scenario.connect_rate, presence))
        }
        Some(mut a) => {
            let spec = SliceSpec {
                scenario: scenario.clone(),
                transport,
                schedule,
                targets: targets.clone(),
                path: path.map(str::to_string),
                slice: Slice::ALL,
            };
            if let Err(err) = a.start(&spec).await {
                problems.push(format!(
                    "the fleet agents could not start their clients: {err:#}"
                ));
            }
            AnyFleet::Agents(a)
        }
    };
    progress.connecting();
    let ramp = Duration::from_secs_f64(scenario.clients as f64 / scenario.connect_rate);
    // Short-polling clients "connect" at their first answer, up to one interval in.
    let connect_bound = ramp + scenario.poll_interval + CONNECT_SLACK;
    let mut watch = Watch {
        fleet: &mut fleet,
        server: server.as_mut(),
        others: &mut others,
        broker: broker.as_mut(),
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
            watch.fleet.connected(),
            fmt_duration(round_s(connect_bound))
        ));
        ended = Waited::Done;
    }
    // Connected and (with rare events) idle: memory per connection is this minus the baseline.
    let idle = probe::sample(&procs);
    let idle_clients = watch.fleet.connected();

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
                procs: &procs,
                stats_urls: &stats_urls,
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
    if ended_early {
        fleet.cut(window.end_us()).await;
    }
    if at_start.is_some() && at_end.is_none() {
        // Cut short: the window's costs run to the cut (if the server is still there).
        at_end = Some(Snapshot::take(&procs, &stats_urls).await);
    }
    if let Some(u) = at_end.as_mut().and_then(|s| s.server.as_mut()) {
        // CPU of the killed servers since they started, so that end − start
        // covers every process that served the window (the window's share
        // of the first one's set-up is then included too: an overestimate).
        u.cpu_s += fault_log.cpu_carry_s;
    }
    // Totals since the server started, handshakes included, and the peak RSS it ever had.
    let drained_stats = if at_start.is_some() {
        watch::fetch_summed_stats(&stats_urls).await
    } else {
        None
    };
    let hwm = procs.server_usage().map(|u| u.hwm_bytes);
    // Chat: each chat part's topics' last ids, while the server is still there.
    let chat_last = if at_start.is_some() {
        chat_last_of(&parts, &base_url, &mut problems).await
    } else {
        vec![None; parts.len()]
    };

    // 4. Stop everything (bounded), then verify.
    progress.stopping();
    let window_end = window.end_us().max(window_start);
    let slack = OUTAGE_SLACK
        + if transport == TransportKind::ShortPoll {
            scenario.poll_interval
        } else {
            Duration::ZERO
        };
    let outage_times = outage_spans(&fault_log.outages, slack.as_micros() as u64);
    let counted = fleet
        .stop(
            &parts,
            &chat_last,
            (window_start, window_end),
            &outage_times,
        )
        .await;
    problems.extend(counted.problems);
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
    stop_all(server, others, broker, Vec::new()).await;
    let part_totals = counted.part_totals;
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
        // With agents the clients ran in their runtimes: their lag is the fleet's.
        lag: Summary::from_histogram(counted.agent_lag.as_ref().unwrap_or(&lag)),
        fleet_cpus: &placement.fleet_cpus,
    };
    costs.fill(&mut result, baseline_stats.as_ref());
    result.ended_early = ended_early;
    result.fleet.relay_cpu_s = relay_cpu_s;
    result.fleet.link_emulator = emulation.name().map(str::to_string);
    result.scale = costs.scale(scenario, &schedule, agent_clocks);
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
    procs: &'a Procs,
    stats_urls: &'a [String],
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
    watch.fleet.set_window(window_start, window_end).await;
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
            Timed::WarmingUp => at_start = Some(Snapshot::take(p.procs, p.stats_urls).await),
            Timed::Measuring => at_end = Some(Snapshot::take(p.procs, p.stats_urls).await),
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
        Waited::ServerExited(msg) | Waited::FleetLost(msg) => {
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
