//! Fault injection: the `/admin` routes.
//!
//! Off unless the server has an admin token ([`ServerConfig::admin_token`]):
//! then every `/admin` path answers 404, as if it did not exist. With a
//! token, every request must carry `Authorization: Bearer TOKEN` (compared
//! in constant time), else 401 with a one-line reason. Failed attempts are
//! logged (a warning at most once a second, with the count since the last
//! one) and limited: after [`MAX_FAILURES`] failures within a second, every
//! `/admin` request is answered 429 (`Retry-After: 1`) until that second is
//! over, so guessing the token costs at least a second per
//! [`MAX_FAILURES`] tries. The routes send no CORS headers: a web page on
//! another origin cannot call them.
//!
//! - `POST /admin/drop?fraction=F[&transport=sse|ws|longpoll|tcp|all]`:
//!   aborts that fraction (0..=1, default transport `all`) of the open
//!   streaming connections, abruptly: the socket is reset, with no SSE end
//!   of body and no WebSocket Close frame (see [`crate::conns`]). Answers
//!   `{"dropped":N,"open_before":M}`.
//! - `GET /admin/connections`: the open connections by what they do now
//!   ([`ConnectionCounts`](crate::conns::ConnectionCounts)).
//!
//! [`ServerConfig::admin_token`]: crate::ServerConfig::admin_token

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use crate::AppState;
use crate::conns::Filter;
use crate::conns::Open;

/// Failed admin attempts allowed within [`FAILURE_WINDOW`] before every
/// admin request is refused until the window ends.
pub const MAX_FAILURES: u32 = 5;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(1);

/// Failed admin attempts: counted per window, logged at most once a window.
#[derive(Debug, Default)]
pub(crate) struct Failures(Mutex<FailureWindow>);

#[derive(Debug, Default)]
struct FailureWindow {
    /// Start of the current window (`None`: no failure yet).
    start: Option<Instant>,
    /// Failures in the current window.
    in_window: u32,
    /// Failures since the last warning.
    unlogged: u64,
    /// When the last warning was written.
    logged_at: Option<Instant>,
}

impl Failures {
    fn lock(&self) -> std::sync::MutexGuard<'_, FailureWindow> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether admin requests are refused now (too many recent failures).
    fn locked_out(&self, now: Instant) -> bool {
        let w = self.lock();
        w.start.is_some_and(|s| now < s + FAILURE_WINDOW) && w.in_window >= MAX_FAILURES
    }

    /// Counts a failed attempt and logs it (at most once a window).
    fn fail(&self, now: Instant, reason: &str) {
        let mut w = self.lock();
        if w.start.is_none_or(|s| now >= s + FAILURE_WINDOW) {
            w.start = Some(now);
            w.in_window = 0;
        }
        w.in_window += 1;
        w.unlogged += 1;
        if w.logged_at.is_none_or(|t| now >= t + FAILURE_WINDOW) {
            tracing::warn!(
                failures = w.unlogged,
                last_reason = reason,
                "admin: rejected request(s) without the right token"
            );
            w.unlogged = 0;
            w.logged_at = Some(now);
        }
    }
}

/// The query of `POST /admin/drop`, read as text so that every mistake gets
/// a one-line reason.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DropParams {
    fraction: Option<String>,
    transport: Option<String>,
}

/// Every `/admin` request: off (404), unauthorised (401), or dispatched.
pub(crate) async fn handler(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<DropParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(token) = state.config().admin_token.as_deref() else {
        return crate::not_found().into_response();
    };
    let now = Instant::now();
    if state.admin_failures().locked_out(now) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "too many failed admin attempts: try again in a second",
        )
            .into_response();
    }
    if let Err(reason) = authorise(&headers, token) {
        state.admin_failures().fail(now, reason);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            reason,
        )
            .into_response();
    }
    match (uri.path(), method) {
        ("/admin/drop", Method::POST) => {
            let Query(params) = match query {
                Ok(q) => q,
                Err(e) => return bad(format!("bad query: {e}")),
            };
            match parse_drop(&params) {
                Ok((fraction, filter)) => {
                    let report = state.connections().drop_fraction(fraction, filter);
                    state.stats().admin_dropped(report.dropped);
                    tracing::info!(
                        fraction,
                        ?filter,
                        dropped = report.dropped,
                        open_before = report.open_before,
                        "admin drop"
                    );
                    Json(report).into_response()
                }
                Err(reason) => bad(reason),
            }
        }
        ("/admin/connections", Method::GET) => Json(state.connections().counts()).into_response(),
        ("/admin/drop", _) => method_not_allowed("POST"),
        ("/admin/connections", _) => method_not_allowed("GET"),
        _ => crate::not_found().into_response(),
    }
}

