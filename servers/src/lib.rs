//! pushbench's matched push servers: one hub, four transports and the
//! raw-TCP floor, one socket setup.
//!
//! Layout (read in this order):
//!
//! - [`hub`]: the generator (open loop over the schedule), the per-topic
//!   event logs (each event encoded once for every transport) and the
//!   per-topic wakeups. Every transport is a cursor over this log.
//! - [`net`]: the one socket setup for all transports: a listener that sets
//!   `TCP_NODELAY` and counts bytes in and out on every connection, and the
//!   accept loop of both ports.
//! - `feed.rs`: the cursor every streaming transport runs on (what is owed,
//!   when to send a keep-alive, when the stream ends).
//! - One module per transport, alike in shape: parse the request
//!   (`request.rs`), resolve the cursor, then read from the hub and write
//!   everything owed in one write per wake-up:
//!   [`short_poll`] (`GET /poll`), [`long_poll`] (`GET /longpoll`),
//!   [`sse`] (`GET /sse`), [`ws`] (`GET /ws`), and [`tcp`] (the floor:
//!   length-prefixed frames on a second port).
//! - [`publish`] (`POST /publish`): the upstream path of SSE and polling
//!   clients; WebSocket clients send the same JSON as a text message. Both
//!   append to the hub like the generator does.
//! - [`limits`]: the open-file limit, the near-limit warning and the
//!   accept-error log line.
//! - [`stats`]: counters, `GET /stats`, `GET /healthz`.
//! - [`conns`]: the registry of open connections and how one is aborted;
//!   [`admin`] (`/admin/…`, off without a token): fault injection over it.
//!
//! Slow readers: every socket bounds how long a write may make no progress
//! ([`ServerConfig::write_timeout`]), and a streaming connection whose
//! client fell further behind than the history holds is closed rather than
//! silently skipped ahead; both reset the connection and count in `/stats`
//! (`closed_slow`).
//!
//! [`serve`] runs the generator and both ports until a [`CancellationToken`]
//! fires, driving hyper directly so that its per-connection buffer is
//! stated ([`Buffers`]); [`app`] builds the Router alone (Listener in,
//! Router out) for callers that drive axum themselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::routing::{any, get, post};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{Any, CorsLayer};

pub mod admin;
pub mod broker;
pub mod conns;
pub mod counters;
pub mod demo;
pub mod direct;
pub mod event;
mod feed;
pub mod hub;
pub mod limits;
pub mod long_poll;
pub mod net;
pub mod publish;
mod request;
pub mod short_poll;
pub mod sse;
pub mod stats;
pub mod tcp;
pub mod ws;

pub use direct::Fanout;
pub use hub::{Hub, HubConfig};
pub use stats::{Stats, StatsSnapshot};

/// How the server streams, on top of what the hub generates.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// What the generator produces.
    pub hub: HubConfig,
    /// SSE `retry:` value sent once at stream start, ms (default 1000).
    pub retry_ms: u64,
    /// Silence after which an SSE stream gets a comment line and a WebSocket
    /// a ping, so proxies and clients see the connection alive (default 15 s).
    pub keepalive: Duration,
    /// Upper bound of a long poll's `timeout_ms` (default 60 s).
    pub max_longpoll_timeout: Duration,
    /// Most events in one poll or long-poll answer (default 1000).
    pub max_batch: usize,
    /// End each SSE stream (clean end of body) and each WebSocket (Close
    /// 1001) after this age, as real proxies do, so clients must resume
    /// (default: never).
    pub stream_max_age: Option<Duration>,
    /// Per-connection buffers of every transport, stated rather than left
    /// to each library's default.
    pub buffers: Buffers,
    /// Where [`Listeners::bind`] opens the raw-TCP floor's port (`None`, the
    /// default: no raw-TCP port).
    pub tcp_listen: Option<SocketAddr>,
    /// A connection whose write makes no progress for this long (its
    /// client stopped reading) is reset and counted as `closed_slow`, on
    /// every transport alike (default 10 s).
    pub write_timeout: Duration,
    /// A request body (`POST /publish`) must arrive whole within this long
    /// of its handler starting, or the request is answered 408 and the
    /// connection closed (default 10 s). With hyper's 30 s bound on the
    /// request head, no request holds a connection longer than both.
    pub body_timeout: Duration,
    /// Turns the `/admin` fault-injection routes on; each request must then
    /// carry `Authorization: Bearer <token>` (default `None`: every `/admin`
    /// route answers 404).
    pub admin_token: Option<String>,
    /// How events reach streaming connections (default
    /// [`Fanout::Direct`]: the appender writes to caught-up sockets itself).
    pub fanout: Fanout,
    /// Serves the live demo page at `/` ([`demo`]; default off: `/` is 404).
    pub demo_page: bool,
    /// Shares one event stream with other push-servers through Redis
    /// ([`broker`]; default `None`: this server generates its own).
    pub broker: Option<broker::BrokerConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            hub: HubConfig::default(),
            retry_ms: 1000,
            keepalive: Duration::from_secs(15),
            max_longpoll_timeout: Duration::from_secs(60),
            max_batch: 1000,
            stream_max_age: None,
            buffers: Buffers::default(),
            tcp_listen: None,
            write_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            admin_token: None,
            fanout: Fanout::Direct,
            demo_page: false,
            broker: None,
        }
    }
}

