//! The results contract: what `run.json` holds.
//!
//! Raw first: counters and serialised HDR histograms per transport, plus the
//! scenario and provenance. Reports (`report.md`, plots) are derived from this
//! file alone, so `pushbench report DIR` can re-render them without re-running.
//! Bump [`SCHEMA_VERSION`] on any incompatible change. The JSON Schema of the
//! file, `schemas/run.schema.json`, is generated from these types
//! ([`run_schema`], `pushbench schema run`) and checked against real output.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use protocol::TransportKind;

use crate::scenario::sweep::SweepPoint;

pub mod summary;

/// Version of the `run.json` layout.
///
/// 2: repetitions (`repetition`), bytes on the wire (`wire`), server and
/// fleet usage (`server`, `fleet`), the resource `timeline`, the server's
/// stated settings (`server_config`), placement in the provenance and the
/// run-wide `generator_bound` flag.
///
/// 3: sweeps: every entry carries its sweep `point` (`null` outside a
/// sweep). Files of version 2 are still read (no sweep, so no point): an
/// older pushbench would read a sweep's points as repetitions of one
/// workload, hence the bump.
///
/// 4: mixed runs: every entry carries its client `groups` (empty outside a
/// mixed run). Files of versions 2 and 3 are still read (no groups): an
/// older pushbench would read a mixed entry as one transport's.
///
/// 5: client habits (`habits` per entry, when clients pinged, paused or
/// sent unexpected messages) and the server CPU figure's resolution
/// (`server.cpu_resolution_s`: 1e-9 from push-server's own clock, the clock
/// tick from `/proc`). Files of versions 2 to 4 are still read (no habits,
/// CPU in ticks).
pub const SCHEMA_VERSION: u32 = 5;

/// The oldest `schema_version` this build still reads.
pub const OLDEST_READ_VERSION: u32 = 2;

/// The whole of `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "pushbench run.json")]
pub struct RunFile {
    /// Layout version ([`SCHEMA_VERSION`]).
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    /// Where and how this run was made.
    pub provenance: Provenance,
    /// The scenario as run (after command-line overrides), as a JSON value.
    #[schemars(schema_with = "scenario_schema")]
    pub scenario: serde_json::Value,
    /// Whether every planned transport ran its whole window: false when the
    /// run was cut short (Ctrl-C, a lost server) and when any transport's
    /// window ended early (its server died mid-run), see
    /// [`TransportResult::ended_early`].
    pub complete: bool,
    /// Whether any transport's load generator (the fleet) was saturated or
    /// lagging, so its figures describe the fleet rather than the server
    /// (see [`FleetUsage::generator_bound`]).
    pub generator_bound: bool,
    /// One entry per transport and repetition, in the order they ran.
    pub transports: Vec<TransportResult>,
}

/// Where and how a run was made.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Provenance {
    /// pushbench's version (crate version).
    pub pushbench_version: String,
    /// `git rev-parse HEAD` of the working tree, with `-dirty` if modified; `unknown` outside git.
    pub git_commit: String,
    /// Host name.
    pub host: String,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical cores this process may run on (its CPU affinity: with
    /// pinning, the fleet's set), not the machine's count (`machine_cores`).
    pub cores: usize,
    /// Logical cores of the machine (online CPUs). Absent (0) in files
    /// before version 5.
    #[serde(default)]
    pub machine_cores: usize,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// `rustc --version` at build time or run time; `unknown` if unavailable.
    pub rustc: String,
    /// The command line that produced the run.
    pub command_line: Vec<String>,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// Which cores the server and the fleet ran on.
    pub placement: Placement,
}

/// Which cores the server and the fleet were pinned to (empty: not pinned).
///
/// Server and fleet share the machine; pinned apart, neither steals the
/// other's core, and the fleet's own saturation is visible in its CPU use
/// instead of appearing as the server's latency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Placement {
    /// The placement asked for (`auto`, `none`, `server:0,fleet:1`).
    pub spec: String,
    /// Cores the server process was pinned to (empty: not pinned).
    pub server_cpus: Vec<usize>,
    /// Cores the fleet (the harness process) ran on, as observed.
    pub fleet_cpus: Vec<usize>,
    /// Why the placement is what it is (e.g. not pinned on a 1-core machine).
    pub note: String,
}

/// A fleet that used at least this share of its cores over the window is
/// saturated: its own queueing is in every latency it records.
pub const FLEET_CPU_BOUND: f64 = 0.90;

