//! Short polling: `GET /poll?topic=T&after=N`.
//!
//! The answer is immediate: every event after the cursor still in the log
//! (at most `max_batch`), possibly none, as `{"events":[...],"next":N}`.
//! Without `after` the cursor is the live edge, so the answer is empty and
//! `next` tells the client where to continue.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::event::EncodedEvent;
use crate::request::{RawParams, Subscription};
use crate::stats::Route;

/// `GET /poll`.
pub(crate) async fn handler(State(state): State<AppState>, query: RawParams) -> Response {
    state.stats().request(Route::Poll);
    let sub = match Subscription::parse(&state, query, None) {
        Ok(sub) => sub,
        Err(bad) => return bad.into_response(),
    };
    let hub = state.hub();
    // A cursor ahead of the newest event is clamped to the live edge
    // (`next` says so), or kept behind a broker: [`Hub::resume_cursor`].
    let after = hub.resume_cursor(sub.topic, sub.after, hub.latest(sub.topic));
    let mut events = Vec::new();
    let next = hub.read(sub.topic, after, state.config().max_batch, &mut events);
    answer(&events, next)
}

/// A poll or long-poll answer: the events' pre-encoded JSON concatenated
/// into one body (one write), not re-serialised.
pub(crate) fn answer(events: &[Arc<EncodedEvent>], next: u64) -> Response {
    let body = protocol::encode::poll_body(events.iter().map(|e| &e.json[..]), next);
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
