//! What the faults tests share: servers, clients, bounds.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protocol::Schedule;
use servers::conns::{ConnectionCounts, DropReport};
use servers::{HubConfig, ServerConfig, StatsSnapshot};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Bound on any single wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(5);
pub(crate) const TOKEN: &str = "s3cret-token";

pub(crate) struct Server(pub(crate) crate::common::InProcess);

impl std::ops::Deref for Server {
    type Target = crate::common::InProcess;
    fn deref(&self) -> &crate::common::InProcess {
        &self.0
    }
}

impl Server {
    pub(crate) async fn start(config: ServerConfig) -> Self {
        Self(crate::common::InProcess::start(config, true).await)
    }

    pub(crate) async fn stats(&self) -> StatsSnapshot {
        let resp = http().get(self.url("/stats")).send().await.unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    /// `method path` with `auth` as the Authorization header: (status, body).
    pub(crate) async fn admin(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
    ) -> (u16, String) {
        let mut req = http().request(method.parse().unwrap(), self.url(path));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    pub(crate) async fn drop_fraction(&self, query: &str) -> DropReport {
        let (status, body) = self
            .admin("POST", &format!("/admin/drop?{query}"), Some(&bearer()))
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub(crate) async fn connections(&self) -> ConnectionCounts {
        let (status, body) = self
            .admin("GET", "/admin/connections", Some(&bearer()))
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until `done` holds for the stats; panics after `limit`.
    pub(crate) async fn wait_stats(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&StatsSnapshot) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            let stats = self.stats().await;
            if done(&stats) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {stats:#?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) async fn stop(self) {
        self.0.stop(WAIT).await;
    }
}

pub(crate) fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

pub(crate) fn config(rate: f64, payload_bytes: usize) -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            schedule: Schedule {
                start_epoch_us: protocol::now_us(),
                rate,
                topics: 1,
            },
            payload_bytes,
            history: 1024,
            event_type: None,
            groups: Vec::new(),
            fed: false,
        },
        admin_token: Some(TOKEN.to_string()),
        ..ServerConfig::default()
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// A raw connection to `addr` that has sent `request` and reads nothing yet.
pub(crate) async fn raw(addr: SocketAddr, request: &str) -> TcpStream {
    let mut stream = timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

pub(crate) const WS_UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Reads until the connection ends, within `limit`: the bytes read and
/// how it ended (`Ok(())` for a clean EOF, the error kind otherwise).
pub(crate) async fn read_to_end_or_reset(
    stream: &mut TcpStream,
    limit: Duration,
) -> (usize, Result<(), io::ErrorKind>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    let ending = timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => total += n,
                Err(e) => return Err(e.kind()),
            }
        }
    })
    .await
    .expect("the connection ends in time");
    (total, ending)
}

/// Reads (bounded) until `n` bytes arrived, so a stream is known to be live.
pub(crate) async fn read_some(stream: &mut TcpStream, n: usize) {
    let mut buf = vec![0u8; n];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .unwrap();
}

// ---------------------------------------------------------------------------
// Admin routes
