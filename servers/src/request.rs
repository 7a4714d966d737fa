//! What every route asks of a request: which topic, from which cursor.
//!
//! Parsed by hand from the raw query strings so that every mistake gets a
//! 400 with a one-line, human-readable reason (`bad query: after must be a
//! non-negative integer`), never a panic or a serde message.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;

/// The query parameters any route understands; unknown ones are ignored
/// (browsers and proxies add cache-busters).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    topic: Option<String>,
    after: Option<String>,
    timeout_ms: Option<String>,
}

/// What a handler extracts: the parameters, or why they could not be read.
pub(crate) type RawParams = Result<Query<Params>, QueryRejection>;

/// A 400 answer with a one-line `text/plain` reason.
#[derive(Debug)]
pub(crate) struct BadRequest(String);

impl BadRequest {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        // One line, whatever the input: user text is quoted with `{:?}` by
        // callers, and anything else multi-line is folded here.
        let reason: String = reason.into();
        Self(reason.replace(['\r', '\n'], " "))
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.0,
        )
            .into_response()
    }
}

/// A validated request: topic index and optional cursor / timeout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subscription {
    pub topic: u32,
    /// `None`: start at the live edge.
    pub after: Option<u64>,
    /// Long polling only; `None`: the server's default.
    pub timeout_ms: Option<u64>,
}

/// A non-negative decimal integer (no sign, no spaces), or `None` if not one.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn number(name: &str, value: Option<&str>, unit: &str) -> Result<Option<u64>, BadRequest> {
    value
        .map(|v| {
            parse_u64(v).ok_or_else(|| {
                BadRequest::new(format!(
                    "bad query: {name} must be a non-negative integer{unit}, got {v:?}"
                ))
            })
        })
        .transpose()
}

/// The index of topic `name`, or the one-line reason it is not one of ours.
pub(crate) fn topic(state: &AppState, name: &str) -> Result<u32, String> {
    state.hub().topic(name).ok_or_else(|| {
        format!(
            "unknown topic {name:?} (this server has t0..t{})",
            state.hub().topics().saturating_sub(1)
        )
    })
}

impl Subscription {
    /// Validates the query (and, for SSE, the `Last-Event-ID` header, which
    /// wins over `?after=` because it is what a reconnecting browser sends).
    pub(crate) fn parse(
        state: &AppState,
        query: RawParams,
        headers: Option<&HeaderMap>,
    ) -> Result<Self, BadRequest> {
        Self::parse_inner(state, query, headers).inspect_err(|_| state.stats().bad_request())
    }

    fn parse_inner(
        state: &AppState,
        query: RawParams,
        headers: Option<&HeaderMap>,
    ) -> Result<Self, BadRequest> {
        let Query(params) = query.map_err(|e| BadRequest::new(format!("bad query: {e}")))?;
        let topic = match params.topic.as_deref() {
            None => 0,
            Some(name) => topic(state, name).map_err(BadRequest::new)?,
        };
        let mut after = number("after", params.after.as_deref(), "")?;
        if let Some(value) = headers.and_then(|h| h.get("last-event-id")) {
            let text = value.to_str().unwrap_or("\u{fffd}").trim();
            // An empty header means "no id yet" (WHATWG: the browser then sends none).
            if !text.is_empty() {
                after = Some(parse_u64(text).ok_or_else(|| {
                    BadRequest::new(format!(
                        "bad header: Last-Event-ID must be a non-negative integer, got {text:?}"
                    ))
                })?);
            }
        }
        let timeout_ms = number(
            "timeout_ms",
            params.timeout_ms.as_deref(),
            " (milliseconds)",
        )?;
        Ok(Self {
            topic,
            after,
            timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_decimal() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "-1", "+1", " 1", "1.0", "abc", "18446744073709551616"] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reasons_are_one_line() {
        let e = number("after", Some("a\nb"), "").unwrap_err();
        assert!(!e.0.contains('\n'), "{}", e.0);
        assert!(e.0.starts_with("bad query: after must be a non-negative integer"));
    }
}
