//! The processes of a run spread beyond one: servers behind a broker and
//! fleet agents, started and stopped.
//!
//! With `servers`, `broker = "redis"`: Redis, then N push-servers sharing
//! one event stream through it. Server 1 runs the schedule and publishes
//! each event once (`--broker-publish`); every server (server 1 too) fans
//! out what it reads from Redis, with the publisher's ids, so a client may
//! resume on any of them. All on the server cores; logs `broker-…` and
//! `server{k}-…` beside the results. With `agents`: N `pushbench agent`
//! processes on the fleet cores, logs `agent{k}-…`.

use std::sync::Arc;

use crate::agent::remote::AgentFleet;
use crate::progress::TransportProgress;
use crate::recorder::Presence;
use crate::runner::plan::server_log_name;
use crate::runner::start::{Entry, NotStarted, Started};
use crate::server_process::{ServerProcess, ServerSpec};

/// The broker and every server, started in order (all, or none: those
/// already started are stopped again).
///
/// The first of the servers returned ([`Started`]) is the one faults hit
/// (its admin routes; a restart brings it back where it listened): server 2,
/// which only reads, so the publisher keeps the stream going; its clients
/// resume on the others meanwhile. With one server it is the publisher.
pub(super) async fn start_cluster(
    e: &Entry<'_>,
    with_admin: bool,
    progress: &TransportProgress,
) -> Result<(Started, ServerProcess, Vec<ServerProcess>), NotStarted> {
    let n = e.scenario.servers;
    progress.starting(&format!("starting redis-server and {n} push-servers"));
    let Some(bin) = e.opts.server_bin.as_deref() else {
        return Err(NotStarted::Failed(
            "no push-server binary given".to_string(),
        ));
    };
    let log_name = server_log_name(e.id, e.name);
    let broker_log = e
        .opts
        .out_dir
        .join(log_name.replacen("server-", "broker-", 1));
    let started = tokio::select! {
        () = e.opts.interrupt.cancelled() => return Err(NotStarted::Interrupted),
        s = ServerProcess::start_redis(&e.placement.server_cpus, &broker_log) => s,
    };
    let broker = started.map_err(|err| NotStarted::Failed(format!("{err:#}")))?;
    tracing::info!(
        pid = broker.pid(),
        url = broker.redis_url(),
        "redis-server ready"
    );
    // A whole millisecond, in the future, and the same for every server.
    let start_epoch_us = protocol::now_us().div_ceil(1000) * 1000;
    let mut servers: Vec<ServerProcess> = Vec::with_capacity(n);
    let mut spec = ServerSpec::from_scenario(e.scenario, start_epoch_us);
    spec.tcp = e.transport == protocol::TransportKind::Tcp;
    spec.cpus = e.placement.server_cpus.clone();
    spec.broker = Some(broker.redis_url().to_string());
    if with_admin {
        spec.admin_token = Some(
            crate::server_process::random_token()
                .map_err(|err| NotStarted::Failed(format!("{err:#}")))?,
        );
    }
    spec.broker_pubsub = e.scenario.broker == crate::scenario::broker::Broker::RedisPubsub;
    for k in 0..n {
        spec.broker_publish = k == 0;
        let log =
            e.opts
                .out_dir
                .join(log_name.replacen("server-", &format!("server{}-", k + 1), 1));
        let started = tokio::select! {
            () = e.opts.interrupt.cancelled() => Err(None),
            s = ServerProcess::start(bin, &spec, &log) => s.map_err(Some),
        };
        match started {
            Ok(s) => {
                tracing::info!(
                    server = k + 1,
                    pid = s.pid(),
                    url = s.base_url(),
                    "push-server ready"
                );
                servers.push(s);
            }
            Err(err) => {
                for s in servers {
                    let _ = s.stop().await;
                }
                let _ = broker.stop().await;
                return Err(match err {
                    None => NotStarted::Interrupted,
                    Some(err) => NotStarted::Failed(format!(
                        "push-server {} of {n} (behind the broker): {err:#}",
                        k + 1
                    )),
                });
            }
        }
    }
    let primary = if servers.len() > 1 { 1 } else { 0 };
    let first = servers.remove(primary);
    // A restart listens where this one does, reads the same broker, and
    // does not publish.
    let mut again = spec.clone();
    again.broker_publish = primary == 0;
    again.listen = Some(first.addr());
    again.tcp_listen = first.tcp_addr();
    let log = first.log_path().to_path_buf();
    let started = Started {
        base_url: first.base_url().to_string(),
        tcp_addr: first.tcp_addr(),
        server: Some(first),
        schedule: spec.schedule,
        restart: Some((again, bin.to_path_buf(), log)),
    };
    Ok((started, broker, servers))
}

/// The fleet agents of `--agents N` (`None`: the fleet runs in this
/// process), started and their clocks measured; the problem if they
/// cannot start.
pub(super) async fn start_agents(
    e: &Entry<'_>,
    presence: &Arc<Presence>,
) -> Result<Option<AgentFleet>, String> {
    let n = e.scenario.agents;
    if n == 0 {
        return Ok(None);
    }
    let bin = crate::link::pushbench_bin(e.opts.server_bin.as_deref(), "fleet agents")
        .map_err(|err| format!("{err:#}"))?;
    let log_name = server_log_name(e.id, e.name);
    let log_of = |k: usize| {
        e.opts
            .out_dir
            .join(log_name.replacen("server-", &format!("agent{}-", k + 1), 1))
    };
    AgentFleet::spawn(n, &bin, &e.placement.fleet_cpus, log_of, presence.clone())
        .await
        .map(Some)
        .map_err(|err| format!("{err:#}"))
}

/// Stops the server, the further servers, the broker and the relays
/// (each bounded), saying in the log what did not stop cleanly.
pub(super) async fn stop_all(
    server: Option<ServerProcess>,
    others: Vec<ServerProcess>,
    broker: Option<ServerProcess>,
    relays: Vec<ServerProcess>,
) {
    let all = server.into_iter().chain(others).chain(relays).chain(broker);
    for p in all {
        let name = p.name().to_string();
        match p.stop().await {
            Ok(status) => tracing::debug!(%status, "{name} stopped"),
            Err(e) => tracing::warn!("stopping {name}: {e:#}"),
        }
    }
}

/// The `/stats` URLs of push-servers: the first and the others.
pub(super) fn targets_of_servers(base_url: &str, others: &[ServerProcess]) -> Vec<String> {
    std::iter::once(base_url.to_string())
        .chain(others.iter().map(|s| s.base_url().to_string()))
        .collect()
}
