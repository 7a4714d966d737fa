//! Step 1 of a transport's run: its server. A fresh push-server (its
//! schedule starting now, pinned to its cores), a foreign target started by
//! its own command, or, with `--target URL`, the server already running
//! there and its schedule from `/stats`.

use std::net::SocketAddr;
use std::path::PathBuf;

use protocol::{Schedule, TransportKind};

use crate::link::kernel::{self, Netns};
use crate::link::{Emulator, Link};
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
    /// The kernel link emulator's namespace, where push-server runs (`None`:
    /// this process's own).
    pub(super) netns: Option<&'a Netns>,
}

/// How the link between fleet and server is emulated in one transport's run.
pub(super) enum Emulation {
    /// Loopback: no link.
    Loopback,
    /// The relay processes, started once the server is up.
    Relay,
    /// The kernel: the server runs in this namespace.
    Kernel(Netns),
}

impl Emulation {
    /// The name `run.json` records (`None`: no link).
    pub(super) fn name(&self) -> Option<&'static str> {
        match self {
            Emulation::Loopback => None,
            Emulation::Relay => Some("relay"),
            Emulation::Kernel(_) => Some("kernel"),
        }
    }
}

/// Chooses (and for the kernel, builds) the emulation of the scenario's
/// link: `auto` takes the kernel when it can carry the link and pushbench
/// starts push-server itself, else the relay; `kernel` fails saying why it
/// cannot.
pub(super) fn link_emulation(e: &Entry<'_>, link: &Link) -> Result<Emulation, String> {
    if link.is_loopback() {
        return Ok(Emulation::Loopback);
    }
    let asked = e.scenario.link_emulator;
    if asked == Emulator::Relay {
        return Ok(Emulation::Relay);
    }
    let why_not = if e.foreign.is_some() || e.opts.target.is_some() {
        Err(
            "the kernel emulator moves push-server into a network namespace, so it needs \
             a push-server pushbench starts (not --target or a [targets] entry)"
                .to_string(),
        )
    } else {
        kernel::check(link)
    };
    let made = why_not
        .and_then(|()| Netns::create(link, e.scenario.clients).map_err(|err| format!("{err:#}")));
    match (made, asked) {
        (Ok(ns), _) => Ok(Emulation::Kernel(ns)),
        (Err(why), Emulator::Kernel) => Err(format!("--link-emulator kernel: {why}")),
        (Err(why), _) => {
            tracing::info!("link: the relay carries it ({why})");
            Ok(Emulation::Relay)
        }
    }
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
            if let Some(ns) = e.netns {
                // The kernel's link: the server listens on its end of the veth pair.
                spec.listen = Some(SocketAddr::from((ns.ns_ip, 0)));
                spec.tcp_listen = Some(SocketAddr::from((ns.ns_ip, 0)));
                spec.netns = Some(ns.name.clone());
            }
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

/// The link's relays, [`crate::link::relays_for`] the fleet: all started,
/// or none (those already started are stopped again).
pub(super) async fn start_relays(
    e: &Entry<'_>,
    link: &crate::link::Link,
    base_url: &str,
    tcp_addr: Option<SocketAddr>,
) -> anyhow::Result<Vec<ServerProcess>> {
    let n = crate::link::relays_for(e.scenario.clients);
    let mut relays = Vec::with_capacity(n);
    for k in 0..n {
        match start_relay(e, (k, n), link, base_url, tcp_addr).await {
            Ok(r) => relays.push(r),
            Err(err) => {
                for r in relays {
                    let _ = r.stop().await;
                }
                return Err(err);
            }
        }
    }
    Ok(relays)
}

/// Starts relay `k` of `n` between the fleet and the server at `base_url`
/// (and its raw-TCP port), as `pushbench relay`, pinned to the fleet's cores.
async fn start_relay(
    e: &Entry<'_>,
    (k, n): (usize, usize),
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
    let name = server_log_name(e.id, e.name);
    let name = if n == 1 {
        name.replacen("server-", "relay-", 1)
    } else {
        name.replacen("server-", &format!("relay{}-", k + 1), 1)
    };
    let log = e.opts.out_dir.join(name);
    tracing::info!(%link, %upstream, relay = k + 1, of = n, "starting the link relay");
    ServerProcess::start_program("the link relay", &bin, &args, &e.placement.fleet_cpus, &log).await
}
