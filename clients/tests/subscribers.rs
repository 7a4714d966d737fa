//! The subscribers against real sockets on 127.0.0.1: the real `servers`
//! crate for delivery, and small hand-written routes for the cases a correct
//! server never produces on demand (a stream cut mid-event, a ping that must
//! be answered, a server that never answers, no server at all).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clients::{ClientConfig, Observer, Subscriber};
use futures_util::{StreamExt as _, stream};
use protocol::{Event, TransportKind, encode, now_us};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------
// Test observer

/// Everything an observer was told, shared with the test while the
/// subscriber runs (a lock is fine here; the harness's recorder has none).
#[derive(Debug, Default)]
struct Record {
    /// (id, topic, received − emitted in µs, may be negative if the clock lies)
    events: Vec<(u64, String, i64)>,
    connects: Vec<u64>,
    disconnects: usize,
    requests: usize,
    errors: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Probe(Arc<Mutex<Record>>);

impl Probe {
    fn get<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.0.lock().unwrap())
    }

    /// Waits (bounded) until `done` holds; false on timeout.
    async fn wait_until(&self, limit: Duration, done: impl Fn(&Record) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.get(&done) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.get(&done)
    }

    fn ids(&self) -> Vec<u64> {
        self.get(|r| r.events.iter().map(|e| e.0).collect())
    }
}

impl Observer for Probe {
    fn connected(&mut self, connect_us: u64) {
        self.0.lock().unwrap().connects.push(connect_us);
    }
    fn event(&mut self, event: &Event, received_at_us: u64) {
        let latency = received_at_us as i64 - event.emitted_at_us as i64;
        let mut r = self.0.lock().unwrap();
        r.events.push((event.id, event.topic.clone(), latency));
    }
    fn request(&mut self) {
        self.0.lock().unwrap().requests += 1;
    }
    fn disconnected(&mut self) {
        self.0.lock().unwrap().disconnects += 1;
    }
    fn error(&mut self, message: &str) {
        self.0.lock().unwrap().errors.push(message.to_string());
    }
}