/// Per-connection buffer sizes, in bytes, set deliberately and comparably
/// for every transport (the libraries' defaults differ by orders of
/// magnitude: tungstenite allocates a 128 KiB read buffer per connection).
/// `/stats` reports them under `config.buffers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffers {
    /// WebSocket read buffer, allocated at upgrade (default 4096).
    pub ws_read: usize,
    /// WebSocket write buffer: buffered bytes that trigger a socket write
    /// before the flush that ends each wake-up (default 4096).
    pub ws_write: usize,
    /// WebSocket write buffer ceiling (default 1 MiB). Only reached when the
    /// socket refuses bytes, since a wake-up's messages are written out
    /// every `ws_write` bytes; must exceed `ws_write` plus one event message.
    pub ws_max_write: usize,
    /// Largest WebSocket message or frame accepted from a client (default 64 KiB).
    pub ws_max_message: usize,
    /// hyper's HTTP/1 read buffer ceiling, which also bounds a request head
    /// (default and minimum 8192, which hyper's read buffer starts at: so by
    /// default it is 8 KiB and never grows).
    pub http_max_buf: usize,
}

impl Default for Buffers {
    fn default() -> Self {
        Self {
            ws_read: 4 * 1024,
            ws_write: 4 * 1024,
            ws_max_write: 1024 * 1024,
            ws_max_message: 64 * 1024,
            http_max_buf: HTTP_MIN_BUF,
        }
    }
}

/// hyper's smallest allowed `max_buf_size` (it panics below).
pub const HTTP_MIN_BUF: usize = 8192;

/// A WebSocket message's size beyond the payload filler: the event JSON's
/// other fields (a generous bound) and the largest server frame header.
const WS_MESSAGE_OVERHEAD: usize = 256;

impl Buffers {
    /// Checks the sizes against what hyper and tungstenite accept (they
    /// panic otherwise) and against events of `payload_bytes`; the error is
    /// one line naming the flag to change.
    pub fn check(&self, payload_bytes: usize) -> Result<(), String> {
        if self.http_max_buf < HTTP_MIN_BUF {
            return Err(format!(
                "--http-max-buf must be at least {HTTP_MIN_BUF} (hyper's minimum), got {}",
                self.http_max_buf
            ));
        }
        if self.ws_read == 0 {
            return Err("--ws-read-buffer must be more than 0".into());
        }
        if self.ws_max_message == 0 {
            return Err("--ws-max-message must be more than 0".into());
        }
        let needed = self
            .ws_write
            .saturating_add(payload_bytes)
            .saturating_add(WS_MESSAGE_OVERHEAD);
        if self.ws_max_write < needed {
            return Err(format!(
                "--ws-max-write-buffer must be at least --ws-write-buffer + one event message \
                 ({needed} bytes with {payload_bytes}-byte payloads), got {}",
                self.ws_max_write
            ));
        }
        Ok(())
    }
}

/// How long [`serve`] waits, after shutdown, for open streams and
/// connections to finish before it returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Everything a handler needs; cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    hub: Arc<Hub>,
    stats: Arc<Stats>,
    /// Every open connection, for the admin routes.
    connections: Arc<conns::Connections>,
    /// Failed admin attempts: logged, and limited.
    admin_failures: admin::Failures,
    /// The open-file limit and what it leaves for connections, read at start.
    budget: Arc<limits::FdBudget>,
    shutdown: CancellationToken,
    /// Every connection's task (HTTP, upgraded WebSocket, raw TCP), so
    /// that [`serve`] can wait for them to finish at shutdown.
    tracker: TaskTracker,
    /// Pre-encoded SSE chunks shared by every stream.
    sse_retry: Bytes,
    sse_keepalive: Bytes,
}

