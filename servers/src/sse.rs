//! Server-Sent Events: `GET /sse?topic=T` (+ `Last-Event-ID` or `?after=N`).
//!
//! The body is a stream of pre-encoded chunks: first `retry: <ms>`, then
//! every event after the cursor still in the log, then live frames as they
//! arrive, and a `: keep-alive` comment after [`keepalive`] of silence.
//! The cursor, wakeups, keep-alive clock and end conditions are the shared
//! `Feed` (`feed.rs`); each wake-up concatenates everything owed into one
//! chunk (one write), and a single owed frame is sent as the shared bytes
//! themselves, uncopied. With direct fan-out (the default) a caught-up
//! stream is not woken at all: the appender writes each event's frame as
//! the HTTP/1.1 chunk hyper would have written ([`crate::direct`]).
//! axum's `Sse` type is not used because it re-encodes every event per
//! client.
//!
//! The stream ends (a clean end of body) when the server shuts down or the
//! stream reaches [`stream_max_age`]; a browser's `EventSource` then
//! reconnects after `retry` ms with `Last-Event-ID`, and resumes losslessly.
//! A client that fell further behind than the log holds gets its connection
//! aborted instead (reset, no end of body), as does one dropped by
//! `/admin/drop`.
//!
//! Backpressure: hyper asks for the next chunk only when its write buffer
//! (stated by `http_max_buf`) has room, so a client that reads slowly holds
//! at most one chunk (everything it was owed at one wake-up) in user space;
//! the cursor waits meanwhile, and the socket's write timeout bounds a
//! client that stopped reading.
//!
//! [`keepalive`]: crate::ServerConfig::keepalive
//! [`stream_max_age`]: crate::ServerConfig::stream_max_age

use std::io;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};

use crate::AppState;
use crate::conns::ConnHandle;
use crate::conns::Open;
use crate::direct::Framing;
use crate::event::EncodedEvent;
use crate::feed::{End, Feed, Next};
use crate::request::{RawParams, Subscription};
use crate::stats::{OpenGuard, Route};

/// `GET /sse`.
pub(crate) async fn handler(
    State(state): State<AppState>,
    conn: Option<Extension<Arc<ConnHandle>>>,
    method: Method,
    version: Version,
    headers: HeaderMap,
    query: RawParams,
) -> Response {
    state.stats().request(Route::Sse);
    let sub = match Subscription::parse(&state, query, Some(&headers)) {
        Ok(sub) => sub,
        Err(bad) => return bad.into_response(),
    };
    let conn = conn.map(|Extension(c)| c);
    // Direct writes put the frame on the wire as hyper's chunked body
    // would: only HTTP/1.1 GET bodies are chunked (HTTP/1.0 reads to the
    // close, HEAD has no body).
    let chunked = method == Method::GET && version == Version::HTTP_11;
    let direct = conn
        .as_ref()
        .filter(|_| chunked)
        .map(|c| (c, Framing::SseChunked));
    let stream = SseStream {
        _open: state.stats().open(Open::Sse, conn.as_ref()),
        feed: Feed::new(&state, sub.topic, sub.after, direct),
        conn,
        sent_retry: false,
        state,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((chunk, s))
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
    feed: Feed,
    sent_retry: bool,
    /// The connection (unknown when the router is driven without `serve`).
    conn: Option<Arc<ConnHandle>>,
    /// Counts this stream in `/stats` until the body is dropped.
    _open: OpenGuard,
}

impl SseStream {
    /// The next chunk of the body, `None` to end it, or an error to abort
    /// the connection (hyper then closes it without ending the body).
    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        if !self.sent_retry {
            self.sent_retry = true;
            self.feed.written();
            return Some(Ok(self.state.0.sse_retry.clone()));
        }
        let chunk = loop {
            break match self.feed.next().await {
                Next::Events => concat(self.feed.owed()),
                Next::KeepAlive => self.state.0.sse_keepalive.clone(),
                // hyper flushes while this future waits in the next call.
                Next::Flush => continue,
                Next::End(End::Slow) => {
                    if let Some(conn) = &self.conn {
                        conn.abort();
                    }
                    return Some(Err(io::Error::other("client fell behind the history")));
                }
                Next::End(End::Shutdown | End::MaxAge) => return None,
            };
        };
        self.feed.written();
        Some(Ok(chunk))
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