/// A subscriber running in its own task, as the harness runs it.
struct Running {
    probe: Probe,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start(config: ClientConfig) -> Running {
    let probe = Probe::default();
    let stop = CancellationToken::new();
    let mut subscriber = Subscriber::new(config).expect("valid config");
    let (mut observer, token) = (probe.clone(), stop.clone());
    // tokio::spawn also proves the future is Send, as the harness needs.
    let task = tokio::spawn(async move { subscriber.run(&mut observer, token).await });
    Running { probe, stop, task }
}

impl Running {
    /// Cancels and checks the subscriber returns `Ok` within one second.
    async fn stop_within_1s(self) -> Probe {
        self.stop.cancel();
        let started = Instant::now();
        let joined = tokio::time::timeout(Duration::from_secs(1), self.task).await;
        let result = joined.expect("subscriber did not stop within 1 s");
        result
            .expect("task panicked")
            .expect("run returned an error");
        assert!(started.elapsed() < Duration::from_secs(1));
        self.probe
    }
}

/// A config against `addr`, which also serves as the raw-TCP address.
fn config(transport: TransportKind, addr: SocketAddr) -> ClientConfig {
    let mut c = ClientConfig::new(transport, format!("http://{addr}"));
    c.tcp_addr = Some(addr);
    c.poll_interval = Duration::from_millis(100);
    c.longpoll_timeout = Duration::from_secs(30);
    c.connect_timeout = Duration::from_secs(3);
    c.backoff_initial = Duration::from_millis(50);
    c.local_addr = Some("127.0.0.1".parse().unwrap());
    c
}

async fn serve_router(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn event_json(id: u64) -> String {
    encode::event_json(id, "t0", now_us(), "payload")
}

// ---------------------------------------------------------------------------
// SSE resume: a stream cut after event 3 (and in the middle of event 4)

type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// The request's `Last-Event-ID` (if any), also appended to `seen`.
fn record_last_event_id(seen: &Seen, headers: &HeaderMap) -> Option<String> {
    let last = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("<non-ascii>").to_string());
    seen.lock().unwrap().push(last.clone());
    last
}

/// A `text/event-stream` response with `body`.
fn event_stream(
    body: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    (
        [(CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

async fn sse_route(State(seen): State<Seen>, headers: HeaderMap) -> Response {
    let last = record_last_event_id(&seen, &headers);
    let first = match last.as_deref() {
        None => 1,
        Some("3") => 4,
        Some(_) => return (axum::http::StatusCode::BAD_REQUEST, "bad resume\n").into_response(),
    };
    // A short retry so the test is quick, and proof that it is honoured
    // (the default reconnect delay of this test's client would also do).
    let mut body = String::from("retry: 20\n\n");
    for id in first..first + 3 {
        body.push_str(std::str::from_utf8(&encode::sse_frame(id, None, &event_json(id))).unwrap());
        if id == 2 {
            body.push_str(": keep-alive comment\n\ndata: not json\n\n");
        }
    }
    let head = stream::once(async move { Ok::<_, Infallible>(Bytes::from(body)) });
    let stream = if first == 1 {
        // Cut in the middle of event 4: its id line arrived, its end did not.
        let cut = format!("id: 4\ndata: {}", &event_json(4)[..10]);
        head.chain(stream::once(async move { Ok(Bytes::from(cut)) }))
            .boxed()
    } else {
        head.chain(stream::pending()).boxed()
    };
    event_stream(stream)
}

#[tokio::test]
async fn sse_resumes_with_last_event_id_without_loss_or_duplicates() {
    let seen = Seen::default();
    let router = Router::new()
        .route("/sse", get(sse_route))
        .with_state(seen.clone());
    let addr = serve_router(router).await;
    let mut cfg = config(TransportKind::Sse, addr);
    cfg.backoff_initial = Duration::from_secs(5); // only `retry: 20` makes this quick
    let running = start(cfg);
    assert!(
        running
            .probe
            .wait_until(Duration::from_secs(3), |r| r.events.len() >= 6)
            .await,
        "got {:?}",
        running.probe.ids()
    );
    tokio::time::sleep(Duration::from_millis(100)).await; // room for a wrong extra reconnect
    let probe = running.stop_within_1s().await;
    assert_eq!(probe.ids(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(*seen.lock().unwrap(), vec![None, Some("3".to_string())]);
    probe.get(|r| {
        assert_eq!(r.connects.len(), 2);
        assert_eq!(r.disconnects, 1);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].contains("undecodable event"), "{:?}", r.errors);
    });
}

// ---------------------------------------------------------------------------
// A foreign SSE server (django-eventstream's framing) at a path template

/// What django-eventstream sends: a 2 KiB padding comment, a `stream-open`
/// event with empty data, events typed `message` with ids `t0:N`, and
/// `keep-alive` events with empty data; it resumes from `Last-Event-ID: t0:N`.
async fn django_like_route(
    State(seen): State<Seen>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let last = record_last_event_id(&seen, &headers);
    if q.get("channel").map(String::as_str) != Some("t0") {
        return (axum::http::StatusCode::BAD_REQUEST, "no channel\n").into_response();
    }
    let first = match last.as_deref() {
        None => 1,
        Some("t0:2") => 3,
        Some(_) => return (axum::http::StatusCode::BAD_REQUEST, "bad resume\n").into_response(),
    };
    let mut body = format!(":{}\n\nevent: stream-open\ndata:\n\n", " ".repeat(2048));
    for id in first..first + 2 {
        body.push_str(&format!(
            "event: message\nid: t0:{id}\ndata: {}\n\nevent: keep-alive\ndata:\n\n",
            event_json(id)
        ));
    }
    let head = stream::once(async move { Ok::<_, Infallible>(Bytes::from(body)) });
    // The first stream ends after event 2; the resumed one stays open.
    let stream = if first == 1 {
        head.boxed()
    } else {
        head.chain(stream::pending()).boxed()
    };
    event_stream(stream)
}

#[tokio::test]
async fn a_foreign_sse_stream_at_a_path_template_delivers_its_typed_events_and_resumes() {
    let seen = Seen::default();
    let router = Router::new()
        .route("/events/", get(django_like_route))
        .with_state(seen.clone());
    let addr = serve_router(router).await;
    let mut cfg = config(TransportKind::Sse, addr);
    cfg.path = Some("/events/?channel={topic}".to_string());
    let running = start(cfg);
    assert!(
        running
            .probe
            .wait_until(Duration::from_secs(5), |r| r.events.len() >= 4)
            .await,
        "got {:?}",
        running.probe.ids()
    );
    let probe = running.stop_within_1s().await;
    assert_eq!(probe.ids(), vec![1, 2, 3, 4]);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![None, Some("t0:2".to_string())],
        "resumed with the server's own last id"
    );
    // The control events (`stream-open`, `keep-alive`, empty data) are other
    // types: ignored, not reported as undecodable.
    probe.get(|r| assert!(r.errors.is_empty(), "{:?}", r.errors));
}

// ---------------------------------------------------------------------------
// WebSocket: pings are answered, and a reconnect resumes with `after=`

#[derive(Clone, Default)]
struct WsState {
    afters: Arc<Mutex<Vec<Option<String>>>>,
    pongs: Arc<Mutex<usize>>,
}

async fn ws_route(
    State(state): State<WsState>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let after = query.get("after").cloned();
    state.afters.lock().unwrap().push(after.clone());
    upgrade.on_upgrade(move |socket| ws_session(socket, state, after))
}

async fn ws_session(mut socket: WebSocket, state: WsState, after: Option<String>) {
    // Events only flow once the client answered a ping: a client that never
    // flushes its pong receives nothing and fails the test.
    let _ = socket
        .send(WsMessage::Ping(Bytes::from_static(b"hi")))
        .await;
    let pong = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, WsMessage::Pong(ref p) if p.as_ref() == b"hi") {
                return true;
            }
        }
        false
    });
    if !matches!(pong.await, Ok(true)) {
        return;
    }
    *state.pongs.lock().unwrap() += 1;
    let first = after.map_or(1, |a| a.parse::<u64>().unwrap() + 1);
    for id in first..first + 3 {
        let _ = socket.send(WsMessage::text(event_json(id))).await;
    }
    if first == 1 {
        return; // dropped: the connection breaks after event 3
    }
    while let Some(Ok(_)) = socket.recv().await {} // until the client closes
}

