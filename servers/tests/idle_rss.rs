//! Server memory per idle connection, per streaming transport (run on demand,
//! in release, since debug builds inflate every future):
//!
//! ```text
//! cargo test --release -p servers --test idle_rss -- --ignored --nocapture
//! ```
//!
//! Starts `push-server --rate 0.01` (so connections sit idle), opens a
//! warm-up batch of connections of one transport, reads the server's
//! `VmRSS` from `/proc/<pid>/status`, opens `PUSHBENCH_IDLE_CONNS` (default
//! 2000) more, waits until `/stats` shows them all open and the RSS settles,
//! reads `VmRSS` again and prints (after − before) / N. A fresh server per
//! transport, so each figure is attributable to one transport. The clients
//! are raw sockets in this process that send the subscription and read the
//! answer's head, nothing more; kernel socket memory is not in `VmRSS`.
//!
//! The issue's target is at most 16 KiB per connection for SSE and WebSocket;
//! the test fails if a transport exceeds `PUSHBENCH_IDLE_MAX_KIB` (default 16).

use std::net::SocketAddr;
use std::time::Duration;

use servers::StatsSnapshot;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Bound on any single wait.
const WAIT: Duration = Duration::from_secs(10);
/// Connections opened before the first reading, so one-time costs (lazy
/// statics, the first allocations of each worker thread's arena, the
/// runtime's first slab pages) are not charged to the measured ones.
const WARM_UP: usize = 200;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sse,
    Ws,
    Tcp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sse => "sse",
            Kind::Ws => "ws",
            Kind::Tcp => "tcp",
        }
    }

    fn open(self, stats: &StatsSnapshot) -> u64 {
        match self {
            Kind::Sse => stats.open.sse,
            Kind::Ws => stats.open.ws,
            Kind::Tcp => stats.open.tcp,
        }
    }
}

struct Server {
    child: tokio::process::Child,
    http: SocketAddr,
    tcp: SocketAddr,
}

impl Server {
    async fn start() -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_push-server"))
            .args(["--listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0"])
            .args(["--rate", "0.01", "--log", "error"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = timeout(WAIT, tokio::io::BufReader::new(stdout).lines().next_line())
            .await
            .expect("ready line")
            .unwrap()
            .unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
        let addr = |key: &str| ready[key].as_str().unwrap().parse().unwrap();
        Self {
            http: addr("listening"),
            tcp: addr("tcp"),
            child,
        }
    }

    /// `VmRSS` of the server process, KiB.
    fn rss_kib(&self) -> u64 {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    async fn stats(&self) -> StatsSnapshot {
        let mut stream = TcpStream::connect(self.http).await.unwrap();
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        timeout(WAIT, stream.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let start = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        serde_json::from_slice(&answer[start..]).unwrap()
    }

    /// Opens one idle connection of `kind` and waits for the answer's head
    /// (raw TCP has none: `/stats` tells when the server has them all).
    async fn connect(&self, kind: Kind) -> TcpStream {
        let addr = if kind == Kind::Tcp {
            self.tcp
        } else {
            self.http
        };
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request: &[u8] = match kind {
            Kind::Sse => b"GET /sse HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n",
            Kind::Ws => {
                b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            }
            Kind::Tcp => b"SUB t0 -\n",
        };
        stream.write_all(request).await.unwrap();
        if kind != Kind::Tcp {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                timeout(WAIT, stream.read_exact(&mut byte))
                    .await
                    .unwrap()
                    .unwrap();
                head.push(byte[0]);
            }
            let expected: &[u8] = if kind == Kind::Ws {
                b"HTTP/1.1 101"
            } else {
                b"HTTP/1.1 200"
            };
            assert!(
                head.starts_with(expected),
                "{}",
                String::from_utf8_lossy(&head)
            );
        }
        stream
    }

    /// Opens `n` connections, waits until the server counts `total` open,
    /// then until its RSS stops moving; returns that RSS.
    async fn open(&self, kind: Kind, n: usize, total: u64, held: &mut Vec<TcpStream>) -> u64 {
        for _ in 0..n {
            held.push(self.connect(kind).await);
        }
        let deadline = Instant::now() + WAIT;
        while kind.open(&self.stats().await) != total {
            assert!(
                Instant::now() < deadline,
                "{} open: never reached {total}",
                kind.name()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut rss = self.rss_kib();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.rss_kib();
            if now == rss {
                return rss;
            }
            rss = now;
        }
    }
}

#[tokio::test]
#[ignore = "memory measurement, run on demand in release"]
async fn idle_memory_per_connection() {
    let n: usize = env_or("PUSHBENCH_IDLE_CONNS", 2000);
    let max_kib: f64 = env_or("PUSHBENCH_IDLE_MAX_KIB", 16.0);
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with --release for figures worth reporting");
    }
    let mut over = Vec::new();
    for kind in [Kind::Sse, Kind::Ws, Kind::Tcp] {
        let server = Server::start().await;
        let idle = server.rss_kib();
        let mut held = Vec::with_capacity(WARM_UP + n);
        let before = server.open(kind, WARM_UP, WARM_UP as u64, &mut held).await;
        let after = server.open(kind, n, (WARM_UP + n) as u64, &mut held).await;
        let per_conn = (after.saturating_sub(before)) as f64 / n as f64;
        eprintln!(
            "{:>3}: idle server {idle} KiB; {WARM_UP} connections {before} KiB; \
             +{n} connections {after} KiB => {per_conn:.1} KiB per connection",
            kind.name()
        );
        if kind != Kind::Tcp && per_conn > max_kib {
            over.push(format!("{} {per_conn:.1} KiB", kind.name()));
        }
        drop(held);
    }
    assert!(
        over.is_empty(),
        "over {max_kib} KiB per connection: {over:?}"
    );
}
