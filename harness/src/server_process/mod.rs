//! A fresh `push-server` process per measured run.
//!
//! The server runs in its own process so its CPU and memory are attributable
//! to one transport, and so a crash or a leak cannot outlive one run. This
//! module finds the binary, starts it with the scenario's flags, learns its
//! port from the one JSON line it prints when ready (bounded wait), and stops
//! it (SIGTERM, then SIGKILL). A server is never orphaned: dropping a
//! [`ServerProcess`] kills it, it gets SIGKILL if the harness dies
//! (`PR_SET_PDEATHSIG`), and it runs in its own process group so a terminal
//! Ctrl-C reaches only the harness, which then stops it in order.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::scenario::TargetSpec;
use crate::scenario::check::fmt_duration;
use crate::sys::pre_exec_setup;
use crate::sys::signal_group;

mod redis;
mod spec;
pub use redis::{REDIS_BIN, REDIS_INSTALL, find_redis};
pub use spec::{ServerSpec, target_env};

/// File name of the server binary.
pub const SERVER_BIN_NAME: &str = "push-server";

/// Environment variable naming the server binary (like `--server-bin`).
pub const SERVER_BIN_ENV: &str = "PUSHBENCH_SERVER_BIN";

/// Bound on the server printing its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`ServerProcess::stop`] waits after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Bound on one `GET /stats`.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// Lines of the server's log quoted in errors.
const LOG_TAIL_LINES: usize = 10;

/// Finds `push-server`: `explicit` (from `--server-bin` or
/// `PUSHBENCH_SERVER_BIN`) if given, else beside the running executable.
pub fn find_server_bin(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().context("cannot locate the pushbench executable")?;
            beside(&exe)
        }
    };
    if !path.is_file() {
        bail!(
            "{SERVER_BIN_NAME} not found at {}: build it with `cargo build --release -p servers` \
             (or name it with --server-bin / {SERVER_BIN_ENV})",
            path.display()
        );
    }
    Ok(path)
}

/// `push-server` in the same directory as `exe`.
pub fn beside(exe: &Path) -> PathBuf {
    exe.with_file_name(SERVER_BIN_NAME)
}

/// A running `push-server`, or a target's command. Dropping it kills the process.
#[derive(Debug)]
pub struct ServerProcess {
    /// `push-server`, or `target \`NAME\`` (for messages).
    name: String,
    child: Child,
    pid: u32,
    addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    base_url: String,
    log_path: PathBuf,
}

/// The ready line: `{"listening":"127.0.0.1:41234"}`, plus `"tcp":"ADDR"`
/// when the raw-TCP floor is served.
#[derive(Debug, Deserialize)]
struct Ready {
    listening: String,
    #[serde(default)]
    tcp: Option<String>,
}

impl ServerProcess {
    /// Starts `bin` with `spec`, its stderr going to `log_path`, and waits
    /// (at most [`READY_TIMEOUT`]) for its ready line.
    ///
    /// If the process exits first or the bound passes, it is killed and the
    /// error quotes the last lines of its log.
    pub async fn start(bin: &Path, spec: &ServerSpec, log_path: &Path) -> anyhow::Result<Self> {
        match &spec.netns {
            None => {
                Self::start_program(SERVER_BIN_NAME, bin, &spec.args(), &spec.cpus, log_path).await
            }
            Some(ns) => {
                // `ip netns exec` enters the namespace and execs the server:
                // the pid is the server's.
                let mut args = vec!["netns".to_string(), "exec".into(), ns.clone()];
                args.push(bin.display().to_string());
                args.extend(spec.args());
                Self::start_program(
                    SERVER_BIN_NAME,
                    Path::new("ip"),
                    &args,
                    &spec.cpus,
                    log_path,
                )
                .await
            }
        }
    }