#[tokio::test]
async fn ws_answers_pings_and_resumes_with_after() {
    let state = WsState::default();
    let router = Router::new()
        .route("/ws", get(ws_route))
        .with_state(state.clone());
    let addr = serve_router(router).await;
    let running = start(config(TransportKind::Ws, addr));
    assert!(
        running
            .probe
            .wait_until(Duration::from_secs(3), |r| r.events.len() >= 6)
            .await,
        "got {:?}",
        running.probe.ids()
    );
    let probe = running.stop_within_1s().await;
    assert_eq!(probe.ids(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        *state.afters.lock().unwrap(),
        vec![None, Some("3".to_string())]
    );
    assert_eq!(*state.pongs.lock().unwrap(), 2);
    probe.get(|r| {
        assert_eq!(r.connects.len(), 2);
        assert_eq!(r.disconnects, 1);
    });
}

// ---------------------------------------------------------------------------
// Raw TCP: keep-alives skipped, a bad frame reported, a stream cut mid-frame
// resumed with the last complete id

/// Serves two connections: the first gets frames 1..=3 (with a keep-alive
/// and a non-JSON frame among them) and half of frame 4, then is cut; the
/// second must ask for `after 3` and gets 4..=6, and is held open. Records
/// the request lines.
async fn tcp_script_server() -> (SocketAddr, Seen, JoinHandle<()>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Seen::default();
    let seen = lines.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        for first in [1u64, 4] {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = BufReader::new(socket);
            let mut line = String::new();
            socket.read_line(&mut line).await.unwrap();
            seen.lock().unwrap().push(Some(line));
            let mut out = Vec::new();
            for id in first..first + 3 {
                out.extend_from_slice(&encode::tcp_frame(&event_json(id)));
                if id == 2 {
                    out.extend_from_slice(&[0, 0, 0, 0]); // keep-alive
                    out.extend_from_slice(&encode::tcp_frame("not json"));
                }
            }
            if first == 1 {
                let cut = encode::tcp_frame(&event_json(4));
                out.extend_from_slice(&cut[..cut.len() / 2]);
            }
            // Split in odd places: frames must survive any read boundary.
            for piece in out.chunks(7) {
                socket.get_mut().write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if first == 4 {
                held.push(socket);
            } // else dropped: the connection breaks mid-frame
        }
        std::future::pending::<()>().await; // holds the last connection open
    });
    (addr, lines, task)
}

