//! The `GET /stats` reply: push-server's counters and settings.
//!
//! One type, serialised by the server and read by the harness, so the two
//! cannot drift. The reply carries its layout version ([`STATS_VERSION`]);
//! [`StatsSnapshot::parse`] refuses any other version and any unknown field,
//! so a harness never reads a different server's counters as if they were
//! its own. A change to these types is a new version.

use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

/// The layout version of [`StatsSnapshot`] this build writes and reads.
pub const STATS_VERSION: u32 = 1;

/// The JSON answer of `GET /stats` (also usable to parse it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSnapshot {
    /// The layout of this reply ([`STATS_VERSION`]); a reader refuses any
    /// other version rather than guessing at fields.
    pub stats_version: u32,
    /// Connections open right now, per transport.
    pub open: OpenCounts,
    /// Requests received per route since start.
    pub requests: RequestCounts,
    /// Events generated (all topics).
    pub events_generated: u64,
    /// Mean lateness of the generator (actual − scheduled emission), µs.
    pub generator_lag_us_mean: f64,
    /// Worst lateness of the generator, µs.
    pub generator_lag_us_max: u64,
    /// Bytes read from client sockets.
    pub bytes_in: u64,
    /// Bytes written to client sockets.
    pub bytes_out: u64,
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Failed accepts (e.g. out of file descriptors), each followed by a back-off.
    pub accept_errors: u64,
    /// Connections open now (both ports, any state); compare with
    /// `config.open_files_limit`.
    pub connections_open: u64,
    /// Messages received from WebSocket clients.
    pub ws_messages_in: u64,
    /// Of `ws_messages_in`, those that were not `{"data":"…"}` (stray text,
    /// binary): each was answered with `{"error":"…"}` and the connection
    /// kept its subscription.
    pub ws_messages_refused: u64,
    /// CPU time this server process has used (user + system, all threads),
    /// in nanoseconds, from `CLOCK_PROCESS_CPUTIME_ID`: the harness takes
    /// CPU per event from this rather than from `/proc`'s 10 ms ticks.
    /// Absent (0) from servers that do not report it.
    pub process_cpu_ns: u64,
    /// Events published by clients (`POST /publish` and WebSocket upstream
    /// messages), all topics; not counted in `events_generated`.
    pub published: u64,
    /// Connections closed (reset) because their client read too slowly:
    /// a write made no progress for `write_timeout`, or the client fell
    /// further behind than the history holds (`closed_slow_backlog`).
    pub closed_slow: u64,
    /// Of `closed_slow`, those closed for falling further behind than the
    /// history holds (the rest are write timeouts).
    pub closed_slow_backlog: u64,
    /// Connections aborted by `POST /admin/drop`.
    pub admin_dropped: u64,
    /// Deliveries written straight to a parked socket by the appender (one
    /// per event per socket; direct fan-out only, 0 with `fanout = "tasks"`).
    pub direct_writes: u64,
    /// Times the appender handed a socket back to its task (a full socket
    /// buffer, a partial write, an error, or two appenders racing).
    pub direct_handoffs: u64,
    /// What this server generates and how it streams.
    pub config: ConfigSnapshot,
}

/// Open connections per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCounts {
    /// Open SSE streams.
    pub sse: u64,
    /// Open WebSocket connections.
    pub ws: u64,
    /// Long-poll requests being held.
    pub longpoll: u64,
    /// Open raw-TCP streams.
    pub tcp: u64,
}

/// Requests per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCounts {
    /// `GET /poll`.
    pub poll: u64,
    /// `GET /longpoll`.
    pub longpoll: u64,
    /// `GET /sse`.
    pub sse: u64,
    /// `GET /ws`.
    pub ws: u64,
    /// `POST /publish`.
    pub publish: u64,
    /// `SUB` request lines on the raw-TCP port.
    pub tcp: u64,
    /// Requests answered 400 (any route), or `ERR` on the raw-TCP port.
    pub bad: u64,
}

/// The generator and streaming settings, as `/stats` reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSnapshot {
    /// Events per second per topic.
    pub rate: f64,
    /// Number of topics.
    pub topics: u32,
    /// Topic groups with their own rates (`--topic-group`); absent when the
    /// server runs one `rate` on all `topics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topic_groups: Vec<crate::schedule::TopicGroup>,
    /// Payload filler size, bytes.
    pub payload_bytes: usize,
    /// Events kept per topic.
    pub history: usize,
    /// Schedule start, µs since the Unix epoch.
    pub start_epoch_us: u64,
    /// Named SSE event type, if any.
    pub event_type: Option<String>,
    /// SSE `retry:` value, ms.
    pub retry_ms: u64,
    /// Keep-alive interval while idle, ms.
    pub keepalive_ms: u64,
    /// Streams are ended after this age, ms (`None`: never).
    pub stream_max_age_ms: Option<u64>,
    /// A connection whose write makes no progress for this long is reset, ms.
    pub write_timeout_ms: u64,
    /// Whether the `/admin` routes are on (an admin token is set).
    pub admin: bool,
    /// How events reach streaming connections (`direct` or `tasks`).
    pub fanout: crate::Fanout,
    /// The server's soft `RLIMIT_NOFILE`, read at start: every connection
    /// takes one of these (`None`: unlimited or unknown).
    pub open_files_limit: Option<u64>,
    /// The per-connection buffers of every transport, as set.
    pub buffers: BuffersSnapshot,
}

