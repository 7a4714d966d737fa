//! Server counters and the `/stats` and `/healthz` routes.
//!
//! Plain relaxed atomics: each is an independent count read now and then by
//! `/stats`, so no ordering between them is needed and nothing locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::conns::ConnHandle;
use crate::conns::Open;
use crate::counters::ByteCounters;

pub use protocol::stats::{
    BuffersSnapshot, ConfigSnapshot, OpenCounts, RequestCounts, STATS_VERSION, StatsSnapshot,
};

/// Live counters of one server.
#[derive(Debug, Default)]
pub struct Stats {
    /// Socket bytes and accepts, fed by [`crate::net::CountingStream`].
    pub bytes: Arc<ByteCounters>,
    open_sse: AtomicU64,
    open_ws: AtomicU64,
    open_longpoll: AtomicU64,
    open_tcp: AtomicU64,
    req_poll: AtomicU64,
    req_longpoll: AtomicU64,
    req_sse: AtomicU64,
    req_ws: AtomicU64,
    req_publish: AtomicU64,
    req_tcp: AtomicU64,
    req_bad: AtomicU64,
    ws_messages_in: AtomicU64,
    ws_messages_refused: AtomicU64,
    slow_backlog: AtomicU64,
    admin_dropped: AtomicU64,
}

/// Which route a request counts against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Route {
    Poll,
    LongPoll,
    Sse,
    Ws,
    Publish,
    Tcp,
}

impl Stats {
    fn gauge(&self, which: Open) -> &AtomicU64 {
        match which {
            Open::Sse => &self.open_sse,
            Open::Ws => &self.open_ws,
            Open::LongPoll => &self.open_longpoll,
            Open::Tcp => &self.open_tcp,
        }
    }

    /// Counts a request on `route`.
    pub(crate) fn request(&self, route: Route) {
        let counter = match route {
            Route::Poll => &self.req_poll,
            Route::LongPoll => &self.req_longpoll,
            Route::Sse => &self.req_sse,
            Route::Ws => &self.req_ws,
            Route::Publish => &self.req_publish,
            Route::Tcp => &self.req_tcp,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request answered with 400 (or, on the raw-TCP port, `ERR`).
    pub(crate) fn bad_request(&self) {
        self.req_bad.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a message a WebSocket client sent us.
    pub(crate) fn ws_message_in(&self) {
        self.ws_messages_in.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a WebSocket message that was not an upstream event (answered
    /// with an `{"error":…}` message; the subscription goes on).
    pub(crate) fn ws_message_refused(&self) {
        self.ws_messages_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed because its client fell further behind
    /// than the history holds.
    pub(crate) fn slow_backlog(&self) {
        self.slow_backlog.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts connections aborted by `POST /admin/drop`.
    pub(crate) fn admin_dropped(&self, n: u64) {
        self.admin_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an open stream until the guard is dropped (whichever way the
    /// connection ends, including a client that vanishes mid-request), and
    /// marks its connection (`conn`, when it is known) as streaming `which`
    /// meanwhile, so that an admin drop can find it.
    pub(crate) fn open(self: &Arc<Self>, which: Open, conn: Option<&Arc<ConnHandle>>) -> OpenGuard {
        self.gauge(which).fetch_add(1, Ordering::Relaxed);
        if let Some(conn) = conn {
            conn.set_kind(Some(which));
        }
        OpenGuard {
            stats: self.clone(),
            which,
            conn: conn.cloned(),
        }
    }
}

/// Decrements an open-connection gauge (and marks the connection idle)
/// when dropped.
#[derive(Debug)]
pub(crate) struct OpenGuard {
    stats: Arc<Stats>,
    which: Open,
    conn: Option<Arc<ConnHandle>>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.stats.gauge(self.which).fetch_sub(1, Ordering::Relaxed);
        if let Some(conn) = &self.conn {
            conn.set_kind(None);
        }
    }
}

/// What [`BuffersSnapshot::tcp_write`] says.
pub const TCP_WRITE: &str = "one vectored write of the shared frames per wake-up (with direct \
     fan-out, caught-up sockets get one send per event from the appender), no user-space buffer";

/// Reads every counter of `state` now: the `GET /stats` reply.
pub fn snapshot(state: &AppState) -> StatsSnapshot {
    let s = state.stats();
    let hub = state.hub();
    let cfg = state.config();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let events = hub.events_generated();
    let (lag_sum, lag_max) = hub.generator_lag_us();
    StatsSnapshot {
        stats_version: STATS_VERSION,
        open: OpenCounts {
            sse: load(&s.open_sse),
            ws: load(&s.open_ws),
            longpoll: load(&s.open_longpoll),
            tcp: load(&s.open_tcp),
        },
        requests: RequestCounts {
            poll: load(&s.req_poll),
            longpoll: load(&s.req_longpoll),
            sse: load(&s.req_sse),
            ws: load(&s.req_ws),
            publish: load(&s.req_publish),
            tcp: load(&s.req_tcp),
            bad: load(&s.req_bad),
        },
        events_generated: events,
        generator_lag_us_mean: if events == 0 {
            0.0
        } else {
            lag_sum as f64 / events as f64
        },
        generator_lag_us_max: lag_max,
        bytes_in: load(&s.bytes.bytes_in),
        bytes_out: load(&s.bytes.bytes_out),
        connections_accepted: load(&s.bytes.accepted),
        accept_errors: load(&s.bytes.accept_errors),
        connections_open: load(&s.bytes.open),
        ws_messages_in: load(&s.ws_messages_in),
        ws_messages_refused: load(&s.ws_messages_refused),
        process_cpu_ns: process_cpu_ns(),
        published: hub.events_published(),
        closed_slow: load(&s.bytes.write_timeouts) + load(&s.slow_backlog),
        closed_slow_backlog: load(&s.slow_backlog),
        admin_dropped: load(&s.admin_dropped),
        direct_writes: load(&hub.fanout().direct_writes),
        direct_handoffs: load(&hub.fanout().handoffs),
        config: ConfigSnapshot {
            rate: cfg.hub.schedule.rate,
            topics: cfg.hub.schedule.topics,
            topic_groups: cfg.hub.groups.clone(),
            payload_bytes: cfg.hub.payload_bytes,
            history: cfg.hub.history,
            start_epoch_us: cfg.hub.schedule.start_epoch_us,
            event_type: cfg.hub.event_type.clone(),
            retry_ms: cfg.retry_ms,
            keepalive_ms: cfg.keepalive.as_millis() as u64,
            stream_max_age_ms: cfg.stream_max_age.map(|d| d.as_millis() as u64),
            write_timeout_ms: cfg.write_timeout.as_millis() as u64,
            admin: cfg.admin_token.is_some(),
            fanout: cfg.fanout,
            open_files_limit: state.fd_budget().limit(),
            buffers: BuffersSnapshot {
                ws_read: cfg.buffers.ws_read,
                ws_write: cfg.buffers.ws_write,
                ws_max_write: cfg.buffers.ws_max_write,
                ws_max_message: cfg.buffers.ws_max_message,
                http_max_buf: cfg.buffers.http_max_buf,
                tcp_write: TCP_WRITE.to_string(),
            },
        },
    }
}

/// CPU time used by this process so far (every thread, user and system),
/// nanoseconds; 0 if the clock cannot be read.
pub fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// `GET /stats`: the counters as JSON.
pub(crate) async fn stats(State(state): State<AppState>) -> Json<StatsSnapshot> {
    Json(snapshot(&state))
}

/// `GET /healthz`: `ok` while the server runs.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}
