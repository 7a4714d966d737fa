//! What the transports tests share: servers, clients, bounds.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use protocol::sse::{SseEvent, SseParser};
use protocol::{Event, PollResponse, Schedule};
use servers::{HubConfig, ServerConfig, StatsSnapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) const PAYLOAD: usize = 16;
/// Bound on any single wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(3);

/// A server with the raw-TCP port open, and the schedule it runs.
pub(crate) struct Server {
    pub(crate) inner: crate::common::InProcess,
    pub(crate) schedule: Schedule,
}

impl std::ops::Deref for Server {
    type Target = crate::common::InProcess;
    fn deref(&self) -> &crate::common::InProcess {
        &self.inner
    }
}

impl Server {
    pub(crate) async fn start(config: ServerConfig) -> Self {
        let schedule = config.hub.schedule;
        Self {
            inner: crate::common::InProcess::start(config, true).await,
            schedule,
        }
    }

    /// 50 events/s on each of two topics, starting now.
    pub(crate) async fn fast() -> Self {
        Self::start(config(50.0)).await
    }

    pub(crate) fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{path_and_query}", self.addr)
    }

    pub(crate) async fn poll(&self, query: &str) -> PollResponse {
        let resp = http()
            .get(self.url(&format!("/poll?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    pub(crate) async fn stats(&self) -> StatsSnapshot {
        let resp = http().get(self.url("/stats")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    /// Waits until topic `topic` has at least `id` events, returns the latest id.
    pub(crate) async fn wait_for_id(&self, topic: &str, id: u64) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let latest = self.poll(&format!("topic={topic}")).await.next;
            if latest >= id {
                return latest;
            }
            assert!(Instant::now() < deadline, "no event {id} on {topic}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Checks that `events` are exactly `first, first+1, …` of `topic`, as scheduled.
    pub(crate) fn check_run(&self, topic: u32, first: u64, events: &[Event]) {
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.id, first + i as u64, "ids not contiguous: {events:?}");
            assert_eq!(e.topic, format!("t{topic}"));
            assert_eq!(e.emitted_at_us, self.schedule.scheduled_at(topic, e.id));
            assert_eq!(e.data, "x".repeat(PAYLOAD));
        }
    }

    pub(crate) async fn stop(self) {
        self.inner.stop(WAIT).await;
    }
}

pub(crate) fn config(rate: f64) -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            schedule: Schedule {
                start_epoch_us: protocol::now_us(),
                rate,
                topics: 2,
            },
            payload_bytes: PAYLOAD,
            history: 1024,
            event_type: None,
            groups: Vec::new(),
            fed: false,
        },
        ..ServerConfig::default()
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// An SSE response body read through the protocol's WHATWG parser.
pub(crate) struct SseClient {
    pub(crate) resp: reqwest::Response,
    pub(crate) parser: SseParser,
    pub(crate) ready: VecDeque<SseEvent>,
    pub(crate) raw: Vec<u8>,
}

impl SseClient {
    pub(crate) async fn open(url: String, last_event_id: Option<&str>) -> Self {
        // No overall timeout: the stream is long-lived; each read is bounded below.
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = timeout(WAIT, req.send()).await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        Self {
            resp,
            parser: SseParser::new(),
            ready: VecDeque::new(),
            raw: Vec::new(),
        }
    }

    /// The next chunk, `None` at the end of the body.
    pub(crate) async fn chunk(&mut self) -> Option<bytes::Bytes> {
        let chunk = timeout(WAIT, self.resp.chunk())
            .await
            .expect("SSE chunk within 3 s")
            .unwrap();
        if let Some(c) = &chunk {
            self.raw.extend_from_slice(c);
            self.ready.extend(self.parser.feed(c));
        }
        chunk
    }

    /// The next event, `None` at the end of the body.
    pub(crate) async fn event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            self.chunk().await?;
        }
    }

    pub(crate) async fn events(&mut self, n: usize) -> Vec<Event> {
        let mut out = Vec::new();
        while out.len() < n {
            let e = self.event().await.expect("stream ended early");
            assert_eq!(e.event_type, "message");
            let ev = Event::from_json(&e.data).unwrap();
            assert_eq!(e.last_event_id, ev.id.to_string());
            out.push(ev);
        }
        out
    }
}

