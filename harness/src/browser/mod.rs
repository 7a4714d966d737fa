//! Browser clients in a run (`--browser-clients N`, scenario key
//! `browser_clients`): N headless Chromium pages per transport beside the
//! fleet, each one client speaking the transport with the browser's own
//! API (`fetch` polling loops, `EventSource`, `WebSocket`), driven by
//! `browser/clients.mjs` through npm's playwright-core and Debian's
//! Chromium.
//!
//! [`BrowserClients`] is that process: started before the fleet (and
//! waited for until every page has its first answer), pinned to the
//! fleet's cores, stopped after the drain, when the pages hand over what
//! they received. [`verify`] turns that into figures like the fleet's:
//! every id of the window once, in order, and the latency histogram.

pub mod verify;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use protocol::TransportKind;

use crate::sys::{pre_exec_setup, signal_tree};

pub use crate::scenario::MAX_BROWSER_CLIENTS;

/// Bound on the pages opening and getting their first answer.
pub const READY_BOUND: Duration = Duration::from_secs(60);

/// Bound on the pages handing over their records after "stop".
pub const REPORT_BOUND: Duration = Duration::from_secs(30);

/// The Chromium binary (Debian's package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// What the browser clients are asked to do.
#[derive(Debug, Clone)]
pub struct BrowserSpec {
    /// The server's base URL (or the link's relay).
    pub base_url: String,
    /// The transport every page speaks (not `tcp`: no browser API for it).
    pub transport: TransportKind,
    /// Pages.
    pub clients: usize,
    /// Topics: page `i` subscribes to `t{i % topics}`.
    pub topics: u32,
    /// Short polling's interval (each page's phase spread over it).
    pub poll_interval: Duration,
    /// Long polling's `timeout_ms`.
    pub longpoll_timeout: Duration,
    /// The server's named SSE event type, if any.
    pub event_type: Option<String>,
}

/// One page's records, as `clients.mjs` hands them over.
#[derive(Debug, Clone, Deserialize)]
pub struct PageRecord {
    /// Its topic (`t3`).
    pub topic: String,
    /// `[id, emitted_at_us, received_us]` of every event, in arrival order.
    pub events: Vec<(u64, u64, u64)>,
    /// Reconnections it made.
    pub reconnects: u64,
    /// The first errors it saw.
    pub errors: Vec<String>,
}

/// What the browser clients reported at the end, and what they cost.
#[derive(Debug, Clone, Default)]
pub struct BrowserReport {
    /// One record per page.
    pub pages: Vec<PageRecord>,
    /// Console errors of the pages (at most 50).
    pub console_errors: Vec<String>,
    /// CPU seconds of node and Chromium from ready to stop.
    pub cpu_s: f64,
    /// Wall seconds from ready to stop.
    pub wall_s: f64,
}

#[derive(Deserialize)]
struct Line {
    ready: Option<bool>,
    error: Option<String>,
    clients: Option<Vec<PageRecord>>,
    #[serde(default)]
    console_errors: Vec<String>,
}

/// The running browser clients.
pub struct BrowserClients {
    child: Child,
    pid: u32,
    lines: Lines<BufReader<ChildStdout>>,
    log: PathBuf,
    /// CPU of the process tree and the time, when every page was ready.
    ready_at: (f64, Instant),
}

/// Where `browser/clients.mjs` is: `PUSHBENCH_BROWSER_DIR`, else `browser/`
/// in the working directory or above the pushbench executable (a checkout
/// that built it with cargo).
pub fn script() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("PUSHBENCH_BROWSER_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(cwd) = std::env::current_dir() {
        dirs.extend(cwd.ancestors().map(|a| a.join("browser")));
    }
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().map(|a| a.join("browser")));
    }
    dirs.into_iter()
        .map(|d| d.join("clients.mjs"))
        .find(|s| s.is_file() && s.with_file_name("node_modules").is_dir())
        .ok_or_else(|| {
            anyhow!(
                "browser clients need browser/clients.mjs with its npm packages: run \
                 `scripts/test.sh` once (or `npm ci` in browser/), from the repository \
                 (or set PUSHBENCH_BROWSER_DIR)"
            )
        })
}

