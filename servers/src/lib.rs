//! pushbench's matched push servers: one hub, four transports, one Router.
//!
//! Layout (read in this order):
//!
//! - [`hub`]: the generator (open loop over the schedule), the per-topic
//!   event logs (each event encoded once for every transport) and the
//!   per-topic wakeups. Every transport is a cursor over this log.
//! - [`net`]: the one socket setup for all transports: a listener that sets
//!   `TCP_NODELAY` and counts bytes in and out on every connection.
//! - One module per transport, alike in shape: parse the request
//!   (`request.rs`), resolve the cursor, then read from the hub and write
//!   everything owed in one write per wake-up:
//!   [`poll`] (`GET /poll`), [`longpoll`] (`GET /longpoll`),
//!   [`sse`] (`GET /sse`), [`ws`] (`GET /ws`).
//! - [`stats`]: counters, `GET /stats`, `GET /healthz`.
//!
//! [`serve`] runs the generator and the HTTP server until a
//! [`CancellationToken`] fires; [`app`] builds the Router alone (Listener in,
//! Router out) for callers that drive axum themselves.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{Any, CorsLayer};

pub mod hub;
pub mod longpoll;
pub mod net;
pub mod poll;
mod request;
pub mod sse;
pub mod stats;
pub mod ws;

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
        }
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
    shutdown: CancellationToken,
    /// Upgraded WebSockets run outside axum's connection tracking; this lets
    /// [`serve`] wait for their close handshakes at shutdown.
    tracker: TaskTracker,
    /// Pre-encoded SSE chunks shared by every stream.
    sse_retry: Bytes,
    sse_keepalive: Bytes,
}

impl AppState {
    /// A fresh hub and counters for `config`; handlers end their streams
    /// when `shutdown` fires. The generator is not started: see
    /// [`Hub::spawn_generator`] (which [`serve`] runs).
    pub fn new(config: ServerConfig, shutdown: CancellationToken) -> Self {
        Self(Arc::new(Shared {
            hub: Arc::new(Hub::new(config.hub.clone())),
            stats: Arc::new(Stats::default()),
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

    /// The hub (generator, logs, wakeups).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.0.hub
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.0.stats
    }

    /// Fires when the server shuts down.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.0.tracker
    }
}

/// The Router of every route of the contract, over `state`.
///
/// Every answer carries `Access-Control-Allow-Origin: *` (and preflights are
/// answered) so a test page served from another port can use `EventSource`,
/// `fetch` and `WebSocket` against it.
pub fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(Any);
    Router::new()
        .route("/poll", get(poll::handler))
        .route("/longpoll", get(longpoll::handler))
        .route("/sse", get(sse::handler))
        .route("/ws", get(ws::handler))
        .route("/healthz", get(stats::healthz))
        .route("/stats", get(stats::stats))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(cors)
        .with_state(state)
}

/// Runs the generator and the HTTP server on `listener` until `shutdown`
/// fires; then lets open streams end (SSE bodies finish, long polls answer,
/// WebSockets get Close 1001) and returns, giving up waiting after
/// [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState::new(config, shutdown.clone());
    // A child token, so that stopping the generator on a server error does
    // not cancel the caller's token.
    let generator_stop = shutdown.child_token();
    let generator = state
        .hub()
        .clone()
        .spawn_generator(generator_stop.clone())?;
    let listener = net::CountingListener::new(listener, state.stats().bytes.clone());
    let tracker = state.tracker().clone();
    let server = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => {
            // The server stopped by itself (it only does on an I/O error).
            generator_stop.cancel();
            result?;
            return Ok(());
        }
        () = shutdown.cancelled() => {}
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    if tokio::time::timeout_at(deadline, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after {SHUTDOWN_GRACE:?}; not waiting");
    }
    tracker.close();
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("WebSockets still open after {SHUTDOWN_GRACE:?}; not waiting");
    }
    // The generator watches the same token and naps at most 20 ms.
    if !matches!(
        tokio::task::spawn_blocking(move || generator.join()).await,
        Ok(Ok(()))
    ) {
        tracing::warn!("generator thread panicked");
    }
    Ok(())
}