impl AppState {
    /// A fresh hub and counters for `config`; handlers end their streams
    /// when `shutdown` fires. The generator is not started: see
    /// [`Hub::spawn_generator`] (which [`serve`] runs).
    pub fn new(mut config: ServerConfig, shutdown: CancellationToken) -> Self {
        // With a broker, events come from it, not from this hub's generator.
        config.hub.fed = config.broker.is_some();
        Self(Arc::new(Shared {
            hub: Arc::new(Hub::new(config.hub.clone())),
            stats: Arc::new(Stats::default()),
            connections: Arc::default(),
            admin_failures: admin::Failures::default(),
            budget: Arc::new(limits::FdBudget::read()),
            sse_retry: protocol::encode::sse_retry(config.retry_ms),
            sse_keepalive: protocol::encode::sse_comment("keep-alive"),
            config,
            shutdown,
            tracker: TaskTracker::new(),
        }))
    }

    /// The server's configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// The open-file limit read when the state was made (after binding),
    /// and how many connections it leaves room for.
    pub fn fd_budget(&self) -> &Arc<limits::FdBudget> {
        &self.0.budget
    }

    /// The hub (generator, logs, wakeups).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.0.hub
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.0.stats
    }

    /// The registry of open connections (filled by [`serve`]'s listeners).
    pub fn connections(&self) -> &Arc<conns::Connections> {
        &self.0.connections
    }

    /// Fires when the server shuts down.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    pub(crate) fn admin_failures(&self) -> &admin::Failures {
        &self.0.admin_failures
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.0.tracker
    }
}

/// The Router of every route of the contract, over `state`.
///
/// Every answer of the public routes carries `Access-Control-Allow-Origin:
/// *` (and their preflights are answered) so a test page served from
/// another port can use `EventSource`, `fetch` and `WebSocket` against it.
/// The `/admin` routes carry none: no web page may call them.
pub fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(Any);
    let public = Router::new()
        .route("/poll", get(short_poll::handler))
        .route("/longpoll", get(long_poll::handler))
        .route("/sse", get(sse::handler))
        .route("/ws", get(ws::handler))
        .route(
            "/publish",
            // The handler reads (and bounds) the body itself.
            post(publish::handler).layer(DefaultBodyLimit::disable()),
        )
        .route("/healthz", get(stats::healthz))
        .route("/stats", get(stats::stats))
        .layer(cors);
    let public = if state.config().demo_page {
        public.route("/", get(demo::page))
    } else {
        public
    };
    Router::new()
        .merge(public)
        .route("/admin", any(admin::handler))
        .route("/admin/{*rest}", any(admin::handler))
        .fallback(|| async { not_found() })
        .with_state(state)
}

/// The answer to a path the server does not have (and to `/admin` when
/// it is off).
pub(crate) fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found")
}

/// The sockets a server accepts on: the HTTP port (every HTTP transport)
/// and, when enabled, the raw-TCP floor's port.
#[derive(Debug)]
pub struct Listeners {
    /// The HTTP port: polling, long polling, SSE, WebSocket, `/stats`.
    pub http: TcpListener,
    /// The raw-TCP port (`None`: the floor transport is off).
    pub tcp: Option<TcpListener>,
}

impl Listeners {
    /// Binds `http` and, when [`ServerConfig::tcp_listen`] is set, the raw-TCP port.
    pub async fn bind(http: &str, config: &ServerConfig) -> anyhow::Result<Self> {
        let http = TcpListener::bind(http)
            .await
            .with_context(|| format!("cannot listen on {http}"))?;
        let tcp = match config.tcp_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (raw TCP)"))?,
            ),
            None => None,
        };
        Ok(Self { http, tcp })
    }

    /// The one JSON line a ready server prints, e.g.
    /// `{"listening":"127.0.0.1:41234","tcp":"127.0.0.1:41235"}` (`tcp` only
    /// when the raw-TCP port is enabled).
    pub fn ready_line(&self) -> std::io::Result<String> {
        let mut line = serde_json::Map::new();
        line.insert(
            "listening".into(),
            self.http.local_addr()?.to_string().into(),
        );
        if let Some(tcp) = &self.tcp {
            line.insert("tcp".into(), tcp.local_addr()?.to_string().into());
        }
        Ok(serde_json::Value::Object(line).to_string())
    }
}