/// A fleet whose lag probe woke this late at p99 is behind its own schedule.
pub const FLEET_LAG_BOUND_US: u64 = 20_000;

/// Everything measured for one transport.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransportResult {
    /// Which transport (for a target: the protocol its clients spoke).
    #[schemars(with = "TransportName")]
    pub transport: TransportKind,
    /// The foreign server measured, by its name under the scenario's
    /// `targets`; `null` for pushbench's own push-server (and in files
    /// written before targets existed, hence the default when reading).
    #[serde(default)]
    pub target: Option<String>,
    /// Which repetition of this transport this entry is (1-based).
    pub repetition: u32,
    /// Whether the verify step passed: every expected event delivered exactly
    /// once and in order, every client connected. Speed figures of an
    /// unverified transport must not be presented as valid.
    pub verified: bool,
    /// Whether this transport's window ended before its planned end
    /// (Ctrl-C, or its server died or was lost): its figures cover only
    /// the window up to then, and the run is not `complete`.
    #[serde(default)]
    pub ended_early: bool,
    /// Why verification failed (empty when verified).
    pub problems: Vec<String>,
    /// Clients in the fleet.
    pub clients: usize,
    /// Clients that connected (received a first response / opened a stream).
    pub clients_connected: usize,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// Start of the measured window, µs since the Unix epoch (events scheduled
    /// in `[window_start_us, window_start_us + window_s)` are counted).
    pub window_start_us: u64,
    /// Event counters over the measured window, summed over clients.
    pub counts: Counts,
    /// Delivered events per second over the window (all clients together).
    pub delivered_per_s: f64,
    /// Latency (receive time − scheduled emission time), µs.
    pub latency: Summary,
    /// Connection set-up time, µs.
    pub connect: Summary,
    /// Serialised histograms (HDR V2 + deflate, base64), µs.
    pub histograms: Histograms,
    /// Bytes and requests counted at the server's sockets (`None`: its
    /// `/stats` could not be read at both ends of the window).
    pub wire: Option<Wire>,
    /// The server's CPU and memory from `/proc` (`None`: not a local process
    /// of ours, e.g. `--target`).
    pub server: Option<ServerUsage>,
    /// The fleet's own CPU, memory and scheduling lag.
    pub fleet: FleetUsage,
    /// The kernel's TCP events over the measured window (`null`: not read,
    /// e.g. run.json written before they were).
    #[serde(default)]
    pub kernel_tcp: Option<TcpEvents>,
    /// Resource samples every 250 ms from the server's start to its stop.
    pub timeline: Vec<Sample>,
    /// The server's settings as its `/stats` reports them (`config`), kept
    /// as free JSON so a report states whatever the server says (buffers
    /// included); `null` when unknown.
    #[schemars(schema_with = "object_or_null_schema")]
    pub server_config: serde_json::Value,
    /// Faults injected during the window and how clients recovered from them
    /// (empty figures for a run without faults). Absent in files written
    /// before faults existed, hence the default when reading.
    #[serde(default)]
    pub recovery: Recovery,
    /// The sweep point this entry was measured at (`null` outside a sweep;
    /// the scenario's `sweep` describes the grid).
    #[serde(default)]
    pub point: Option<SweepPoint>,
    /// Chat: messages sent upstream by some clients and their round trip
    /// back through the broadcast (`null`: not a chat run).
    #[serde(default)]
    pub chat: Option<ChatResult>,
    /// What the clients' habits did (pings, reading pauses, unexpected
    /// messages; zero for polite clients). Absent in files before version 5.
    #[serde(default)]
    pub habits: Habits,
    /// The floor's entry of the same repetition, attached when a report is
    /// rendered (never stored) so that ratio metrics are functions of one
    /// entry.
    #[serde(skip)]
    pub floor: Option<Box<TransportResult>>,
    /// Mixed run (`[[group]]`): each client group's own figures, measured
    /// at the same time against this entry's one server. This entry's
    /// `counts`, `latency` and `connect` are then those of all groups
    /// together, `transport` is the first group's, and `wire`, `server`,
    /// `fleet` and `timeline` are shared by the groups (one server, one
    /// fleet). Empty outside a mixed run (and in files written before).
    #[serde(default)]
    pub groups: Vec<GroupResult>,
}

