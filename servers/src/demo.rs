//! `GET /` with `--demo-page`: one page with the four transports side by
//! side on the same topic (live latency, events, gaps, reconnects, bytes),
//! buttons that drop connections through the admin routes (the token typed
//! into the page), a session-heartbeat panel that locks the screen and a
//! new-message panel that raises Web Notifications. Off by default: without
//! the flag `/` answers 404 as before. `pushbench demo` starts a server
//! laid out for it (topic groups `live`, `status` and `inbox`).

use axum::http::header;
use axum::response::IntoResponse;

/// The page, compiled into the binary (`servers/demo/index.html`).
pub const PAGE: &str = include_str!("../demo/index.html");

/// Serves [`PAGE`].
pub(crate) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}