    /// Starts `bin args…` pinned to `cpus`, its stderr going to `log_path`,
    /// and waits (at most [`READY_TIMEOUT`]) for a push-server ready line
    /// (`{"listening":ADDR}`): push-server itself, or the link relay.
    pub async fn start_program(
        name: &str,
        bin: &Path,
        args: &[String],
        cpus: &[usize],
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let mut cmd = managed(bin, cpus, log_path, false)?;
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().context("server stdout not captured")?;
        let mut lines = BufReader::new(stdout).lines();

        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => match serde_json::from_str::<Ready>(&line) {
                        Ok(r) => return Ok(r),
                        Err(_) => tracing::debug!(target: "push-server", "stdout: {line}"),
                    },
                    Ok(None) => return Err(anyhow!("it closed its stdout before it was ready")),
                    Err(e) => return Err(anyhow!("reading its stdout: {e}")),
                }
            }
        })
        .await;
        let failure = match ready {
            Ok(Ok(ready)) => match parse_ready(&ready) {
                Ok((addr, tcp_addr)) => {
                    // Keep draining stdout so a chatty server never blocks on a full pipe.
                    tokio::spawn(async move {
                        while let Ok(Some(line)) = lines.next_line().await {
                            tracing::debug!(target: "push-server", "stdout: {line}");
                        }
                    });
                    return Ok(Self {
                        name: name.to_string(),
                        child,
                        pid,
                        addr,
                        tcp_addr,
                        base_url: format!("http://{addr}"),
                        log_path: log_path.to_path_buf(),
                    });
                }
                Err(e) => e,
            },
            Ok(Err(e)) => e,
            Err(_) => anyhow!("it was not ready within {}", fmt_duration(READY_TIMEOUT)),
        };
        // Give a crashing server a moment to exit so its status and last words are known.
        let status = match tokio::time::timeout(Duration::from_millis(300), child.wait()).await {
            Ok(Ok(st)) => Some(st),
            _ => {
                let _ = child.kill().await;
                None
            }
        };
        let status = status.map_or(String::new(), |s| format!(" ({s})"));
        Err(anyhow!(
            "{name} failed to start{status}: {failure}{}",
            log_tail_suffix(log_path)
        ))
    }

    /// Starts a target's command (a server pushbench did not build) with
    /// the schedule in `PUSHBENCH_*` variables (`env`, [`target_env`]),
    /// listening on `listen`, its stdout and stderr going to `log_path`, and
    /// waits (at most `spec.ready_timeout`) until `GET ready_path` answers
    /// 200. Pinned to `cpus` like push-server.
    ///
    /// If the command cannot start, exits first, or the bound passes, its
    /// process group is killed and the error quotes the end of its log.
    pub async fn start_target(
        name: &str,
        spec: &TargetSpec,
        (listen, env, cpus): (SocketAddr, &[(String, String)], &[usize]),
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let who = format!("target `{name}`");
        let program = &spec.command[0];
        let mut cmd = managed(Path::new(program), cpus, log_path, true)
            .with_context(|| format!("cannot start {who}"))?;
        cmd.args(&spec.command[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        let mut child = cmd.spawn().with_context(|| {
            let cwd = std::env::current_dir().unwrap_or_default();
            format!(
                "cannot start {who}: command `{program}` (relative paths are relative to {})",
                cwd.display()
            )
        })?;
        let pid = child.id().unwrap_or(0);
        let base_url = format!("http://{listen}");
        let ready_url = format!("{base_url}{}", spec.ready_path);
        let failure = match wait_ready(&mut child, &ready_url, spec.ready_timeout).await {
            Ok(()) => {
                return Ok(Self {
                    name: who,
                    child,
                    pid,
                    addr: listen,
                    tcp_addr: None,
                    base_url,
                    log_path: log_path.to_path_buf(),
                });
            }
            Err(e) => e,
        };
        signal_group(pid, libc::SIGKILL);
        let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
        Err(anyhow!(
            "{who} failed to start: {failure}{}",
            log_tail_suffix(log_path)
        ))
    }

    /// `push-server` or `target \`NAME\``, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's process id (for sampling `/proc/<pid>`).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The raw-TCP floor's address, if it serves one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// `http://ADDR`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Where its stderr goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The exit status if the process has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its log, as `; last log lines: a | b | c` (empty if none).
    pub fn log_tail(&self) -> String {
        log_tail_suffix(&self.log_path)
    }

    /// Kills the server with SIGKILL (no chance to close anything cleanly)
    /// and reaps it, waiting at most [`STOP_GRACE`].
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if self.exited().is_some() {
            return Ok(());
        }
        // The whole group: a target's command may be a script with children.
        signal_group(self.pid, libc::SIGKILL);
        tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .map_err(|_| anyhow!("not reaped within {}", fmt_duration(STOP_GRACE)))??;
        Ok(())
    }

    /// Stops the server: SIGTERM, up to [`STOP_GRACE`] to exit, then SIGKILL.
    /// Returns its exit status (already exited: that status).
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        if let Some(st) = self.exited() {
            return Ok(st);
        }
        signal_group(self.pid, libc::SIGTERM);
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(st) => {
                // Whatever the leader left behind in its group goes with it.
                signal_group(self.pid, libc::SIGKILL);
                Ok(st?)
            }
            Err(_) => {
                tracing::warn!(
                    "{} (pid {}) ignored SIGTERM for {}; killing its process group",
                    self.name,
                    self.pid,
                    fmt_duration(STOP_GRACE)
                );
                signal_group(self.pid, libc::SIGKILL);
                Ok(tokio::time::timeout(STOP_GRACE, self.child.wait())
                    .await
                    .map_err(|_| anyhow!("not reaped within {}", fmt_duration(STOP_GRACE)))??)
            }
        }
    }
}

/// How often a starting target's readiness is asked.
const READY_POLL: Duration = Duration::from_millis(100);

