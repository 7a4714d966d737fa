//! Server-Sent Events: `GET /sse?topic=T` (+ `Last-Event-ID` or `?after=N`).
//!
//! The body is a stream of pre-encoded chunks: first `retry: <ms>`, then
//! every event after the cursor still in the log, then live frames as they
//! arrive, and a `: keep-alive` comment after [`keepalive`] of silence.
//! Each wake-up concatenates everything owed into one chunk (one write);
//! a single owed frame is sent as the shared bytes themselves, uncopied.
//! axum's `Sse` type is not used because it re-encodes every event per
//! client.
//!
//! The stream ends (a clean end of body) when the server shuts down or the
//! stream reaches [`stream_max_age`]; a browser's `EventSource` then
//! reconnects after `retry` ms with `Last-Event-ID`, and resumes losslessly.
//!
//! [`keepalive`]: crate::ServerConfig::keepalive
//! [`stream_max_age`]: crate::ServerConfig::stream_max_age

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::AppState;
use crate::hub::EncodedEvent;
use crate::request::{RawParams, Subscription};
use crate::stats::{Open, OpenGuard, Route};

/// `GET /sse`.
pub(crate) async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawParams,
) -> Response {
    state.stats().request(Route::Sse);
    let sub = match Subscription::parse(&state, query, Some(&headers)) {
        Ok(sub) => sub,
        Err(bad) => return bad.into_response(),
    };
    // Subscribe (and mark seen) before the first read: nothing can slip
    // between resolving the cursor and waiting.
    let mut wake = state.hub().subscribe(sub.topic);
    let live_edge = *wake.borrow_and_update();
    let now = Instant::now();
    let stream = SseStream {
        _open: state.stats().open(Open::Sse),
        topic: sub.topic,
        cursor: sub.after.unwrap_or(live_edge),
        wake,
        owed: Vec::new(),
        sent_retry: false,
        last_write: now,
        ends_at: state.config().stream_max_age.map(|age| now + age),
        state,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Tells nginx-style proxies not to buffer the stream.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// One open SSE stream: a cursor over one topic's log.
struct SseStream {
    state: AppState,
    topic: u32,
    /// Id of the last event sent (or the starting cursor).
    cursor: u64,
    wake: watch::Receiver<u64>,
    /// Reused between wake-ups so a steady stream allocates nothing per event.
    owed: Vec<Arc<EncodedEvent>>,
    sent_retry: bool,
    last_write: Instant,
    ends_at: Option<Instant>,
    /// Counts this stream in `/stats` until the body is dropped.
    _open: OpenGuard,
}

/// Owed events beyond this keep their buffer only until the next wake-up.
const KEEP_OWED_CAPACITY: usize = 256;

impl SseStream {
    /// The next chunk of the body, or `None` to end it.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.sent_retry {
            self.sent_retry = true;
            self.last_write = Instant::now();
            return Some(self.state.0.sse_retry.clone());
        }
        loop {
            if self.state.shutdown().is_cancelled()
                || self.ends_at.is_some_and(|t| Instant::now() >= t)
            {
                return None;
            }
            let hub = self.state.hub();
            let next = hub.read(self.topic, self.cursor, usize::MAX, &mut self.owed);
            if !self.owed.is_empty() {
                self.cursor = next;
                let chunk = concat(&self.owed);
                self.owed.clear();
                if self.owed.capacity() > KEEP_OWED_CAPACITY {
                    self.owed = Vec::new();
                }
                self.last_write = Instant::now();
                return Some(chunk);
            }
            let ends_at = self.ends_at;
            tokio::select! {
                biased;
                () = self.state.shutdown().cancelled() => return None,
                () = until(ends_at) => return None,
                changed = self.wake.changed() => if changed.is_err() { return None },
                () = tokio::time::sleep_until(self.last_write + self.state.config().keepalive) => {
                    self.last_write = Instant::now();
                    return Some(self.state.0.sse_keepalive.clone());
                }
            }
        }
    }
}

/// The frames of `events` as one chunk: shared bytes when there is one.
fn concat(events: &[Arc<EncodedEvent>]) -> Bytes {
    if let [one] = events {
        return one.sse.clone();
    }
    let mut buf = BytesMut::with_capacity(events.iter().map(|e| e.sse.len()).sum());
    for e in events {
        buf.extend_from_slice(&e.sse);
    }
    buf.freeze()
}

/// Sleeps until `t`, or forever when there is none.
pub(crate) async fn until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
