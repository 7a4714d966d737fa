//! Upstream: `POST /publish?topic=T` with the JSON body `{"data":"…"}`.
//!
//! The SSE and polling clients' way to send: the event is appended to the
//! topic's log through the generator's own append path
//! ([`Hub::publish`](crate::Hub::publish)), so every subscriber of the topic,
//! of any transport, receives it with the next contiguous id, and the answer
//! is `{"id":N}`. WebSocket clients send the same JSON as a text message
//! (`ws.rs` parses it with the same function as this route).
//!
//! `emitted_at_us` of a published event is the time the server had received
//! the whole body: latency of published events is measured from receipt,
//! and the sender measures its full round trip itself.
//!
//! Mistakes get one-line reasons: a body that is not `application/json` 415,
//! a body larger than [`MAX_BODY`] 413 (at once when `Content-Length` says
//! so), bad JSON, a missing or non-string `data`, or an unknown topic 400.
//!
//! The body is read by [`read_body`], not collected by a generic
//! extractor, so that a hostile sender cannot choose what it costs: every
//! chunk is copied into one buffer (sized by `Content-Length`, at most
//! [`MAX_BODY`]) and released at once. A body sent one byte per TCP segment
//! once cost about 4 KB of server memory per byte, because each one-byte
//! chunk kept hyper's whole read buffer alive until the body was complete.
//! The body must also arrive whole within
//! [`body_timeout`](crate::ServerConfig::body_timeout): a stalled or
//! trickling body is answered 408 and its connection closed.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::request::{BadRequest, RawParams, Subscription};
use crate::stats::Route;

/// Largest accepted `POST /publish` body, bytes (the same as the default
/// largest WebSocket message, so both upstream paths accept the same events).
pub const MAX_BODY: usize = 64 * 1024;

/// The upstream message: `{"data":"…"}` (other fields are ignored).
#[derive(Debug, Deserialize)]
struct Upstream {
    data: String,
}

/// The `data` of an upstream message, or a one-line reason it is not one.
pub(crate) fn parse(body: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<Upstream>(body)
        .map(|m| m.data)
        .map_err(|e| format!("bad body: expected {{\"data\":\"…\"}}: {e}"))
}

/// Whether the request says its body is JSON (`application/json`, with or
/// without parameters such as `charset`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// A non-400 client error with a one-line reason.
fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reason.into(),
    )
        .into_response()
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the limit (said by `Content-Length`, or counted).
    TooLarge,
    /// Not whole within the deadline.
    Timeout,
    /// The connection failed or the framing was broken.
    Broken(String),
}

/// Reads a request body of at most `limit` bytes within `deadline`, into
/// one buffer: memory is the body's size, however it is paced.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    deadline: Duration,
) -> Result<Vec<u8>, BodyError> {
    use http_body_util::BodyExt as _;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    // hyper has checked that a Content-Length is well-formed and matches.
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(limit));
    let mut body = body;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
            if let Ok(chunk) = frame.into_data() {
                if buf.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                // Copied, so the chunk (and the read buffer it shares) goes now.
                buf.extend_from_slice(&chunk);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(())) => Ok(buf),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Timeout),
    }
}

/// `POST /publish`.
pub(crate) async fn handler(
    State(state): State<AppState>,
    query: RawParams,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.stats().request(Route::Publish);
    if !is_json(&headers) {
        state.stats().bad_request();
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let sub = match Subscription::parse(&state, query, None) {
        Ok(sub) => sub,
        Err(bad) => return bad.into_response(),
    };
    let deadline = state.config().body_timeout;
    let body = match read_body(body, &headers, MAX_BODY, deadline).await {
        Ok(body) => body,
        Err(e) => {
            state.stats().bad_request();
            let (status, reason) = match e {
                BodyError::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body too large (at most {MAX_BODY} bytes)"),
                ),
                BodyError::Timeout => (
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request body not received within {} ms",
                        deadline.as_millis()
                    ),
                ),
                BodyError::Broken(e) => (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                ),
            };
            // The rest of the body is not read: the connection cannot be reused.
            let mut resp = refuse(status, reason);
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
    };
    let data = match parse(&body) {
        Ok(data) => data,
        Err(reason) => {
            state.stats().bad_request();
            return BadRequest::new(reason).into_response();
        }
    };
    let Some(id) = state.hub().publish(sub.topic, &data) else {
        return refuse(
            StatusCode::NOT_IMPLEMENTED,
            "POST /publish is not available with --broker: event ids are assigned by the \
             broker's publisher for every server"
                .to_string(),
        );
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        format!("{{\"id\":{id}}}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_need_a_string_data() {
        assert_eq!(parse(br#"{"data":"a\nb"}"#).unwrap(), "a\nb");
        assert_eq!(parse(br#"{"data":"","extra":1}"#).unwrap(), "");
        for bad in [&br#"{"hello":1}"#[..], b"{\"data\":1}", b"not json", b""] {
            let reason = parse(bad).unwrap_err();
            assert!(reason.starts_with("bad body: "), "{reason}");
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
