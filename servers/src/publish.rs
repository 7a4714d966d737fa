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
//! a body larger than [`MAX_BODY`] 413, bad JSON, a missing or non-string
//! `data`, or an unknown topic 400.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
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

/// `POST /publish`.
pub(crate) async fn handler(
    State(state): State<AppState>,
    query: RawParams,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
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
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            state.stats().bad_request();
            return if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body too large (at most {MAX_BODY} bytes)"),
                )
            } else {
                refuse(rejection.status(), "cannot read the request body")
            };
        }
    };
    let data = match parse(&body) {
        Ok(data) => data,
        Err(reason) => {
            state.stats().bad_request();
            return BadRequest::new(reason).into_response();
        }
    };
    let id = state.hub().publish(sub.topic, &data);
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
