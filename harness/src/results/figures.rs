//! The figures of one entry of `run.json`: counts, latency summaries and
//! their histograms, bytes on the wire, the server's and the fleet's usage,
//! recovery from faults, chat and the clients' habits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the clients' habits did over the run (scenario `[behaviour]`),
/// summed over clients; all zero for polite clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Habits {
    /// WebSocket Ping frames sent.
    pub pings: u64,
    /// Reading pauses taken.
    pub pauses: u64,
    /// Time spent not reading, µs.
    pub paused_us: u64,
    /// Unexpected messages sent.
    pub junk: u64,
    /// `{"error":…}` replies received for them.
    pub error_replies: u64,
}

impl Habits {
    /// Whether no habit did anything.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Habits) {
        self.pings += other.pings;
        self.pauses += other.pauses;
        self.paused_us += other.paused_us;
        self.junk += other.junk;
        self.error_replies += other.error_replies;
    }
}

impl From<clients::HabitCounts> for Habits {
    fn from(c: clients::HabitCounts) -> Self {
        Self {
            pings: c.pings,
            pauses: c.pauses,
            paused_us: c.paused_us,
            junk: c.junk,
            error_replies: c.error_replies,
        }
    }
}

/// Socket counters of the server (`/stats`), over some span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WireCounts {
    /// Bytes read from client sockets (upstream).
    pub bytes_in: u64,
    /// Bytes written to client sockets (downstream).
    pub bytes_out: u64,
    /// Requests on the transport routes (every route, `/stats` excluded).
    pub requests: u64,
    /// TCP connections accepted.
    pub connections_accepted: u64,
}

/// Bytes on the wire, counted at the server's sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Wire {
    /// Over the measured window: `/stats` at its end minus `/stats` at its
    /// start, so connection set-up and warm-up are excluded (the two
    /// `/stats` exchanges themselves, about 1 KB, are included).
    pub window: WireCounts,
    /// Since the server started until the end of the drain: includes
    /// connection set-up and handshakes.
    pub total: WireCounts,
}

/// The server's CPU and memory, from `/proc/<pid>` and `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServerUsage {
    /// User + system CPU seconds over the measured window.
    pub cpu_s: f64,
    /// The resolution of `cpu_s`, seconds: 1e-9 when the server reported
    /// its own CPU clock (`/stats` `process_cpu_ns`), else `/proc`'s clock
    /// tick (0.01 s here), and then each end of the window may be off by
    /// up to one tick. Files before version 5 have ticks.
    #[serde(default = "tick_s")]
    pub cpu_resolution_s: f64,
    /// Resident set size before any client connected, bytes.
    pub rss_baseline_bytes: u64,
    /// Resident set size right after every client connected, before the warm-up, bytes.
    pub rss_idle_bytes: u64,
    /// Clients connected when `rss_idle_bytes` was sampled.
    pub idle_clients: usize,
    /// Largest resident set size sampled in the measured window, bytes.
    pub rss_peak_bytes: u64,
    /// The kernel's high-water mark of the resident set (`VmHWM`) at the end
    /// of the drain, connection set-up included, bytes.
    pub rss_hwm_bytes: u64,
    /// Kernel memory of all TCP sockets (`/proc/net/sockstat`, whole network
    /// namespace: both ends of every loopback connection) before any client, bytes.
    pub tcp_mem_baseline_bytes: Option<u64>,
    /// The same right after every client connected, bytes.
    pub tcp_mem_idle_bytes: Option<u64>,
    /// The largest sample of the same in the measured window, bytes.
    pub tcp_mem_peak_bytes: Option<u64>,
}

pub(crate) fn tick_s() -> f64 {
    0.01
}

impl ServerUsage {
    /// The share of `cpu_s` that its resolution can be off by (two
    /// readings, each up to one resolution step): above 5 %, a CPU figure
    /// is marked as quantised in reports.
    pub fn cpu_quantisation(&self) -> f64 {
        if self.cpu_s <= 0.0 {
            return f64::INFINITY;
        }
        2.0 * self.cpu_resolution_s / self.cpu_s
    }
}

/// Above this share of [`ServerUsage::cpu_quantisation`], a CPU figure is
/// marked as quantised.
pub const CPU_QUANTISATION_MARK: f64 = 0.05;