/// Per-connection buffers as `/stats` reports them, so a report can state
/// them next to the figures they shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuffersSnapshot {
    /// WebSocket (tungstenite) read buffer, bytes, allocated at upgrade.
    pub ws_read: usize,
    /// WebSocket write buffer: buffered bytes that trigger a socket write
    /// before the flush that ends each wake-up.
    pub ws_write: usize,
    /// WebSocket write buffer ceiling, bytes.
    pub ws_max_write: usize,
    /// Largest WebSocket message or frame accepted from a client, bytes.
    pub ws_max_message: usize,
    /// hyper's HTTP/1 read buffer ceiling, bytes (also the largest request
    /// head). hyper starts its read buffer at 8 KiB, so at the minimum,
    /// 8192, the read buffer is 8 KiB and never grows.
    pub http_max_buf: usize,
    /// How the raw-TCP transport writes.
    pub tcp_write: String,
}

impl StatsSnapshot {
    /// Adds `other`'s counters into these (several servers behind one
    /// broker, read as one): counts and CPU sum, the generator's lag takes
    /// the worse (its mean the mean of the two), the settings stay these.
    pub fn add(&mut self, other: &StatsSnapshot) {
        let (o, p) = (&mut self.open, &other.open);
        (o.sse, o.ws, o.longpoll, o.tcp) = (
            o.sse + p.sse,
            o.ws + p.ws,
            o.longpoll + p.longpoll,
            o.tcp + p.tcp,
        );
        let (r, q) = (&mut self.requests, &other.requests);
        r.poll += q.poll;
        r.longpoll += q.longpoll;
        r.sse += q.sse;
        r.ws += q.ws;
        r.publish += q.publish;
        r.tcp += q.tcp;
        r.bad += q.bad;
        self.events_generated += other.events_generated;
        self.generator_lag_us_mean =
            f64::midpoint(self.generator_lag_us_mean, other.generator_lag_us_mean);
        self.generator_lag_us_max = self.generator_lag_us_max.max(other.generator_lag_us_max);
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.connections_accepted += other.connections_accepted;
        self.accept_errors += other.accept_errors;
        self.connections_open += other.connections_open;
        self.ws_messages_in += other.ws_messages_in;
        self.ws_messages_refused += other.ws_messages_refused;
        self.process_cpu_ns += other.process_cpu_ns;
        self.published += other.published;
        self.closed_slow += other.closed_slow;
        self.closed_slow_backlog += other.closed_slow_backlog;
        self.admin_dropped += other.admin_dropped;
        self.direct_writes += other.direct_writes;
        self.direct_handoffs += other.direct_handoffs;
    }

    /// Parses a `/stats` body: its `stats_version` first (a reply of another
    /// version is refused, naming both), then every field, strictly.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Version {
            stats_version: Option<u32>,
        }
        let v: Version =
            serde_json::from_slice(body).map_err(|e| format!("not a /stats reply: {e}"))?;
        match v.stats_version {
            Some(STATS_VERSION) => {}
            Some(other) => {
                return Err(format!(
                    "/stats reply version {other}, but this build reads version {STATS_VERSION} \
                     (use a push-server and pushbench from the same build)"
                ));
            }
            None => {
                return Err(format!(
                    "/stats reply without a `stats_version` (a server older than version \
                     {STATS_VERSION}, or not push-server)"
                ));
            }
        }
        serde_json::from_slice(body)
            .map_err(|e| format!("/stats reply version {STATS_VERSION}: {e}"))
    }

    /// Requests on the transport routes (`bad` is left out: a refused
    /// request is counted on its route too).
    pub fn route_requests(&self) -> u64 {
        let r = &self.requests;
        r.poll + r.longpoll + r.sse + r.ws + r.publish + r.tcp
    }
}

impl ConfigSnapshot {
    /// The server's event schedule (its one `rate` on all `topics`).
    pub fn schedule(&self) -> Schedule {
        Schedule {
            start_epoch_us: self.start_epoch_us,
            rate: self.rate,
            topics: self.topics,
        }
    }
}