/// Checks `Authorization: Bearer TOKEN`; the error is the one-line reason.
fn authorise(headers: &HeaderMap, token: &str) -> Result<(), &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("missing Authorization: Bearer header")?;
    let value = value.as_bytes();
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let given = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|_| &value[7..])
        .ok_or("Authorization must use the Bearer scheme")?;
    // Constant time in the token's contents (a length mismatch answers at once,
    // which tells an attacker only the length).
    if bool::from(given.ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err("wrong admin token")
    }
}

/// `fraction` and `transport` of a drop, or the one-line reason they are wrong.
fn parse_drop(params: &DropParams) -> Result<(f64, Filter), String> {
    let text = params
        .fraction
        .as_deref()
        .ok_or("bad query: fraction is required (0 to 1)")?;
    let fraction: f64 = text
        .parse()
        .ok()
        .filter(|f: &f64| (0.0..=1.0).contains(f))
        .ok_or_else(|| format!("bad query: fraction must be a number from 0 to 1, got {text:?}"))?;
    let filter = match params.transport.as_deref().unwrap_or("all") {
        "all" => Filter::All,
        "sse" => Filter::Only(Open::Sse),
        "ws" => Filter::Only(Open::Ws),
        "longpoll" | "long-poll" => Filter::Only(Open::LongPoll),
        "tcp" => Filter::Only(Open::Tcp),
        other => {
            return Err(format!(
                "bad query: transport must be one of sse, ws, longpoll, tcp, all; got {:?}",
                other.chars().take(64).collect::<String>()
            ));
        }
    };
    Ok((fraction, filter))
}

/// A 400 with a one-line `text/plain` reason.
fn bad(reason: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reason.replace(['\r', '\n'], " "),
    )
        .into_response()
}

fn method_not_allowed(allow: &'static str) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, allow)],
        format!("use {allow}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_exact_bearer_token_is_authorised() {
        assert!(authorise(&headers(Some("Bearer s3cret")), "s3cret").is_ok());
        assert!(authorise(&headers(Some("bearer s3cret")), "s3cret").is_ok());
        for (auth, why) in [
            (None, "missing"),
            (Some("Bearer s3cre"), "wrong"),
            (Some("Bearer s3cret "), "wrong"),
            (Some("Bearer S3CRET"), "wrong"),
            (Some("Bearer "), "wrong"),
            (Some("Basic czNjcmV0"), "Bearer scheme"),
            (Some("s3cret"), "Bearer scheme"),
        ] {
            let err = authorise(&headers(auth), "s3cret").unwrap_err();
            assert!(err.contains(why), "{auth:?}: {err}");
        }
    }

    #[test]
    fn drop_parameters_parse_or_say_why_not() {
        let p = |f: Option<&str>, t: Option<&str>| {
            parse_drop(&DropParams {
                fraction: f.map(str::to_string),
                transport: t.map(str::to_string),
            })
        };
        assert_eq!(p(Some("0.5"), None), Ok((0.5, Filter::All)));
        assert_eq!(
            p(Some("1"), Some("sse")),
            Ok((1.0, Filter::Only(Open::Sse)))
        );
        assert_eq!(
            p(Some("0"), Some("long-poll")),
            Ok((0.0, Filter::Only(Open::LongPoll)))
        );
        for (f, t, why) in [
            (None, None, "fraction is required"),
            (Some("1.5"), None, "from 0 to 1"),
            (Some("-0.1"), None, "from 0 to 1"),
            (Some("NaN"), None, "from 0 to 1"),
            (Some("half"), None, "from 0 to 1"),
            (Some("0.5"), Some("poll"), "transport must be one of"),
        ] {
            let err = p(f, t).unwrap_err();
            assert!(
                err.contains(why) && !err.contains('\n'),
                "{f:?} {t:?}: {err}"
            );
        }
    }
}
