//! Faults on 127.0.0.1: the `/admin` routes (off by default, bearer token),
//! abrupt drops of every streaming transport, slow readers (a client that
//! stops reading, one that falls further behind than the history), and a
//! server killed and restarted with the same start epoch.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use protocol::sse::SseParser;
use protocol::{Event, PollResponse, Schedule};
use servers::conns::{ConnectionCounts, DropReport};
use servers::{HubConfig, ServerConfig, StatsSnapshot};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

mod common;

/// Bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(5);
const TOKEN: &str = "s3cret-token";

struct Server(common::InProcess);

impl std::ops::Deref for Server {
    type Target = common::InProcess;
    fn deref(&self) -> &common::InProcess {
        &self.0
    }
}

impl Server {
    async fn start(config: ServerConfig) -> Self {
        Self(common::InProcess::start(config, true).await)
    }

    async fn stats(&self) -> StatsSnapshot {
        let resp = http().get(self.url("/stats")).send().await.unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    /// `method path` with `auth` as the Authorization header: (status, body).
    async fn admin(&self, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
        let mut req = http().request(method.parse().unwrap(), self.url(path));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    async fn drop_fraction(&self, query: &str) -> DropReport {
        let (status, body) = self
            .admin("POST", &format!("/admin/drop?{query}"), Some(&bearer()))
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn connections(&self) -> ConnectionCounts {
        let (status, body) = self
            .admin("GET", "/admin/connections", Some(&bearer()))
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until `done` holds for the stats; panics after `limit`.
    async fn wait_stats(&self, limit: Duration, what: &str, done: impl Fn(&StatsSnapshot) -> bool) {
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

    async fn stop(self) {
        self.0.stop(WAIT).await;
    }
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn config(rate: f64, payload_bytes: usize) -> ServerConfig {
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

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// A raw connection to `addr` that has sent `request` and reads nothing yet.
async fn raw(addr: SocketAddr, request: &str) -> TcpStream {
    let mut stream = timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

const WS_UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Reads until the connection ends, within `limit`: the bytes read and
/// how it ended (`Ok(())` for a clean EOF, the error kind otherwise).
async fn read_to_end_or_reset(
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
async fn read_some(stream: &mut TcpStream, n: usize) {
    let mut buf = vec![0u8; n];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .unwrap();
}

// ---------------------------------------------------------------------------
// Admin routes

#[tokio::test]
async fn admin_routes_are_404_without_a_token_configured() {
    let s = Server::start(ServerConfig {
        admin_token: None,
        ..config(10.0, 16)
    })
    .await;
    for (method, path) in [
        ("POST", "/admin/drop?fraction=1"),
        ("GET", "/admin/drop?fraction=1"),
        ("GET", "/admin/connections"),
        ("GET", "/admin"),
        ("DELETE", "/admin/anything/else"),
    ] {
        for auth in [None, Some(bearer())] {
            let (status, body) = s.admin(method, path, auth.as_deref()).await;
            assert_eq!(
                (status, body.as_str()),
                (404, "not found"),
                "{method} {path}"
            );
        }
    }
    assert!(!s.stats().await.config.admin);
    s.stop().await;
}

#[tokio::test]
async fn admin_routes_need_the_exact_bearer_token() {
    let s = Server::start(config(10.0, 16)).await;
    for auth in [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
    ] {
        for (method, path) in [
            ("POST", "/admin/drop?fraction=1"),
            ("GET", "/admin/connections"),
        ] {
            let (status, body) = s.admin(method, path, auth.as_deref()).await;
            if status == 429 {
                // Too many failures in a second (tests/hostile.rs): wait it out.
                tokio::time::sleep(servers::admin::FAILURE_WINDOW).await;
                let (status, body) = s.admin(method, path, auth.as_deref()).await;
                assert_eq!(status, 401, "{auth:?} {path}: {body}");
                continue;
            }
            assert_eq!(status, 401, "{auth:?} {path}: {body}");
            assert!(
                !body.is_empty() && !body.contains('\n'),
                "one-line reason: {body:?}"
            );
        }
    }
    // With the token (once the failures' window is over): bad input is a
    // one-line 400, wrong methods 405, unknown paths 404.
    tokio::time::sleep(servers::admin::FAILURE_WINDOW).await;
    let auth = Some(bearer());
    for query in [
        "",
        "fraction=2",
        "fraction=x",
        "fraction=0.5&transport=poll",
    ] {
        let (status, body) = s
            .admin("POST", &format!("/admin/drop?{query}"), auth.as_deref())
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body.starts_with("bad query: ") && !body.contains('\n'),
            "{body}"
        );
    }
    assert_eq!(
        s.admin("GET", "/admin/drop?fraction=1", auth.as_deref())
            .await
            .0,
        405
    );
    assert_eq!(
        s.admin("POST", "/admin/connections", auth.as_deref())
            .await
            .0,
        405
    );
    assert_eq!(s.admin("GET", "/admin/nope", auth.as_deref()).await.0, 404);
    // And with nothing open, a drop drops nothing.
    assert_eq!(
        s.drop_fraction("fraction=1").await,
        DropReport {
            dropped: 0,
            open_before: 0
        }
    );
    assert!(s.stats().await.config.admin);
    s.stop().await;
}

#[tokio::test]
async fn a_drop_resets_the_chosen_fraction_of_each_transport_and_spares_the_rest() {
    // t0 at 50 events/s; t1 quiet, so that a long poll on it is held.
    let mut cfg = config(50.0, 16);
    cfg.hub.schedule.topics = 2;
    cfg.hub.groups = vec![
        protocol::schedule::TopicGroup {
            name: "busy".into(),
            topics: 1,
            rate: 50.0,
            event_type: None,
        },
        protocol::schedule::TopicGroup {
            name: "quiet".into(),
            topics: 1,
            rate: 0.0,
            event_type: None,
        },
    ];
    let s = Server::start(cfg).await;
    let mut sse = Vec::new();
    for _ in 0..10 {
        let mut c = raw(s.addr, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n").await;
        read_some(&mut c, 20).await; // headers have begun: the stream is open
        sse.push(c);
    }
    let mut ws = raw(s.addr, WS_UPGRADE).await;
    read_some(&mut ws, 12).await; // "HTTP/1.1 101"
    let mut tcp = raw(s.tcp(), "SUB t0 -\n").await;
    // Held: the quiet topic has no event to answer with.
    let mut longpoll = raw(
        s.addr,
        "GET /longpoll?topic=t1&timeout_ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let mut idle = raw(s.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    read_some(&mut idle, 12).await;
    s.wait_stats(WAIT, "all streams open", |st| {
        (st.open.sse, st.open.ws, st.open.tcp, st.open.longpoll) == (10, 1, 1, 1)
    })
    .await;
    let counts = s.connections().await;
    assert_eq!(
        (counts.sse, counts.ws, counts.tcp, counts.longpoll),
        (10, 1, 1, 1),
        "{counts:?}"
    );
    assert!(
        counts.idle >= 1 && counts.total == counts.idle + 13,
        "{counts:?}"
    );

    // Half of the SSE streams, and nothing else.
    let report = s.drop_fraction("fraction=0.5&transport=sse").await;
    assert_eq!(
        report,
        DropReport {
            dropped: 5,
            open_before: 10
        }
    );
    s.wait_stats(WAIT, "five SSE streams gone", |st| st.open.sse == 5)
        .await;
    let mut reset = 0;
    let mut alive = Vec::new();
    for mut c in sse {
        // A dropped stream ends with a reset; a spared one keeps streaming.
        match timeout(
            Duration::from_millis(500),
            read_to_end_or_reset(&mut c, WAIT),
        )
        .await
        {
            Ok((_, ending)) => {
                assert_eq!(
                    ending,
                    Err(io::ErrorKind::ConnectionReset),
                    "abrupt, not a clean end"
                );
                reset += 1;
            }
            Err(_) => alive.push(c),
        }
    }
    assert_eq!((reset, alive.len()), (5, 5));

    // Each other transport by name; then everything that is left.
    for (transport, stream) in [
        ("ws", &mut ws),
        ("tcp", &mut tcp),
        ("longpoll", &mut longpoll),
    ] {
        let report = s
            .drop_fraction(&format!("fraction=1&transport={transport}"))
            .await;
        assert_eq!(
            report,
            DropReport {
                dropped: 1,
                open_before: 1
            },
            "{transport}"
        );
        let (_, ending) = read_to_end_or_reset(stream, WAIT).await;
        assert_eq!(ending, Err(io::ErrorKind::ConnectionReset), "{transport}");
    }
    let report = s.drop_fraction("fraction=1").await;
    assert_eq!(
        report,
        DropReport {
            dropped: 5,
            open_before: 5
        }
    );
    for mut c in alive {
        assert_eq!(
            read_to_end_or_reset(&mut c, WAIT).await.1,
            Err(io::ErrorKind::ConnectionReset)
        );
    }
    // Idle keep-alive connections are not streams: never dropped.
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_some(&mut idle, 12).await;
    let stats = s.stats().await;
    assert_eq!(stats.admin_dropped, 13);
    assert_eq!(
        (
            stats.open.sse,
            stats.open.ws,
            stats.open.tcp,
            stats.open.longpoll
        ),
        (0, 0, 0, 0)
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Slow readers

#[tokio::test]
async fn clients_that_stop_reading_are_reset_after_the_write_timeout() {
    // 4 MB/s of 4 KiB events: each stalled connection fills the kernel's
    // buffers (a few MB) within a second or two, then its writes block.
    let s = Server::start(ServerConfig {
        write_timeout: Duration::from_millis(500),
        max_batch: 1000,
        ..config(1000.0, 4096)
    })
    .await;
    let mut stalled = vec![
        (
            "sse",
            raw(s.addr, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n").await,
        ),
        ("ws", raw(s.addr, WS_UPGRADE).await),
        ("tcp", raw(s.tcp(), "SUB t0 -\n").await),
    ];
    // Long polling: 1000-event answers (4 MB each) that are never read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let request = "GET /longpoll?after=0 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(8);
    stalled.push(("longpoll", raw(s.addr, &request).await));
    s.wait_stats(
        Duration::from_secs(15),
        "every stalled client closed as slow",
        |st| st.closed_slow == 4 && (st.open.sse, st.open.ws, st.open.tcp) == (0, 0, 0),
    )
    .await;
    let stats = s.stats().await;
    assert_eq!(stats.closed_slow_backlog, 0, "these were write timeouts");
    assert_eq!(stats.config.write_timeout_ms, 500);
    // What went out is what the socket buffers took, not an ever-growing amount.
    assert!(
        stats.bytes_out < 4 * (32 << 20),
        "bytes out {}",
        stats.bytes_out
    );
    for (transport, mut stream) in stalled {
        let (_, ending) = read_to_end_or_reset(&mut stream, WAIT).await;
        assert_eq!(ending, Err(io::ErrorKind::ConnectionReset), "{transport}");
    }
    s.stop().await;
}

/// The ids of the events in an SSE body, read with reqwest until it fails.
async fn sse_ids_until_failure(resp: reqwest::Response) -> (Vec<u64>, bool) {
    let mut parser = SseParser::new();
    let mut ids = Vec::new();
    let mut body = resp.bytes_stream();
    loop {
        match timeout(WAIT, body.next()).await.expect("SSE bytes in time") {
            Some(Ok(chunk)) => {
                parser.feed_with(&chunk, |e| ids.push(Event::from_json(&e.data).unwrap().id));
            }
            Some(Err(_)) => return (ids, true),
            None => return (ids, false),
        }
    }
}

fn assert_contiguous(transport: &str, ids: &[u64]) {
    assert!(ids.len() > 100, "{transport}: only {} events", ids.len());
    for w in ids.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{transport}: the server skipped ahead");
    }
}

#[tokio::test]
async fn clients_that_fall_behind_the_history_are_reset_not_skipped_ahead() {
    // A history of 64 events is 64 ms at 1000/s: a client that stops
    // reading for 2 s is far behind it once the socket buffers are full.
    let mut cfg = config(1000.0, 4096);
    cfg.hub.history = 64;
    cfg.write_timeout = Duration::from_secs(60);
    let s = Server::start(cfg).await;
    let sse = reqwest::Client::new()
        .get(s.url("/sse"))
        .send()
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.addr))
        .await
        .unwrap();
    let mut tcp = raw(s.tcp(), "SUB t0 -\n").await;
    s.wait_stats(WAIT, "streams open", |st| {
        (st.open.sse, st.open.ws, st.open.tcp) == (1, 1, 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Now read as fast as possible: everything received is contiguous,
    // then the connection is reset.
    let sse = tokio::spawn(sse_ids_until_failure(sse));
    let ws = tokio::spawn(async move {
        let mut ids = Vec::new();
        loop {
            match timeout(WAIT, ws.next()).await.expect("WS message in time") {
                Some(Ok(Message::Text(t))) => ids.push(Event::from_json(&t).unwrap().id),
                Some(Ok(_)) => {}
                Some(Err(_)) => return (ids, true),
                None => return (ids, false),
            }
        }
    });
    let tcp = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut ids = Vec::new();
        loop {
            let read = timeout(WAIT, tcp.read_buf(&mut buf))
                .await
                .expect("TCP bytes in time");
            let mut used = 0;
            while let Some((body, n)) = protocol::encode::tcp_decode(&buf[used..]) {
                if !body.is_empty() {
                    ids.push(
                        Event::from_json(std::str::from_utf8(body).unwrap())
                            .unwrap()
                            .id,
                    );
                }
                used += n;
            }
            buf.drain(..used);
            match read {
                Ok(0) => return (ids, false),
                Ok(_) => {}
                Err(e) => return (ids, e.kind() == io::ErrorKind::ConnectionReset),
            }
        }
    });
    for (transport, task) in [("sse", sse), ("ws", ws), ("tcp", tcp)] {
        let (ids, failed) = task.await.unwrap();
        assert!(
            failed,
            "{transport}: the connection must fail, not end cleanly"
        );
        assert_contiguous(transport, &ids);
    }
    let stats = s.stats().await;
    assert_eq!(
        (stats.closed_slow, stats.closed_slow_backlog),
        (3, 3),
        "{stats:#?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn resuming_from_before_a_fresh_servers_first_event_is_a_gap_not_slowness() {
    // A schedule running for an hour whose next slot is 0.8 s away: the log
    // is empty while the clients connect with cursors far in the past, as
    // after a server restart.
    let mut cfg = config(1.0, 16);
    cfg.hub.schedule.start_epoch_us = protocol::now_us() - 3_600_000_000 + 800_000;
    let s = Server::start(cfg).await;
    let sse = reqwest::Client::new()
        .get(s.url("/sse"))
        .header("Last-Event-ID", "5")
        .send()
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?after=5", s.addr))
        .await
        .unwrap();
    let mut tcp = raw(s.tcp(), "SUB t0 5\n").await;
    let mut sse = sse.bytes_stream();
    let mut parser = SseParser::new();
    let mut sse_ids = Vec::new();
    while sse_ids.len() < 2 {
        let chunk = timeout(WAIT, sse.next())
            .await
            .expect("SSE events")
            .unwrap()
            .unwrap();
        parser.feed_with(&chunk, |e| {
            sse_ids.push(Event::from_json(&e.data).unwrap().id)
        });
    }
    let mut ws_ids = Vec::new();
    while ws_ids.len() < 2 {
        if let Message::Text(t) = timeout(WAIT, ws.next())
            .await
            .expect("WS events")
            .unwrap()
            .unwrap()
        {
            ws_ids.push(Event::from_json(&t).unwrap().id);
        }
    }
    let mut buf = Vec::new();
    let tcp_id = loop {
        if let Some((body, _)) = protocol::encode::tcp_decode(&buf) {
            break Event::from_json(std::str::from_utf8(body).unwrap())
                .unwrap()
                .id;
        }
        timeout(WAIT, tcp.read_buf(&mut buf))
            .await
            .expect("TCP events")
            .unwrap();
    };
    assert!(tcp_id > 3000, "{tcp_id}");
    for ids in [&sse_ids, &ws_ids] {
        assert!(ids[0] > 3000 && ids[1] == ids[0] + 1, "{ids:?}");
    }
    let stats = s.stats().await;
    assert_eq!(stats.closed_slow, 0);
    assert_eq!((stats.open.sse, stats.open.ws, stats.open.tcp), (1, 1, 1));
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Kill and restart

/// Starts `push-server` with `args`; returns it and its base URL.
async fn spawn_server(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_push-server"))
        .args(["--listen", "127.0.0.1:0", "--log", "error"])
        .args(args)
        .env("PUSH_SERVER_ADMIN_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = timeout(WAIT, tokio::io::BufReader::new(stdout).lines().next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .expect("a ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    (
        child,
        format!("http://{}", ready["listening"].as_str().unwrap()),
    )
}

/// Every event of `base` after `after`, polling until at least `n` arrived.
async fn poll_events(base: &str, after: u64, n: usize) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut after = after;
    let deadline = Instant::now() + WAIT;
    while events.len() < n {
        assert!(Instant::now() < deadline, "only {} events", events.len());
        let resp = http()
            .get(format!("{base}/poll?after={after}"))
            .send()
            .await
            .unwrap();
        let answer: PollResponse = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        after = answer.next;
        events.extend(answer.events);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    events
}

#[tokio::test]
async fn a_server_killed_and_restarted_with_the_same_epoch_continues_the_same_ids() {
    // An epoch in the past: the servers join a schedule already running.
    let schedule = Schedule {
        start_epoch_us: protocol::now_us() - 3_600_000_000,
        rate: 100.0,
        topics: 1,
    };
    let epoch = schedule.start_epoch_us.to_string();
    let args = [
        "--rate",
        "100",
        "--start-epoch-us",
        epoch.as_str(),
        "--write-timeout",
        "2s",
    ];
    let (mut first, base) = spawn_server(&args).await;
    // The second, started while the first runs, generates the very same events.
    let (second, base2) = spawn_server(&args).await;
    let a = poll_events(&base, 0, 30).await;
    let b = poll_events(&base2, 0, 30).await;
    let common: Vec<(&Event, &Event)> = a
        .iter()
        .filter_map(|x| b.iter().find(|y| y.id == x.id).map(|y| (x, y)))
        .collect();
    assert!(
        common.len() >= 10,
        "the two servers overlap: {} common ids",
        common.len()
    );
    for (x, y) in common {
        assert_eq!(x, y, "same id, same event");
    }
    drop(second);

    // Kill the first abruptly, restart it, resume after its last id.
    first.start_kill().unwrap();
    timeout(WAIT, first.wait()).await.unwrap().unwrap();
    let last = a.last().unwrap().id;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (restarted, base3) = spawn_server(&args).await;
    let c = poll_events(&base3, last, 20).await;
    // The events scheduled while no server ran were never generated (the
    // client sees and counts that gap); from then on, the same schedule.
    assert!(
        c[0].id > last + 10,
        "ids continue past the outage: {} after {last}",
        c[0].id
    );
    for e in a.iter().chain(&b).chain(&c) {
        assert_eq!(
            e.emitted_at_us,
            schedule.scheduled_at(0, e.id),
            "id {}",
            e.id
        );
    }
    for w in c.windows(2) {
        assert_eq!(w[1].id, w[0].id + 1);
    }
    // The flags reached the server: write timeout and admin token (from the environment).
    let stats: StatsSnapshot = serde_json::from_slice(
        &http()
            .get(format!("{base3}/stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats.config.start_epoch_us, schedule.start_epoch_us);
    assert_eq!(stats.config.write_timeout_ms, 2000);
    assert!(stats.config.admin);
    let resp = http()
        .get(format!("{base3}/admin/connections"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(restarted);
}