impl From<TcpListener> for Listeners {
    /// The HTTP port alone (no raw-TCP floor).
    fn from(http: TcpListener) -> Self {
        Self { http, tcp: None }
    }
}

/// Runs the generator and the server on `listeners` until `shutdown` fires;
/// then lets open streams end (SSE bodies finish, long polls answer,
/// WebSockets get Close 1001, raw-TCP streams are closed) and returns,
/// giving up waiting after [`SHUTDOWN_GRACE`].
///
/// `listeners` is a bound [`TcpListener`] (HTTP only) or [`Listeners`].
/// Fails at once on a configuration that cannot work (see [`Buffers::check`]).
pub async fn serve(
    listeners: impl Into<Listeners>,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listeners = listeners.into();
    config
        .buffers
        .check(config.hub.payload_bytes)
        .map_err(anyhow::Error::msg)?;
    let state = AppState::new(config, shutdown.clone());
    let generator = state.hub().clone().spawn_generator(shutdown.clone())?;
    let broker = match &state.config().broker {
        Some(cfg) => broker::spawn(state.hub().clone(), cfg, shutdown.clone())?,
        None => Vec::new(),
    };
    let tracker = state.tracker().clone();
    let counters = state.stats().bytes.clone();
    let listener = |inner| {
        net::CountingListener::new(inner, counters.clone())
            .with_registry(state.connections().clone())
            .with_write_timeout(state.config().write_timeout)
            .with_budget(state.fd_budget().clone())
    };

    let http = net::accept_loop(
        listener(listeners.http),
        shutdown.clone(),
        tracker.clone(),
        {
            let builder = http_builder(&state.config().buffers);
            let router = app(state.clone());
            let shutdown = shutdown.clone();
            move |stream| serve_http(builder.clone(), router.clone(), stream, shutdown.clone())
        },
    );
    let tcp = async {
        if let Some(tcp_listener) = listeners.tcp {
            net::accept_loop(
                listener(tcp_listener),
                shutdown.clone(),
                tracker.clone(),
                |stream| tcp::connection(stream, state.clone()),
            )
            .await;
        }
    };
    // Both loops return when `shutdown` fires.
    tokio::join!(http, tcp);

    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    tracker.close();
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "connections still open after {SHUTDOWN_GRACE:?}; not waiting"
        );
    }
    // The generator watches the same token and naps at most 20 ms.
    if !matches!(
        tokio::task::spawn_blocking(move || generator.join()).await,
        Ok(Ok(()))
    ) {
        tracing::warn!("generator thread panicked");
    }
    // The broker's threads watch the token too (a read blocks at most 200 ms).
    for t in broker {
        if !matches!(
            tokio::task::spawn_blocking(move || t.join()).await,
            Ok(Ok(()))
        ) {
            tracing::warn!("a broker thread panicked");
        }
    }
    Ok(())
}

/// How long an HTTP connection may take to send a request head, and may sit
/// idle between keep-alive requests, before hyper closes it (hyper's default
/// once a timer is set; without one a silent peer would hold its socket
/// forever).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// hyper's HTTP/1 connection settings, with the stated buffer.
fn http_builder(buffers: &Buffers) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .max_buf_size(buffers.http_max_buf)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// Serves one HTTP connection (upgrades included) until it closes; when
/// `shutdown` fires, lets the request in flight finish and closes the
/// connection instead of keeping it alive, waiting at most [`SHUTDOWN_GRACE`].
///
/// Every request carries the connection's [`ConnHandle`](conns::ConnHandle)
/// as an extension, so a streaming handler can mark what the connection
/// streams; when the handle is aborted, the connection is dropped on the
/// spot (reset, no end of body).
async fn serve_http(
    builder: http1::Builder,
    router: Router,
    stream: net::CountingStream,
    shutdown: CancellationToken,
) {
    let conn_handle = stream.conn().clone();
    let service = {
        let router = TowerToHyperService::new(router);
        let conn_handle = conn_handle.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(conn_handle.clone());
            router.call(request)
        })
    };
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // Dropping the connection drops the socket, which resets it.
        () = conn_handle.aborted() => return,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        // Peers that vanish mid-request are routine under load.
        tracing::debug!("HTTP connection ended: {e}");
    }
}