/// Polls `url` until it answers 200, the child exits, or `bound` passes.
async fn wait_ready(child: &mut Child, url: &str, bound: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .context("building the readiness client")?;
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("it exited ({status}) before it was ready");
        }
        let last = match client.get(url).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => return Ok(()),
            Ok(r) => format!("GET {url} answered {}", r.status()),
            Err(e) => format!("GET {url}: {e}"),
        };
        if tokio::time::Instant::now() + READY_POLL >= deadline {
            bail!("it was not ready within {} ({last})", fmt_duration(bound));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// The command of a process the harness starts and owns (a server, a
/// relay, the broker, a fleet agent): `bin`, its stderr (and with
/// `stdout_too` its stdout) going to a new `log`, pinned to `cpus`, in its
/// own process group (a terminal's Ctrl-C goes to the harness alone, which
/// stops it in order and saves the results), killed if dropped or if the
/// harness dies. The caller adds arguments and the other streams.
pub(crate) fn managed(
    bin: &Path,
    cpus: &[usize],
    log: &Path,
    stdout_too: bool,
) -> anyhow::Result<Command> {
    let file = std::fs::File::create(log)
        .with_context(|| format!("cannot create the log {}", log.display()))?;
    let mut cmd = Command::new(bin);
    if stdout_too {
        cmd.stdout(Stdio::from(file.try_clone()?));
    }
    cmd.stderr(Stdio::from(file))
        .kill_on_drop(true)
        .process_group(0);
    pre_exec_setup(&mut cmd, cpus);
    Ok(cmd)
}

/// A free loopback port for a target to listen on: bound, read, released.
/// (A race with another process taking it in between is possible but
/// rare, and ends in the target's clear start-up error.)
pub fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// The addresses of a ready line (unspecified ones mapped to loopback).
fn parse_ready(r: &Ready) -> anyhow::Result<(SocketAddr, Option<SocketAddr>)> {
    let parse = |s: &str| {
        s.parse::<SocketAddr>()
            .map(loopback_if_unspecified)
            .map_err(|e| anyhow!("its ready line names a bad address {s:?}: {e}"))
    };
    let tcp = r.tcp.as_deref().map(parse).transpose()?;
    Ok((parse(&r.listening)?, tcp))
}

/// A server listening on `0.0.0.0` is reached on loopback.
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// `; last log lines: a | b` from the end of the log file, or empty.
pub(crate) fn log_tail_suffix(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    // Only the end matters; a huge log is not read into a message whole.
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(8192)..]).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!(" (its log {} is empty)", path.display());
    }
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!("; last lines of {}: {}", path.display(), tail.join(" | "))
}

/// The `GET /stats` reply of push-server, read strictly (its version
/// checked, every field known): the one type the server writes.
pub use protocol::stats::StatsSnapshot as ServerStats;

/// Parses the body of `GET /stats` ([`ServerStats::parse`]).
pub fn parse_stats(body: &[u8]) -> anyhow::Result<ServerStats> {
    ServerStats::parse(body).map_err(anyhow::Error::msg)
}

/// The socket counters of a `/stats` reply, for [`crate::results::WireCounts`].
pub fn wire_counts(s: &ServerStats) -> crate::results::WireCounts {
    crate::results::WireCounts {
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        requests: s.route_requests(),
        connections_accepted: s.connections_accepted,
    }
}

/// `GET {base_url}/stats`, bounded by [`STATS_TIMEOUT`].
pub async fn fetch_stats(base_url: &str) -> anyhow::Result<ServerStats> {
    let url = format!("{}/stats", base_url.trim_end_matches('/'));
    let body = get(&url).await?;
    parse_stats(&body).with_context(|| format!("GET {url}: unexpected answer"))
}

/// The body of a successful `GET url`, bounded by [`STATS_TIMEOUT`].
async fn get(url: &str) -> anyhow::Result<Vec<u8>> {
    let client = reqwest::Client::builder()
        .timeout(STATS_TIMEOUT)
        .build()
        .context("building an HTTP client")?;
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url}: status {status}");
    }
    let body = resp.bytes().await.with_context(|| format!("GET {url}"))?;
    Ok(body.to_vec())
}

/// The id of the last event on `topic` (0: none yet), from the live-edge
/// answer of `GET {base_url}/poll?topic=…` (its `next`), bounded by
/// [`STATS_TIMEOUT`]. Chat verification reads it at the end of a run.
pub async fn fetch_last_id(base_url: &str, topic: &str) -> anyhow::Result<u64> {
    let url = format!("{}/poll?topic={topic}", base_url.trim_end_matches('/'));
    let body = get(&url).await?;
    let answer: protocol::PollResponse =
        serde_json::from_slice(&body).with_context(|| format!("GET {url}: unexpected answer"))?;
    Ok(answer.next)
}

/// A fresh admin token: 128 random bits from the kernel, hex.
///
/// Per run, so a fault route of one run's server cannot be driven by anything
/// that saw another run's command line.
pub fn random_token() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for an admin token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What `POST /admin/drop` answered: how many connections it reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct DropReport {
    /// Connections reset.
    pub dropped: u64,
}

/// `POST /admin/drop?fraction=F` on `base_url`, bounded by [`STATS_TIMEOUT`].
pub async fn admin_drop(base_url: &str, token: &str, fraction: f64) -> anyhow::Result<DropReport> {
    let url = format!(
        "{}/admin/drop?fraction={fraction}",
        base_url.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(STATS_TIMEOUT)
        .build()
        .context("building an HTTP client")?;
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let body = resp.bytes().await.with_context(|| format!("POST {url}"))?;
    if !status.is_success() {
        bail!(
            "POST {url}: status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("POST {url}: unexpected answer"))
}

#[cfg(test)]
mod tests;