/// One client group of a mixed run: what it was asked to do, and its
/// client-side figures in the shape of a transport's entry (its `wire`,
/// `server` and `timeline` are empty: those belong to the shared server).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GroupResult {
    /// The group's name (the scenario's `[[group]]` `name`).
    pub name: String,
    /// The server's topic index of the group's first topic (`t{first_topic}`).
    pub first_topic: u32,
    /// The group's topics.
    pub topics: u32,
    /// Events per second per topic of the group.
    pub rate: f64,
    /// Its clients' figures: verification, counts, latency, connect, chat.
    pub result: TransportResult,
}

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

fn tick_s() -> f64 {
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

/// Where the JSON Schema of `run.json` is kept, relative to the repository root.
pub const RUN_SCHEMA_FILE: &str = "schemas/run.schema.json";

/// The JSON Schema (draft 2020-12) of `run.json`, generated from the types
/// of this module.
///
/// [`RUN_SCHEMA_FILE`] is this value, pretty-printed, and a test checks that
/// they are equal: the published schema cannot drift from the code. It
/// describes what pushbench writes, which is stricter than what it reads:
/// every field is required (none is ever skipped; an absent value is written
/// as `null`), and every object except the free-form `server_config` admits
/// no other keys.
pub fn run_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    // The serialisation contract: a field is required unless it is skipped
    // when serialised, which no field of run.json is.
    generator.into_root_schema_for::<RunFile>().to_value()
}

impl TransportResult {
    /// An entry for `transport` with nothing measured yet: repetition 1, not
    /// verified, no problems, no clients, every figure zero or absent. The
    /// runner and tests fill in what they measured with struct-update syntax
    /// (`TransportResult { clients, ..TransportResult::empty(t) }`), so the
    /// full field list is written once.
    pub fn empty(transport: TransportKind) -> Self {
        Self {
            transport,
            target: None,
            repetition: 1,
            verified: false,
            ended_early: false,
            problems: Vec::new(),
            clients: 0,
            clients_connected: 0,
            window_s: 0.0,
            window_start_us: 0,
            counts: Counts::default(),
            delivered_per_s: 0.0,
            latency: Summary::default(),
            connect: Summary::default(),
            histograms: Histograms::default(),
            wire: None,
            server: None,
            fleet: FleetUsage::default(),
            kernel_tcp: None,
            timeline: Vec::new(),
            server_config: serde_json::Value::Null,
            recovery: Recovery::default(),
            point: None,
            chat: None,
            habits: Habits::default(),
            floor: None,
            groups: Vec::new(),
        }
    }

    /// The name this entry runs under in `transports`: the transport's
    /// (`sse`) or the target's (`django-eventstream`); a mixed run's is `mixed`.
    pub fn name(&self) -> &str {
        if self.is_mixed() {
            return "mixed";
        }
        self.target.as_deref().unwrap_or(self.transport.as_str())
    }

    /// Whether this is push-server's raw-TCP floor.
    pub fn is_floor(&self) -> bool {
        self.target.is_none() && self.transport.is_floor()
    }

    /// The label of reports: `SSE`, or `django-eventstream (SSE)` for a
    /// target, or `mixed (idle SSE + busy WebSocket)` for a mixed run.
    pub fn label(&self) -> String {
        if self.is_mixed() {
            let groups: Vec<String> = self.groups.iter().map(GroupResult::label).collect();
            return format!("mixed ({})", groups.join(" + "));
        }
        entry_label(self.transport, self.target.as_deref())
    }

    /// Whether this is a mixed run's entry (it has client groups).
    pub fn is_mixed(&self) -> bool {
        !self.groups.is_empty()
    }
}

impl GroupResult {
    /// The label of reports: `idle SSE`.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.result.transport.label())
    }
}

/// The label of reports for `transport` as served by `target` (`None`: push-server).
pub fn entry_label(transport: TransportKind, target: Option<&str>) -> String {
    match target {
        Some(name) => format!("{name} ({})", transport.label()),
        None => transport.label().to_string(),
    }
}

/// The schema of [`TransportKind`] as results write it. Kept here so the
/// protocol crate stays free of schema concerns.
pub(crate) struct TransportName;

impl JsonSchema for TransportName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TransportKind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = TransportKind::ALL.iter().map(|t| t.as_str()).collect();
        schemars::json_schema!({
            "description": "A transport: short-poll, long-poll, sse, ws, or tcp (the raw-TCP floor).",
            "type": "string",
            "enum": names,
        })
    }
}