#[tokio::test]
async fn tcp_skips_keepalives_reports_bad_frames_and_resumes_after_a_cut() {
    let (addr, lines, server) = tcp_script_server().await;
    let running = start(config(TransportKind::Tcp, addr));
    assert!(
        running
            .probe
            .wait_until(Duration::from_secs(3), |r| r.events.len() >= 6)
            .await,
        "got {:?}",
        running.probe.ids()
    );
    let probe = running.stop_within_1s().await;
    assert_eq!(probe.ids(), vec![1, 2, 3, 4, 5, 6]);
    server.abort();
    assert_eq!(
        *lines.lock().unwrap(),
        [
            Some("SUB t0 -\n".to_string()),
            Some("SUB t0 3\n".to_string())
        ]
    );
    probe.get(|r| {
        assert_eq!(r.connects.len(), 2);
        assert_eq!(r.disconnects, 1);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].contains("undecodable event"), "{:?}", r.errors);
    });
}

// ---------------------------------------------------------------------------
// Stopping and failing

/// A server that accepts TCP connections and never says a word: every
/// request is "held", every handshake hangs.
async fn silent_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn every_transport_stops_within_1s_while_its_request_is_held() {
    let (addr, server) = silent_server().await;
    let running: Vec<_> = TransportKind::ALL
        .into_iter()
        .map(|t| (t, start(config(t, addr))))
        .collect();
    // Let each get stuck waiting for an answer (short polling: mid-request).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (transport, run) in running {
        let probe = run.stop_within_1s().await;
        probe.get(|r| {
            // Raw TCP has no answer to wait for: it is connected once the
            // request line is sent, and then waits for frames.
            let connects = usize::from(transport == TransportKind::Tcp);
            assert_eq!(r.connects.len(), connects, "{transport}: nothing answered");
            assert!(
                r.events.is_empty() && r.errors.is_empty(),
                "{transport}: {r:?}"
            );
        });
    }
    server.abort();
}

#[tokio::test]
async fn a_missing_server_is_reported_and_retried_until_stopped() {
    // A port that was just free: connections are refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let running: Vec<_> = TransportKind::ALL
        .into_iter()
        .map(|t| (t, start(config(t, addr))))
        .collect();
    for (transport, run) in running {
        // Backoff from 50 ms: several attempts within a second.
        let retried = run
            .probe
            .wait_until(Duration::from_secs(2), |r| r.errors.len() >= 3)
            .await;
        let probe = run.stop_within_1s().await;
        probe.get(|r| {
            assert!(retried, "{transport}: errors {:?}", r.errors);
            assert!(r.connects.is_empty() && r.disconnects == 0, "{transport}");
            assert!(
                r.errors.iter().all(|e| e.contains("connect")),
                "{transport}: {:?}",
                r.errors
            );
        });
    }
}