/// A raw-TCP subscription: the request line sent, frames decoded with the
/// protocol's decoder.
pub(crate) struct TcpClient {
    pub(crate) stream: TcpStream,
    pub(crate) buf: Vec<u8>,
    pub(crate) keepalives: usize,
}

impl TcpClient {
    pub(crate) async fn open(addr: SocketAddr, line: &str) -> Self {
        let mut stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        stream.write_all(line.as_bytes()).await.unwrap();
        Self {
            stream,
            buf: Vec::new(),
            keepalives: 0,
        }
    }

    /// The next event (keep-alives counted and skipped), `None` at EOF.
    pub(crate) async fn event(&mut self) -> Option<Event> {
        loop {
            if let Some((body, used)) = protocol::encode::tcp_decode(&self.buf) {
                let event = (!body.is_empty())
                    .then(|| Event::from_json(std::str::from_utf8(body).unwrap()).unwrap());
                self.buf.drain(..used);
                match event {
                    Some(e) => return Some(e),
                    None => self.keepalives += 1,
                }
                continue;
            }
            let n = timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("TCP bytes within 3 s")
                .unwrap();
            if n == 0 {
                assert!(self.buf.is_empty(), "stream cut mid-frame: {:?}", self.buf);
                return None;
            }
        }
    }

    pub(crate) async fn events(&mut self, n: usize) -> Vec<Event> {
        let mut out = Vec::new();
        while out.len() < n {
            out.push(self.event().await.expect("stream ended early"));
        }
        out
    }
}

/// Sends `request` on a fresh connection to `addr`, then reads until the
/// server closes; returns everything received.
pub(crate) async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("server closes within 3 s")
        .unwrap();
    out
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn ws_connect(url: String) -> Ws {
    timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap()
        .0
}

/// Next data message as an event (skipping pings), `Err(frame)` on Close.
pub(crate) async fn ws_event(ws: &mut Ws) -> Result<Event, Option<CloseCode>> {
    loop {
        let msg = timeout(WAIT, ws.next())
            .await
            .expect("WS message within 3 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(Event::from_json(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            other => panic!("unexpected WS read {other:?}"),
        }
    }
}

pub(crate) async fn ws_events(ws: &mut Ws, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(ws_event(ws).await.expect("closed early"));
    }
    out
}

/// Everything a raw client sent to and received from the server, over
/// connections it followed to their end (nobody else talks to the server).
#[derive(Default)]
pub(crate) struct Wire {
    pub(crate) sent: u64,
    pub(crate) received: u64,
}

impl Wire {
    pub(crate) async fn exchange(&mut self, addr: SocketAddr, request: &[u8]) -> Vec<u8> {
        let answer = exchange(addr, request).await;
        self.sent += request.len() as u64;
        self.received += answer.len() as u64;
        answer
    }

    /// `GET /stats` on its own connection, checking that the server counted
    /// exactly the bytes this client saw. The server takes the snapshot
    /// after reading this request and before writing the answer, so the
    /// request is in it and the answer is not.
    pub(crate) async fn stats(&mut self, addr: SocketAddr) -> StatsSnapshot {
        let request = b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let received_before = self.received;
        let answer = self.exchange(addr, request).await;
        let snapshot: StatsSnapshot = serde_json::from_slice(body(&answer)).unwrap();
        assert_eq!(snapshot.bytes_in, self.sent, "bytes in");
        assert_eq!(snapshot.bytes_out, received_before, "bytes out");
        snapshot
    }
}

/// The body of a complete HTTP/1.1 answer without chunking.
pub(crate) fn body(answer: &[u8]) -> &[u8] {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &answer[end + 4..]
}

/// Starts the real binary with `args`, returns it and its ready line.
pub(crate) async fn spawn_binary_ready(
    prefix: &[&str],
    args: &[&str],
) -> (tokio::process::Child, serde_json::Value) {
    let mut all = vec!["--log", "error"];
    all.extend_from_slice(args);
    crate::common::spawn_ready(prefix, &all, false).await
}

pub(crate) fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
