//! Long polling: `GET /longpoll?topic=T&after=N&timeout_ms=M`.
//!
//! Like `/poll`, but when nothing is newer than the cursor the request is
//! held until an event arrives, `timeout_ms` passes (default 30 s, capped by
//! [`ServerConfig::max_longpoll_timeout`](crate::ServerConfig)) or the
//! server shuts down; then it is answered, possibly empty.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::conns::ConnHandle;
use crate::conns::Open;
use crate::request::{RawParams, Subscription};
use crate::stats::Route;

/// How long a long poll is held when the client names no `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET /longpoll`.
pub(crate) async fn handler(
    State(state): State<AppState>,
    conn: Option<Extension<Arc<ConnHandle>>>,
    query: RawParams,
) -> Response {
    state.stats().request(Route::LongPoll);
    let sub = match Subscription::parse(&state, query, None) {
        Ok(sub) => sub,
        Err(bad) => return bad.into_response(),
    };
    // While held, the connection counts as a long poll (an admin drop may pick it).
    let _open = state
        .stats()
        .open(Open::LongPoll, conn.as_ref().map(|Extension(c)| c));
    let hub = state.hub();
    let config = state.config();
    let timeout = sub
        .timeout_ms
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
        .min(config.max_longpoll_timeout);
    let deadline = tokio::time::Instant::now() + timeout;

    // Subscribe and mark seen before reading: an event that lands between
    // the read and the wait still wakes us.
    let mut wake = hub.subscribe(sub.topic);
    let live_edge = *wake.borrow_and_update();
    // A cursor ahead of the newest event: [`Hub::resume_cursor`].
    let after = hub.resume_cursor(sub.topic, sub.after, live_edge);
    let mut events = Vec::new();
    loop {
        let next = hub.read(sub.topic, after, config.max_batch, &mut events);
        if !events.is_empty() {
            return crate::short_poll::answer(&events, next);
        }
        tokio::select! {
            biased;
            () = state.shutdown().cancelled() => break,
            () = tokio::time::sleep_until(deadline) => break,
            changed = wake.changed() => if changed.is_err() { break },
        }
    }
    crate::short_poll::answer(&events, after)
}
