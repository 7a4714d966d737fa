//! One transport's run, step by step: start its server, connect the fleet,
//! fix the window, warm up, measure, drain, stop, verify.

use crate::fleet::{self, Fleet};
use crate::placement::Placement;
use crate::probe::{self, LagProbe, Sampler};
use crate::progress::Timed;
use crate::recorder::{Presence, Recorder, Totals, Window};
use crate::results::{self, Histograms, Summary, TransportResult};
use crate::runner::RunOptions;
use crate::runner::bounds::CONNECT_SLACK;
use crate::runner::bounds::OUTAGE_SLACK;
use crate::runner::bounds::SETTLE;
use crate::runner::bounds::WINDOW_LEAD;
use crate::runner::costs::{Costs, round_s};
use crate::runner::faults::{FaultLog, cpu_after, inject_faults, outage_spans};
use crate::runner::plan::RunId;
use crate::runner::plan::plan_transport;
use crate::runner::plan::protocol_of;
use crate::runner::plan::server_log_name;
use crate::runner::plan::transport_plan;
use crate::runner::plan::with_repetition;
use crate::runner::verify::{
    MIXED, chat_last_ids, expected_per_client, fleet_parts, mixed_result, part_result,
};
use crate::runner::watch::{Snapshot, Waited, Watch, instant_at};
use crate::scenario::check::fmt_duration;
use crate::scenario::{Contender, Scenario};
use crate::server_process::{self, ServerProcess, ServerSpec};
use protocol::TransportKind;
use std::path::PathBuf;
use std::sync::Arc;
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