/// The kernel's TCP events over the measured window, for the whole network
/// namespace (`/proc/net/snmp`, `/proc/net/netstat`): on loopback both ends
/// of every connection, and anything else the machine did meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TcpEvents {
    /// Segments retransmitted (`RetransSegs`): on loopback nothing is lost,
    /// so each is a timer that fired (a retransmit timeout or a tail-loss
    /// probe) while the data or its ACK was merely late, and each adds its
    /// timeout to some delivery's latency.
    pub retrans_segs: u64,
    /// Delayed ACKs that arrived too late (`DelayedACKLost`).
    pub delayed_ack_lost: u64,
    /// Tail-loss probes sent (`TCPLossProbes`).
    pub loss_probes: u64,
    /// Connections dropped at a full listen queue (`ListenOverflows`).
    pub listen_overflows: u64,
}

/// The fleet's (this process's) own cost and health over the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FleetUsage {
    /// User + system CPU seconds of the harness process over the window.
    pub cpu_s: f64,
    /// Cores the fleet ran on.
    pub cpus: Vec<usize>,
    /// Resident set size of the harness process right after every client connected, bytes.
    pub rss_idle_bytes: u64,
    /// Largest resident set size of the harness process sampled in the window, bytes.
    pub rss_peak_bytes: u64,
    /// How late a probe task that sleeps 10 ms in a loop woke up, µs, over
    /// the window: the fleet runtime's scheduling lag.
    pub lag: Summary,
    /// Whether the fleet was saturated (CPU near its cores' capacity) or
    /// lagging behind its own schedule: its latency figures then describe
    /// the load generator, not the server.
    pub generator_bound: bool,
    /// Why `generator_bound` is set (empty when it is not).
    pub generator_bound_reasons: Vec<String>,
    /// CPU seconds of the link relay processes (`run --link`; one per
    /// 9,000 clients), summed, from their start to their stop, the whole
    /// transport's run; `null` without a link (and
    /// in files written before links existed).
    #[serde(default)]
    pub relay_cpu_s: Option<f64>,
    /// What emulated the link: `relay` or `kernel` (docs/links.md); `null`
    /// without a link (and in files written before the kernel emulator).
    #[serde(default)]
    pub link_emulator: Option<String>,
}

/// One resource sample of the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Sample {
    /// When, µs since the Unix epoch.
    pub t_us: u64,
    /// Server resident set size, bytes (`None`: not readable).
    pub server_rss_bytes: Option<u64>,
    /// Server user + system CPU seconds since it started.
    pub server_cpu_s: Option<f64>,
    /// Fleet (harness) resident set size, bytes.
    pub fleet_rss_bytes: Option<u64>,
    /// Fleet (harness) user + system CPU seconds since it started.
    pub fleet_cpu_s: Option<f64>,
    /// Kernel memory of all TCP sockets, bytes.
    pub tcp_mem_bytes: Option<u64>,
    /// Fleet clients connected at that moment, as the clients see it (a
    /// client counts out once its read fails or times out, in again when it
    /// reconnects). `None`: not sampled (run.json written before it was).
    pub clients_connected: Option<u64>,
}

/// Event counters over the measured window, summed over clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Counts {
    /// Events each client should have received (scheduled in the window on its topic), summed.
    pub expected: u64,
    /// Distinct expected events received.
    pub delivered: u64,
    /// Expected events never received.
    pub missing: u64,
    /// Events received more than once (each extra copy counts one).
    pub duplicated: u64,
    /// Events received after an event with a higher id.
    pub out_of_order: u64,
    /// HTTP requests made (polling transports; 0 otherwise).
    pub requests: u64,
    /// Reconnections after a lost connection.
    pub reconnects: u64,
    /// Errors reported by subscribers (connect failures, bad responses…).
    pub errors: u64,
}

/// Faults injected into one transport's run and how its clients recovered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Recovery {
    /// The faults, in the order they were injected.
    pub faults: Vec<FaultRecord>,
    /// Reconnection attempts (every try, failed ones included), summed over clients.
    pub reconnect_attempts: u64,
    /// Time from losing a connection to the first event after it, µs, one
    /// sample per recovery (the time to reconnect *and* resume).
    pub reconnect: Summary,
    /// The same as a serialised HDR histogram (V2 + deflate, base64).
    pub reconnect_us: String,
    /// Expected events scheduled while a killed server was down, or that the
    /// killed server had not delivered yet (see the recorder), and never
    /// received: lost with the server, counted apart from `counts.missing`
    /// (losses the transport caused).
    pub lost_outage: u64,
    /// Distinct expected events received per second of receive time, from
    /// the window's start (bucket `i` covers `[start + i s, start + (i+1) s)`),
    /// all clients together.
    pub delivered_per_s: Vec<u64>,
}