#[tokio::test]
async fn bad_configs_are_errors_not_panics() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut zero_interval = config(TransportKind::ShortPoll, addr);
    zero_interval.poll_interval = Duration::ZERO;
    assert!(Subscriber::new(zero_interval).is_err());
    let mut zero_hold = config(TransportKind::LongPoll, addr);
    zero_hold.longpoll_timeout = Duration::ZERO;
    assert!(Subscriber::new(zero_hold).is_err());
    for t in TransportKind::COMPARED {
        assert!(Subscriber::new(ClientConfig::new(t, "not a url")).is_err());
    }
    for t in TransportKind::ALL {
        assert_eq!(Subscriber::new(config(t, addr)).unwrap().transport(), t);
    }
    // Raw TCP needs the TCP port (the base URL is not used), and a topic
    // that fits on its request line.
    let mut no_port = config(TransportKind::Tcp, addr);
    no_port.tcp_addr = None;
    let err = Subscriber::new(no_port).unwrap_err().to_string();
    assert!(err.contains("tcp_addr"), "{err}");
    for topic in ["", "t 0", "t\n0", &"t".repeat(240)] {
        let mut bad_topic = config(TransportKind::Tcp, addr);
        bad_topic.topic = topic.to_string();
        assert!(Subscriber::new(bad_topic).is_err(), "{topic:?}");
    }
    // The backoff's jitter is a fraction.
    for jitter in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        let mut bad_jitter = config(TransportKind::Sse, addr);
        bad_jitter.backoff_jitter = jitter;
        let err = Subscriber::new(bad_jitter).unwrap_err().to_string();
        assert!(err.contains("backoff_jitter"), "{jitter}: {err}");
    }
}

// ---------------------------------------------------------------------------
// Against the real server

/// The real server's two ports.
#[derive(Debug, Clone, Copy)]
struct Ports {
    http: SocketAddr,
    tcp: SocketAddr,
}

/// A config for `transport` against the real server's ports.
fn real_config(transport: TransportKind, ports: Ports) -> ClientConfig {
    let mut c = config(transport, ports.http);
    c.tcp_addr = Some(ports.tcp);
    c
}

/// Starts the real server (with its raw-TCP port) on free ports; it runs
/// until the token fires.
async fn real_server(
    rate: f64,
    configure: impl FnOnce(&mut servers::ServerConfig),
) -> (Ports, CancellationToken) {
    let mut config = servers::ServerConfig::default();
    config.hub.schedule = protocol::Schedule {
        start_epoch_us: now_us(),
        rate,
        topics: 1,
    };
    configure(&mut config);
    let listeners = servers::Listeners {
        http: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tcp: Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
    };
    let ports = Ports {
        http: listeners.http.local_addr().unwrap(),
        tcp: listeners.tcp.as_ref().unwrap().local_addr().unwrap(),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(servers::serve(listeners, config, shutdown.clone()));
    (ports, shutdown)
}

/// Ids strictly contiguous (no loss, duplicate or reordering), topic `t0`,
/// and every latency within `0..max_latency`.
fn assert_clean_delivery(transport: TransportKind, record: &Record, max_latency: Duration) {
    assert!(record.errors.is_empty(), "{transport}: {:?}", record.errors);
    for pair in record.events.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "{transport}: ids not contiguous");
    }
    let max_us = max_latency.as_micros() as i64;
    for (id, topic, latency_us) in &record.events {
        assert_eq!(topic, "t0", "{transport}");
        assert!(
            (0..max_us).contains(latency_us),
            "{transport}: event {id} latency {latency_us} µs not within 0..{max_us}"
        );
    }
}

/// One subscriber of `transport` against a 50 events/s server: at least 20
/// events, in order, each within `max_latency` of its scheduled emission.
async fn delivers_cleanly(transport: TransportKind, max_latency: Duration) {
    let (ports, server) = real_server(50.0, |_| {}).await;
    let running = start(real_config(transport, ports));
    let enough = running
        .probe
        .wait_until(Duration::from_secs(3), |r| r.events.len() >= 20)
        .await;
    let probe = running.stop_within_1s().await;
    server.cancel();
    probe.get(|r| {
        assert!(
            enough,
            "{transport}: only {} events, errors {:?}",
            r.events.len(),
            r.errors
        );
        assert_clean_delivery(transport, r, max_latency);
        assert_eq!(r.connects.len(), 1, "{transport}: one connection");
        assert_eq!(r.disconnects, 0, "{transport}");
        if transport.is_polling() {
            assert!(r.requests >= 2, "{transport}: {} requests", r.requests);
        } else {
            assert_eq!(r.requests, 0, "{transport}");
        }
    });
}