/// Checks, before a run, that browser clients can start here: the script
/// with its packages, Node 20 or later, and Chromium.
pub fn check_available() -> anyhow::Result<()> {
    script()?;
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|_| {
            anyhow!("browser clients need Node.js 20 or later on PATH (`node` not found)")
        })?;
    let v = String::from_utf8_lossy(&out.stdout);
    let major: u32 = v
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        bail!(
            "browser clients need Node.js 20 or later, found {}",
            v.trim()
        );
    }
    if !Path::new(CHROMIUM).is_file() {
        bail!("browser clients need Chromium at {CHROMIUM} (apt-get install chromium)");
    }
    Ok(())
}

impl BrowserClients {
    /// Starts the pages and waits (at most [`READY_BOUND`]) until every one
    /// has its first answer.
    pub async fn start(spec: &BrowserSpec, cpus: &[usize], log: &Path) -> anyhow::Result<Self> {
        let script = script()?;
        let cfg = serde_json::json!({
            "base_url": spec.base_url,
            "transport": spec.transport.as_str(),
            "clients": spec.clients,
            "topics": spec.topics,
            "poll_interval_ms": spec.poll_interval.as_millis() as u64,
            "longpoll_timeout_ms": spec.longpoll_timeout.as_millis() as u64,
            "event_type": spec.event_type,
        });
        let err = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(cfg.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .process_group(0);
        pre_exec_setup(&mut cmd, cpus);
        let mut child = cmd
            .spawn()
            .context("cannot start node for the browser clients")?;
        let pid = child.id().unwrap_or(0);
        let stdout = child
            .stdout
            .take()
            .context("browser clients' stdout not captured")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_BOUND, next_line(&mut lines)).await;
        let problem = match ready {
            Ok(Ok(l)) if l.ready == Some(true) => None,
            Ok(Ok(l)) => Some(l.error.unwrap_or_else(|| "an unexpected first line".into())),
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(_) => Some(format!("not ready within {} s", READY_BOUND.as_secs())),
        };
        if let Some(p) = problem {
            signal_tree(pid, libc::SIGKILL);
            let _ = child.wait().await;
            bail!(
                "the browser clients did not start: {p} (log: {})",
                log.display()
            );
        }
        let cpu = crate::probe::read_process(Some(pid)).map_or(0.0, |u| u.cpu_s);
        Ok(Self {
            child,
            pid,
            lines,
            log: log.to_path_buf(),
            ready_at: (cpu, Instant::now()),
        })
    }

    /// Asks the pages for their records (at most [`REPORT_BOUND`]), then
    /// stops node and Chromium, whatever happened.
    pub async fn stop(mut self) -> anyhow::Result<BrowserReport> {
        let cpu = crate::probe::read_process(Some(self.pid)).map_or(0.0, |u| u.cpu_s);
        let wall_s = self.ready_at.1.elapsed().as_secs_f64();
        let answer = async {
            let stdin = self
                .child
                .stdin
                .as_mut()
                .context("browser clients' stdin")?;
            stdin.write_all(b"stop\n").await?;
            stdin.flush().await?;
            next_line(&mut self.lines).await
        };
        let answer = tokio::time::timeout(REPORT_BOUND, answer).await;
        // Node exits by itself after answering; the group is killed either way.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        signal_tree(self.pid, libc::SIGKILL);
        let _ = self.child.wait().await;
        self.pid = 0;
        let line = match answer {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => bail!(
                "the browser clients did not report: {e:#} (log: {})",
                self.log.display()
            ),
            Err(_) => bail!(
                "the browser clients did not report within {} s (log: {})",
                REPORT_BOUND.as_secs(),
                self.log.display()
            ),
        };
        if let Some(e) = line.error {
            bail!(
                "the browser clients failed: {e} (log: {})",
                self.log.display()
            );
        }
        Ok(BrowserReport {
            pages: line.clients.unwrap_or_default(),
            console_errors: line.console_errors,
            cpu_s: (cpu - self.ready_at.0).max(0.0),
            wall_s,
        })
    }
}

impl Drop for BrowserClients {
    /// Ctrl-C or an early return: node and every Chromium process go too.
    fn drop(&mut self) {
        if self.pid != 0 {
            signal_tree(self.pid, libc::SIGKILL);
        }
    }
}

/// The next JSON line of `clients.mjs`.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<Line> {
    loop {
        match lines.next_line().await? {
            None => bail!("node exited without answering"),
            Some(l) if l.trim().is_empty() => {}
            Some(l) => {
                return serde_json::from_str(&l)
                    .with_context(|| format!("a line that is not the protocol's: {l:.200}"));
            }
        }
    }
}
