//! The results contract: what `run.json` holds.
//!
//! Raw first: counters and serialised HDR histograms per transport, plus the
//! scenario and provenance. Reports (`report.md`, plots) are derived from this
//! file alone, so `pushbench report DIR` can re-render them without re-running.
//! Bump [`SCHEMA_VERSION`] on any incompatible change. The JSON Schema of the
//! file, `schemas/run.schema.json`, is generated from these types
//! ([`run_schema`], `pushbench schema run`) and checked against real output.

use crate::scenario::sweep::SweepPoint;
use protocol::TransportKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod figures;
mod scale;
pub use scale::{ClockOffset, ScaleFigures};
pub mod io;
pub mod schema;
pub mod summary;
#[cfg(test)]
mod tests;

pub use figures::{
    BrowserFigures, CPU_QUANTISATION_MARK, ChatResult, Counts, FAULT_CPU_SPAN_S, FaultRecord,
    FleetUsage, Habits, Histograms, Recovery, Sample, ServerUsage, Summary, TcpEvents, Wire,
    WireCounts, decode_histogram, encode_histogram,
};

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
    /// What the browser clients of this entry saw (`--browser-clients`;
    /// `null` without them, for the raw-TCP floor, and in files before).
    #[serde(default)]
    pub browser: Option<BrowserFigures>,
    /// Servers behind a broker and fleet agents (`servers`, `broker`,
    /// `agents`); `null` for one server and a fleet in one process.
    #[serde(default)]
    pub scale: Option<ScaleFigures>,
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
            browser: None,
            scale: None,
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
pub(crate) fn scenario_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
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
pub(crate) fn object_or_null_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["object", "null"]})
}
