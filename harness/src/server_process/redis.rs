//! The broker of a scaled-out run: Debian's `redis-server`, started by
//! pushbench on a free loopback port for one transport's run and stopped
//! with it, like a push-server ([`ServerProcess`]: its own process group,
//! killed if the harness dies, its log beside the results).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{READY_TIMEOUT, ServerProcess, log_tail_suffix};
use crate::scenario::check::fmt_duration;

/// The program started for `broker = "redis"`.
pub const REDIS_BIN: &str = "redis-server";

/// How to get [`REDIS_BIN`], for the message when it is missing.
pub const REDIS_INSTALL: &str =
    "install it with `apt-get install redis-server` (Debian; scripts/test.sh does)";

/// `redis-server` on `PATH`, or an error saying how to install it.
pub fn find_redis() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(REDIS_BIN))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("`broker = \"redis\"` needs {REDIS_BIN}, which is not on PATH: {REDIS_INSTALL}")
        })
}

impl ServerProcess {
    /// Starts `redis-server` on a free loopback port, pinned to `cpus`, with
    /// nothing saved to disk, and waits (at most [`READY_TIMEOUT`]) until it
    /// answers `PING`. Its URL is [`ServerProcess::redis_url`].
    pub async fn start_redis(cpus: &[usize], log_path: &Path) -> anyhow::Result<Self> {
        Self::start_redis_at(super::free_loopback_addr()?, cpus, log_path).await
    }

    /// [`ServerProcess::start_redis`] on `addr` (a restarted broker takes
    /// its predecessor's port, so the servers reconnect to it).
    pub async fn start_redis_at(
        addr: SocketAddr,
        cpus: &[usize],
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let bin = find_redis()?;
        let mut cmd = super::managed(&bin, cpus, log_path, true)?;
        cmd.args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1"])
            // Memory only: nothing to disk between or after runs.
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().unwrap_or(0);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let failure = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break anyhow!("it exited ({status}) before it was ready");
            }
            match ping(addr).await {
                Ok(()) => {
                    return Ok(Self {
                        name: REDIS_BIN.to_string(),
                        child,
                        pid,
                        addr,
                        tcp_addr: None,
                        base_url: format!("redis://{addr}"),
                        log_path: log_path.to_path_buf(),
                    });
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    break anyhow!(
                        "it did not answer PING within {} ({e:#})",
                        fmt_duration(READY_TIMEOUT)
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let _ = child.kill().await;
        Err(anyhow!(
            "{REDIS_BIN} failed to start: {failure}{}",
            log_tail_suffix(log_path)
        ))
    }

    /// The broker URL push-servers are given (`redis://127.0.0.1:PORT`).
    pub fn redis_url(&self) -> &str {
        &self.base_url
    }
}

/// `PING` → `+PONG` on `addr`, bounded by one second.
async fn ping(addr: SocketAddr) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(1), async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await?;
        anyhow::ensure!(
            &buf == b"+PONG\r\n",
            "it answered {:?}",
            String::from_utf8_lossy(&buf)
        );
        Ok(())
    })
    .await
    .map_err(|_| anyhow!("no answer to PING within 1 s"))?
}