/// The schema of `scenario`: the keys of [`Scenario`](crate::scenario::Scenario)
/// as it serialises them, all required, plus `target` for a `--target` run.
///
/// Derived from the default scenario's JSON rather than written out, so a
/// key added to the scenario appears here without anyone remembering to.
/// Types are read off the default values (a key whose default is `null`
/// accepts any value).
fn scenario_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use serde_json::{Value, json};
    let default = crate::scenario::Scenario::default().to_json();
    let mut properties = serde_json::Map::new();
    for (key, value) in default.as_object().into_iter().flatten() {
        let schema = match value {
            Value::Null => json!({}),
            Value::Bool(_) => json!({"type": "boolean"}),
            Value::Number(n) if n.is_u64() => json!({"type": "integer", "minimum": 0}),
            Value::Number(_) => json!({"type": "number"}),
            Value::String(_) => json!({"type": "string"}),
            Value::Array(_) if key == "transports" => json!({
                "type": "array",
                "items": {
                    "description": "A built-in transport (short-poll, long-poll, sse, ws, tcp) or the name of a target declared in `targets`.",
                    "type": "string",
                },
            }),
            Value::Array(_) => json!({"type": "array"}),
            Value::Object(_) => json!({"type": "object"}),
        };
        properties.insert(key.clone(), schema);
    }
    let mut required: Vec<&String> = properties.keys().collect();
    required.sort();
    let required = json!(required);
    properties.insert(
        "target".to_string(),
        json!({
            "description": "Base URL of the server measured with --target (absent otherwise).",
            "type": "string",
        }),
    );
    schemars::json_schema!({
        "description": "The scenario as run (after command-line overrides).",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The schema of a free-form JSON object, or `null` when unknown.
fn object_or_null_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["object", "null"]})
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

/// Name of the results file inside a run directory.
pub const RUN_FILE: &str = "run.json";

/// Writes `dir/run.json` (pretty JSON), creating `dir` if needed.
///
/// The file is written atomically (temporary file in the same directory, then
/// rename), so a crash or a concurrent `pushbench report` never sees half a file.
pub fn write_run(dir: &Path, run: &RunFile) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating results directory {}", dir.display()))?;
    let mut json = serde_json::to_vec_pretty(run).context("serialising run.json")?;
    json.push(b'\n');
    write_atomic(&dir.join(RUN_FILE), &json)
}

/// Reads and checks `dir/run.json`.
///
/// Errors name the file and say what is wrong with it: missing, not JSON, not a
/// pushbench results file, or written with a `schema_version` this build does
/// not know (reading it as if it were ours would silently mislabel figures).
pub fn read_run(dir: &Path) -> anyhow::Result<RunFile> {
    let path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_run(&text).with_context(|| format!("{} is not a usable pushbench run", path.display()))
}

/// Parses the text of a `run.json`, checking `schema_version` before the layout.
///
/// The version is checked first so that a file from a newer (or older)
/// pushbench gets a message about versions rather than a confusing
/// "missing field" error.
pub fn parse_run(text: &str) -> anyhow::Result<RunFile> {
    let value: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
    let version = match value.get("schema_version") {
        None => bail!("no `schema_version` field: not a pushbench run.json"),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| anyhow!("`schema_version` is {v}, expected a whole number"))?,
    };
    if !(u64::from(OLDEST_READ_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&version) {
        bail!(
            "schema_version {version} is not supported: this pushbench ({}) reads schema_version \
             {OLDEST_READ_VERSION} to {SCHEMA_VERSION}; use the pushbench that wrote the run, or re-run it",
            env!("CARGO_PKG_VERSION")
        );
    }
    serde_json::from_value(value).context("does not match the run.json layout")
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory
/// is written, flushed to disk and renamed over `path`.
///
/// Used for every derived file too (`report.md`, SVG plots), so readers (a
/// browser, a CI artefact upload) never see a truncated file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".pushbench-").suffix(".tmp");
    // Temporary files are private (0600) by default; results are meant to be
    // read by others (CI artefacts, a web server), so make them 0644 like any file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_through_base64() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in [10, 250, 1_000, 123_456] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(Summary::from_histogram(&back), Summary::from_histogram(&h));
        assert!(decode_histogram("not base64!").is_err());
    }
}
