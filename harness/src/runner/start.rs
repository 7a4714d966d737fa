//! Step 1 of a transport's run: its server. A fresh push-server (its
//! schedule starting now, pinned to its cores), a foreign target started by
//! its own command, or, with `--target URL`, the server already running
//! there and its schedule from `/stats`.

use std::net::SocketAddr;
use std::path::PathBuf;

use protocol::{Schedule, TransportKind};

use crate::placement::Placement;
use crate::progress::TransportProgress;
use crate::runner::plan::{RunId, RunOptions, server_log_name};
use crate::scenario::Scenario;
use crate::scenario::contender::TargetSpec;
use crate::server_process::{self, ServerProcess, ServerSpec};

/// One entry of the run: who is measured, under which scenario and options.
pub(super) struct Entry<'a> {
    pub(super) id: &'a RunId,
    pub(super) scenario: &'a Scenario,
    pub(super) opts: &'a RunOptions,
    pub(super) placement: &'a Placement,
    /// The protocol the clients speak.
    pub(super) transport: TransportKind,
    /// A target: its name and how to start it (`None`: push-server).
    pub(super) foreign: Option<(&'a str, &'a TargetSpec)>,
    /// The entry's name in progress lines and log names.
    pub(super) name: &'a str,
}

/// A server ready for the fleet.
pub(super) struct Started {
    /// The process, when pushbench started it (`None` with `--target URL`).
    pub(super) server: Option<ServerProcess>,
    pub(super) base_url: String,
    /// push-server's raw-TCP port, opened only for the floor's run.
    pub(super) tcp_addr: Option<SocketAddr>,
    /// The server's event schedule, which the verification follows.
    pub(super) schedule: Schedule,
    /// How to start push-server again where it listens, for a restart fault:
    /// its spec, binary and log.
    pub(super) restart: Option<(ServerSpec, PathBuf, PathBuf)>,
}

/// Why no server was there for the fleet.
pub(super) enum NotStarted {
    /// Ctrl-C while it was starting.
    Interrupted,
    /// It could not start, or the target cannot serve this run: the problem.
    Failed(String),
}

/// Starts (or reaches) the entry's server; `with_admin` gives push-server an
/// admin token, for faults.
pub(super) async fn start_server(
    e: &Entry<'_>,
    with_admin: bool,
    progress: &TransportProgress,
) -> Result<Started, NotStarted> {
    let mut restart = None;
    let (server, base_url, tcp_addr, schedule) = match (&e.opts.target, e.foreign) {
        (_, Some((name, target))) => {
            progress.starting(&format!("starting target {name}"));
            let start_epoch_us = protocol::now_us().div_ceil(1000) * 1000;
            let spec = ServerSpec::from_scenario(e.scenario, start_epoch_us);
            let log = e.opts.out_dir.join(server_log_name(e.id, e.name));
            let started = async {
                let listen = server_process::free_loopback_addr()?;
                let env = server_process::target_env(&spec, listen);
                ServerProcess::start_target(
                    name,
                    target,
                    (listen, &env, &e.placement.server_cpus),
                    &log,
                )
                .await
            };
            let started = tokio::select! {
                () = e.opts.interrupt.cancelled() => return Err(NotStarted::Interrupted),
                s = started => s,
            };
            match started {
                Ok(s) => {
                    let url = s.base_url().to_string();
                    tracing::info!(target = name, pid = s.pid(), %url, "target ready");
                    (Some(s), url, None, spec.schedule)
                }
                Err(err) => {
                    return Err(NotStarted::Failed(format!("{err:#}")));
                }
            }
        }
        (Some(url), None) => {
            progress.starting(&format!("using the server at {url}"));
            match server_process::fetch_stats(url).await {
                // A target's raw-TCP port is not known here: a tcp fleet
                // against a target reports the missing address as errors.
                Ok(stats) if e.scenario.is_chat() && stats.config.schedule().is_active() => {
                    return Err(NotStarted::Failed(format!(
                        "chat needs a server that generates no events (rate 0): every event \
                         on a chat topic must be a message; the target generates {} events/s \
                         per topic",
                        stats.config.schedule().rate
                    )));
                }
                Ok(stats) => (
                    None,
                    url.trim_end_matches('/').to_string(),
                    None,
                    stats.config.schedule(),
                ),
                Err(err) => {
                    return Err(NotStarted::Failed(format!("target unreachable: {err:#}")));
                }
            }
        }
        (None, None) => {
            progress.starting("starting push-server");
            // A whole millisecond, in the future: ids and times read cleanly in logs.
            let start_epoch_us = protocol::now_us().div_ceil(1000) * 1000;
            let mut spec = ServerSpec::from_scenario(e.scenario, start_epoch_us);
            // The floor's port is opened only for its own run: the others' servers stay identical.
            // (A mixed run has no floor: validation keeps tcp out of groups.)
            spec.tcp = e.transport == TransportKind::Tcp;
            spec.cpus = e.placement.server_cpus.clone();
            if with_admin {
                match server_process::random_token() {
                    Ok(t) => spec.admin_token = Some(t),
                    Err(err) => {
                        return Err(NotStarted::Failed(format!("{err:#}")));
                    }
                }
            }
            let log = e.opts.out_dir.join(server_log_name(e.id, e.name));
            let Some(bin) = e.opts.server_bin.as_deref() else {
                return Err(NotStarted::Failed(
                    "no push-server binary given".to_string(),
                ));
            };
            let started = tokio::select! {
                () = e.opts.interrupt.cancelled() => return Err(NotStarted::Interrupted),
                s = ServerProcess::start(bin, &spec, &log) => s,
            };
            match started {
                Ok(s) => {
                    let url = s.base_url().to_string();
                    tracing::info!(transport = %e.transport, pid = s.pid(), %url, "push-server ready");
                    let tcp = s.tcp_addr();
                    // A restart listens where this one does, with the same schedule.
                    let mut again = spec.clone();
                    again.listen = Some(s.addr());
                    again.tcp_listen = tcp;
                    restart = Some((again, bin.to_path_buf(), log.clone()));
                    (Some(s), url, tcp, spec.schedule)
                }
                Err(err) => return Err(NotStarted::Failed(format!("{err:#}"))),
            }
        }
    };
    Ok(Started {
        server,
        base_url,
        tcp_addr,
        schedule,
        restart,
    })
}

/// Starts the link relay (`pushbench relay`) between the fleet and the
/// server at `base_url` (and its raw-TCP port), pinned to the fleet's
/// cores: the fleet then connects to the relay's addresses.
pub(super) async fn start_relay(
    e: &Entry<'_>,
    link: &crate::link::Link,
    base_url: &str,
    tcp_addr: Option<SocketAddr>,
) -> anyhow::Result<ServerProcess> {
    let upstream: SocketAddr = base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|_| {
            anyhow::anyhow!("a link needs the server's address as IP:port, got {base_url}")
        })?;
    let bin = crate::link::relay_bin(e.opts.server_bin.as_deref())?;
    let mut args = vec![
        "relay".to_string(),
        "--link".to_string(),
        e.scenario.link.clone(),
        "--upstream".to_string(),
        upstream.to_string(),
    ];
    if let Some(t) = tcp_addr {
        args.push("--tcp-upstream".to_string());
        args.push(t.to_string());
    }
    let log = e
        .opts
        .out_dir
        .join(server_log_name(e.id, e.name).replacen("server-", "relay-", 1));
    tracing::info!(%link, %upstream, "starting the link relay");
    ServerProcess::start_program("the link relay", &bin, &args, &e.placement.fleet_cpus, &log).await
}