#[tokio::test]
async fn short_poll_delivers_within_one_interval() {
    // Poll interval 100 ms: an event waits for the next poll, plus a margin
    // for two busy cores shared with the other tests.
    delivers_cleanly(TransportKind::ShortPoll, Duration::from_millis(100 + 150)).await;
}

#[tokio::test]
async fn long_poll_delivers_promptly() {
    delivers_cleanly(TransportKind::LongPoll, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn sse_delivers_promptly() {
    delivers_cleanly(TransportKind::Sse, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn ws_delivers_promptly() {
    delivers_cleanly(TransportKind::Ws, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn tcp_delivers_promptly() {
    delivers_cleanly(TransportKind::Tcp, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_tcp_subscription_the_server_refuses_reports_its_err_line() {
    let (ports, server) = real_server(50.0, |_| {}).await;
    let mut cfg = real_config(TransportKind::Tcp, ports);
    cfg.topic = "t7".to_string(); // the server has t0 only
    let running = start(cfg);
    let refused = running
        .probe
        .wait_until(Duration::from_secs(2), |r| r.errors.len() >= 2)
        .await;
    let probe = running.stop_within_1s().await;
    server.cancel();
    probe.get(|r| {
        assert!(refused, "{r:?}");
        assert!(r.events.is_empty());
        assert!(
            r.errors[0].starts_with("server refused: ERR unknown topic \"t7\""),
            "{:?}",
            r.errors
        );
    });
}

#[tokio::test]
async fn streams_ended_by_the_server_resume_without_loss_or_duplicates() {
    // The server ends every SSE stream, WebSocket and raw-TCP stream after
    // 250 ms, as a proxy would; SSE resumes with Last-Event-ID, WebSocket
    // with after=, raw TCP with `SUB t0 <last id>`.
    let (ports, server) = real_server(50.0, |c| {
        c.retry_ms = 20;
        c.stream_max_age = Some(Duration::from_millis(250));
    })
    .await;
    let running: Vec<_> = [TransportKind::Sse, TransportKind::Ws, TransportKind::Tcp]
        .into_iter()
        .map(|t| (t, start(real_config(t, ports))))
        .collect();
    for (transport, run) in running {
        let resumed = run
            .probe
            .wait_until(Duration::from_secs(3), |r| r.connects.len() >= 4)
            .await;
        let probe = run.stop_within_1s().await;
        probe.get(|r| {
            assert!(
                resumed,
                "{transport}: {} connections, errors {:?}",
                r.connects.len(),
                r.errors
            );
            assert!(r.disconnects >= 3, "{transport}");
            assert!(
                r.events.len() >= 30,
                "{transport}: {} events",
                r.events.len()
            );
            // Latency includes the reconnection gaps (retry 20 ms / delay 50 ms).
            assert_clean_delivery(transport, r, Duration::from_millis(400));
        });
    }
    server.cancel();
}

#[tokio::test]
async fn every_transport_stops_within_1s_against_an_idle_real_server() {
    // No events at all: the long poll is held, the streams are idle.
    let (ports, server) = real_server(0.0, |_| {}).await;
    let running: Vec<_> = TransportKind::ALL
        .into_iter()
        .map(|t| (t, start(real_config(t, ports))))
        .collect();
    for (transport, run) in running {
        let settled = match transport {
            // Long polling connects with an unheld first request, then holds the second.
            TransportKind::LongPoll => {
                run.probe
                    .wait_until(Duration::from_secs(2), |r| r.requests >= 2)
                    .await
            }
            _ => {
                run.probe
                    .wait_until(Duration::from_secs(2), |r| r.connects.len() == 1)
                    .await
            }
        };
        tokio::time::sleep(Duration::from_millis(50)).await; // the request is now in flight
        let probe = run.stop_within_1s().await;
        probe.get(|r| {
            assert!(settled, "{transport}: {r:?}");
            assert!(
                r.errors.is_empty() && r.events.is_empty(),
                "{transport}: {r:?}"
            );
            if transport == TransportKind::LongPoll {
                assert_eq!(
                    (r.requests, r.connects.len()),
                    (2, 1),
                    "{transport}: connected at once, second request still held"
                );
            }
        });
    }
    server.cancel();
}