/// A chat run's upstream figures for one transport.
///
/// Every sender's messages were due on a fixed schedule; the round trip of
/// a message runs from its due time (not the time it was actually sent, so
/// a late send shows) to its receipt by the sender's own subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ChatResult {
    /// Clients that sent.
    pub senders: u64,
    /// Messages per second per sender (the scenario's `send_rate`).
    pub send_rate: f64,
    /// How senders sent: `websocket` (on their own subscription socket) or
    /// `publish` (`POST /publish` over a connection of their own).
    pub upstream: String,
    /// Messages handed to the server (a publish answered 200, a WebSocket
    /// message written), all senders.
    pub sent: u64,
    /// Of those, received back by their own sender.
    pub echoed: u64,
    /// Sent but never received back by their sender (`sent − echoed`).
    pub lost: u64,
    /// Messages that could not be sent (failed publish, broken socket).
    pub send_errors: u64,
    /// Round trip (receipt by the sender's subscription − due time), µs.
    pub round_trip: Summary,
    /// The same as a serialised HDR histogram (V2 + deflate, base64).
    pub round_trip_us: String,
}

/// Span after a drop or storm over which the server's CPU is reported, seconds.
pub const FAULT_CPU_SPAN_S: f64 = 2.0;

/// One fault as it was injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FaultRecord {
    /// `drop`, `storm` or `restart`.
    pub kind: String,
    /// When it was injected, µs since the Unix epoch.
    pub at_us: u64,
    /// Share of the open connections asked to drop (drop, storm).
    pub fraction: Option<f64>,
    /// Connections the server reported dropped (drop, storm).
    pub dropped: Option<u64>,
    /// Restart: from the kill until the new server was ready, µs.
    pub outage_us: Option<u64>,
    /// Recoveries (a client's first event after losing its connection)
    /// completed after this fault and before the next one.
    #[serde(default)]
    pub recovered: u64,
    /// The slowest of those recoveries, µs: from the last client's
    /// disconnection until it was back and receiving (`None`: none).
    #[serde(default)]
    pub all_back_us: Option<u64>,
    /// Server CPU seconds over the [`FAULT_CPU_SPAN_S`] seconds after a drop
    /// or storm, from the resource timeline (`None`: a restart, whose new
    /// process starts from 0, or too few samples).
    #[serde(default)]
    pub server_cpu_s: Option<f64>,
    /// Why the fault could not be injected as asked (`None`: it was).
    pub error: Option<String>,
}

/// Percentile summary of one histogram, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

/// Serialised HDR histograms (V2 + deflate, base64).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Histograms {
    /// Latency, µs.
    pub latency_us: String,
    /// Connect time, µs.
    pub connect_us: String,
}

/// Serialises a histogram as HDR V2 + deflate, base64 (standard alphabet).
pub fn encode_histogram(h: &hdrhistogram::Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let mut buf = Vec::new();
    hdrhistogram::serialization::V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serialising a histogram into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Parses a histogram written by [`encode_histogram`].
pub fn decode_histogram(s: &str) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim())?;
    let h = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| anyhow::anyhow!("bad histogram: {e:?}"))?;
    Ok(h)
}

impl Summary {
    /// Percentile summary of a histogram (all zeros when it is empty).
    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What a transport's browser clients saw (`--browser-clients`): headless
/// Chromium pages speaking it with the browser's own API, verified and
/// timed like the fleet's clients over the same window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BrowserFigures {
    /// Pages asked for.
    pub clients: usize,
    /// Pages that handed over their records.
    pub reported: usize,
    /// Every page reported and got every event of the window once, in order.
    pub verified: bool,
    /// Events the pages should have received in the window, summed.
    pub expected: u64,
    /// Distinct expected events received.
    pub delivered: u64,
    /// Expected events never received.
    pub missing: u64,
    /// Extra copies received.
    pub duplicated: u64,
    /// Events received after one with a higher id.
    pub out_of_order: u64,
    /// Reconnections the pages made.
    pub reconnects: u64,
    /// Latency, µs: the page's receive time (`performance.timeOrigin +
    /// performance.now()`) minus the event's scheduled emission time.
    pub latency: Summary,
    /// The latency histogram (HDR V2, deflate, base64), µs.
    pub histogram_us: String,
    /// CPU seconds of node and Chromium from every page being ready to stop.
    pub cpu_s: f64,
    /// That CPU as a share of the fleet's cores over the same time (0–1).
    pub cpu_share: f64,
    /// The browser was saturated (`cpu_share` above the fleet's bound): its
    /// latency describes the browser's machine, not the transport.
    pub saturated: bool,
    /// What went wrong, one line each.
    pub problems: Vec<String>,
    /// The pages' console errors (at most 50).
    pub console_errors: Vec<String>,
}
