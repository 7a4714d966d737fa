//! The scenario: what to measure, read from TOML and checked before anything runs.
//!
//! The embedded default (`scenarios/default.toml`) holds a value for every
//! key. A scenario file and the command line are both a [`ScenarioPatch`]:
//! every key optional, present keys replace the default's. One field list
//! (the `scenario_fields!` invocation below) generates both types, so they
//! cannot drift apart.
//!
//! Durations are humantime strings (`"3s"`, `"500ms"`, `"1m 30s"`). Unknown
//! keys are rejected (a misspelt key silently ignored would measure the wrong
//! thing), and [`Scenario::validate`] rejects values that cannot run, naming
//! the key and the allowed range.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use protocol::TransportKind;
use serde::{Deserialize, Serialize};

use crate::behaviour::Behaviour;
use crate::sweep::{Sweep, SweepPoint};

/// The embedded default scenario (`scenarios/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../../scenarios/default.toml");

/// File descriptors kept free beyond one per client: stdio, the runtime's
/// epoll and wake pipes, the server's stdout pipe and log file, DNS or
/// reconnect overlap. A fleet closer to the limit than this would fail in
/// the middle of a run with `EMFILE` instead of being refused up front.
const FD_HEADROOM_MIN: u64 = 100;

/// Generates [`Scenario`] (every key required) and [`ScenarioPatch`] (every
/// key optional) from one list of fields, plus [`Scenario::apply`].
macro_rules! scenario_fields {
    ($( $(#[$meta:meta])* $field:ident : $ty:ty, )*) => {
        /// What to measure: the workload, the fleet and the timing of a run.
        ///
        /// Serialised as-is into `run.json` (durations as humantime strings).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Scenario {
            $( $(#[$meta])* pub $field: $ty, )*
        }

        /// Changes to a [`Scenario`]: the keys of a scenario file, or the
        /// command-line flags. `None` keeps the current value.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ScenarioPatch {
            $( $(#[$meta])* #[serde(default)] pub $field: Option<$ty>, )*
        }

        impl Scenario {
            /// Replaces every value that `patch` sets.
            pub fn apply(&mut self, patch: ScenarioPatch) {
                $( if let Some(v) = patch.$field { self.$field = v; } )*
            }
        }
    };
}

scenario_fields! {
    /// Name of the run; results go to `results/<name>/` unless `--out` says otherwise.
    name: String,
    /// One sentence saying what this scenario shows.
    description: String,
    /// Transports to measure, in this order (each at most once); `tcp`, the
    /// raw-TCP floor, goes last so every report can show ratios to it. A
    /// name declared under `targets` runs that foreign server in its place.
    transports: Vec<Contender>,
    /// Runs of each transport; repetitions alternate the order (ABCD DCBA …).
    repeat: u32,
    /// Placement: `auto` (server on one core, fleet on the others), `none`,
    /// or `server:0,fleet:1`.
    pin: String,
    /// Simulated clients, one connection each; client `i` subscribes to topic `t{i % topics}`.
    clients: usize,
    /// Number of topics (`t0 … t{topics-1}`); 0 in a file means one per
    /// client (resolved by [`Scenario::resolve_topics`] once `clients` is final).
    topics: u32,
    /// Events per second per topic (fractional allowed; 0 = no events).
    rate: f64,
    /// Size of each event's `data` filler, bytes.
    payload_bytes: usize,
    /// Events the server keeps per topic for resuming and polling clients.
    history: usize,
    /// Named SSE event type for all topics (`None`: the default `message` type).
    event_type: Option<String>,
    /// Time the fleet runs before the measured window opens.
    #[serde(with = "humantime_serde")]
    warmup: Duration,
    /// Length of the measured window.
    #[serde(with = "humantime_serde")]
    duration: Duration,
    /// Short polling: each client's request interval.
    #[serde(with = "humantime_serde")]
    poll_interval: Duration,
    /// Long polling: how long the server may hold a request.
    #[serde(with = "humantime_serde")]
    longpoll_timeout: Duration,
    /// New connections per second while the fleet ramps up.
    connect_rate: f64,
    /// Bound on establishing one connection (or receiving response headers).
    #[serde(with = "humantime_serde")]
    connect_timeout: Duration,
    /// Pause before a client reconnects after a failure.
    #[serde(with = "humantime_serde")]
    reconnect_delay: Duration,
    /// SSE and WebSocket: a stream silent this long is deemed dead and reconnected.
    #[serde(with = "humantime_serde")]
    idle_timeout: Duration,
    /// SSE `retry:` value the server sends once per stream, ms.
    retry_ms: u64,
    /// push-server's fan-out (`direct` or `tasks`, its `--fanout`).
    fanout: protocol::Fanout,
    /// Server keep-alive (SSE comment, WebSocket ping) after this much silence.
    #[serde(with = "humantime_serde")]
    keepalive: Duration,
    /// Faults injected into every transport's run, at offsets from the
    /// start of the measured window (empty: none).
    faults: Vec<Fault>,
    /// Values of `clients`, `rate` and `payload_bytes` to measure at: the
    /// grid is their product (see [`crate::sweep`]); an empty table: no sweep.
    sweep: Sweep,
    /// Foreign servers (not built by pushbench), by name, each started by a
    /// command and measured like push-server when `transports` names it.
    targets: BTreeMap<String, TargetSpec>,
    /// Chat: how many of the clients also send messages on their topic
    /// (clients `0 … senders-1`, so senders spread over the topics); 0 = none.
    senders: usize,
    /// Chat: messages per second per sender, on a fixed open-loop schedule
    /// during the measured window.
    send_rate: f64,
    /// Mixed run (`[[group]]` in a file): client groups of their own
    /// transport and workload, all against one server in one run (see
    /// [`Group`]); empty: the usual one transport at a time. With groups,
    /// `transports`, `clients`, `topics`, `rate`, `senders` and `send_rate`
    /// are derived from them ([`Scenario::resolve_topics`]).
    group: Vec<Group>,
    /// What clients do besides listening (WebSocket pings, reading pauses,
    /// unexpected messages; [`crate::behaviour`]); empty: polite clients.
    /// A group's own `behaviour` replaces it for that group.
    behaviour: Behaviour,
}

/// One entry of `transports`: a built-in transport served by push-server,
/// or the name of a target declared under `[targets]`.
///
/// Written as a plain string either way; a string that is not a built-in
/// transport's name is a target name, checked by [`Scenario::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Contender {
    /// `short-poll`, `long-poll`, `sse`, `ws` or `tcp`, served by push-server.
    Builtin(TransportKind),
    /// A key of the scenario's `targets`.
    Target(String),
}

impl Contender {
    /// The name written in `transports` (and on the command line).
    pub fn name(&self) -> &str {
        match self {
            Contender::Builtin(t) => t.as_str(),
            Contender::Target(name) => name,
        }
    }
}

impl From<TransportKind> for Contender {
    fn from(t: TransportKind) -> Self {
        Contender::Builtin(t)
    }
}

impl PartialEq<TransportKind> for Contender {
    fn eq(&self, other: &TransportKind) -> bool {
        *self == Contender::Builtin(*other)
    }
}

/// Built-in transports as `transports` entries.
pub fn builtins(transports: &[TransportKind]) -> Vec<Contender> {
    transports.iter().map(|&t| t.into()).collect()
}

impl std::fmt::Display for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Contender {
    type Err = std::convert::Infallible;
    /// Never fails: a name that is no built-in is a target's, which
    /// [`Scenario::validate`] checks against the declared targets.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(s.parse::<TransportKind>()
            .map_or_else(|_| Contender::Target(s.to_string()), Contender::Builtin))
    }
}

/// Default of [`TargetSpec::ready_path`].
fn default_ready_path() -> String {
    "/healthz".to_string()
}

/// Default of [`TargetSpec::ready_timeout`]: a Python stack may take
/// several seconds to import and migrate before it answers.
fn default_ready_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Bound on [`TargetSpec::ready_timeout`].
pub const MAX_READY_TIMEOUT: Duration = Duration::from_secs(600);

/// A foreign server: how to start it and where its streams are.
///
/// The harness runs `command` with the schedule in `PUSHBENCH_*` environment
/// variables (see the README's "Measuring your own server"), waits until
/// `GET ready_path` answers 200, measures it like push-server, and stops its
/// process group at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The protocol its clients speak: `sse` or `ws`.
    pub transport: TransportKind,
    /// Program and arguments; a relative program path is relative to the
    /// directory pushbench runs in (the repository root in the README).
    pub command: Vec<String>,
    /// Path and query of one topic's stream, `{topic}` standing for the
    /// topic name, e.g. `/events/?channel={topic}`.
    pub path: String,
    /// Path that answers 200 once the server is ready (default `/healthz`).
    #[serde(default = "default_ready_path")]
    pub ready_path: String,
    /// Bound on the server becoming ready (default 60s, at most 10m).
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub ready_timeout: Duration,
}

impl TargetSpec {
    /// Checks one target's keys; messages name `targets.NAME.KEY`.
    fn validate(&self, name: &str) -> anyhow::Result<()> {
        let key = |k: &str| format!("`targets.{name}.{k}`");
        let names_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !names_ok || name.parse::<TransportKind>().is_ok() {
            bail!(
                "target name {name:?} must be 1 to 64 letters, digits, `-`, `_` or `.` and not \
                 a built-in transport's name (it labels results and log files)"
            );
        }
        if !matches!(self.transport, TransportKind::Sse | TransportKind::Ws) {
            bail!(
                "{} must be sse or ws (the protocols a foreign server is measured with), got {}",
                key("transport"),
                self.transport
            );
        }
        if self.command.first().is_none_or(|p| p.trim().is_empty()) {
            bail!(
                "{} must name a program (and its arguments), got {:?}",
                key("command"),
                self.command
            );
        }
        if !self.path.starts_with('/') || !self.path.contains("{topic}") {
            bail!(
                "{} must start with `/` and contain `{{topic}}`, got {:?}",
                key("path"),
                self.path
            );
        }
        if !self.ready_path.starts_with('/') {
            bail!(
                "{} must start with `/`, got {:?}",
                key("ready_path"),
                self.ready_path
            );
        }
        if self.ready_timeout.is_zero() || self.ready_timeout > MAX_READY_TIMEOUT {
            bail!(
                "{} must be between 1ms and {}, got {}",
                key("ready_timeout"),
                fmt_duration(MAX_READY_TIMEOUT),
                fmt_duration(self.ready_timeout)
            );
        }
        Ok(())
    }
}

/// One client group of a mixed run (`[[group]]`): its own transport,
/// fleet and topics, measured at the same time as the other groups against
/// the same server.
///
/// Each group has its own range of topics (the server's `--topic-group`),
/// generated at its own `rate`, so every client's expected ids come from
/// its group's schedule alone, and verification stays exact per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The group's name (letters, digits, `-`, `_`), unique in the scenario.
    pub name: String,
    /// What its clients speak: short-poll, long-poll, sse or ws.
    pub transport: TransportKind,
    /// Clients in the group, one connection each.
    pub clients: usize,
    /// The group's topics; client `j` of the group is on its topic
    /// `j % topics`; 0 = one per client.
    #[serde(default = "one")]
    pub topics: u32,
    /// Events per second per topic of the group (0 = none: a chat group).
    #[serde(default)]
    pub rate: f64,
    /// Chat: how many of the group's clients also send on their topic.
    #[serde(default)]
    pub senders: usize,
    /// Chat: messages per second per sender.
    #[serde(default = "one_per_s")]
    pub send_rate: f64,
    /// The group's client habits (`[group.behaviour]`); absent: the
    /// scenario's `[behaviour]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<Behaviour>,
}

fn one() -> u32 {
    1
}

fn one_per_s() -> f64 {
    1.0
}

/// Top-level keys a mixed scenario's groups decide, and which group key decides each.
const GROUP_DECIDES: [(&str, &str); 6] = [
    ("transports", "transport"),
    ("clients", "clients"),
    ("topics", "topics"),
    ("rate", "rate"),
    ("senders", "senders"),
    ("send_rate", "send_rate"),
];

impl Group {
    /// The scenario of this group's clients alone: `base` with the group's
    /// transport, fleet, topics, rate and chat keys. Fleets, expected counts
    /// and chat checks are built from it exactly as for a one-transport run.
    pub fn scenario(&self, base: &Scenario) -> Scenario {
        let mut s = base.clone();
        s.group = Vec::new();
        s.transports = vec![self.transport.into()];
        s.clients = self.clients;
        s.topics = self.topics;
        s.rate = self.rate;
        s.senders = self.senders;
        s.send_rate = self.send_rate;
        if let Some(b) = &self.behaviour {
            s.behaviour = b.clone();
        }
        s
    }

    /// The checks of one group (`i` is its place in `[[group]]`).
    fn validate(&self, i: usize, fd_limit: Option<u64>) -> anyhow::Result<()> {
        let key = |k: &str| format!("`group[{i}].{k}`");
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !name_ok {
            bail!(
                "`group[{i}].name` must be 1 to 32 letters, digits, `-` or `_`, got {:?}",
                self.name
            );
        }
        if self.transport == TransportKind::Tcp {
            bail!(
                "{} must be one of short-poll, long-poll, sse, ws (the raw-TCP floor is a \
                 reference, not something clients of a deployment speak), got tcp (group `{}`)",
                key("transport"),
                self.name
            );
        }
        if self.clients < 1 {
            bail!(
                "{} must be at least 1, got 0 (group `{}`)",
                key("clients"),
                self.name
            );
        }
        // The group's own values, checked by the one-transport rules with its key names.
        let mut alone = Group::scenario(self, &Scenario::default());
        alone.resolve_topics();
        alone.validate_with_fd_limit(fd_limit).map_err(|e| {
            // The one-transport message names the top-level key: name the group's.
            let msg = e.to_string().replacen('`', &format!("`group[{i}]."), 1);
            anyhow::anyhow!("{msg} (group `{}`)", self.name)
        })?;
        Ok(())
    }
}

/// Most messages per second per chat sender.
pub const MAX_SEND_RATE: f64 = 1000.0;

/// Bound on a restart's pause: a longer outage measures nothing more.
pub const MAX_FAULT_PAUSE: Duration = Duration::from_secs(60);

/// What a [`Fault`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Abruptly reset `fraction` of the open connections (`POST /admin/drop`).
    Drop,
    /// A reconnect storm: reset every open connection at once.
    Storm,
    /// SIGKILL the server, wait `pause`, start it again on the same port
    /// with the same schedule (ids continue; history is lost).
    Restart,
}

impl FaultKind {
    /// The kind as scenario files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Storm => "storm",
            Self::Restart => "restart",
        }
    }
}

/// One fault of a scenario: `{ at = "4s", kind = "drop", fraction = 0.5 }`,
/// `{ at = "8s", kind = "restart", pause = "1s" }`, `{ at = "12s", kind = "storm" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Offset from the start of the measured window.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What happens.
    pub kind: FaultKind,
    /// Drop: the share of open connections to reset, in `(0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Restart: how long the server stays down.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub pause: Option<Duration>,
}

impl Fault {
    /// The share of connections a drop or storm resets (`None` for a restart).
    pub fn drop_fraction(&self) -> Option<f64> {
        match self.kind {
            FaultKind::Drop => self.fraction,
            FaultKind::Storm => Some(1.0),
            FaultKind::Restart => None,
        }
    }

    /// Parses the command line's `--fault` value: `KIND@AT[:ARG]`, e.g.
    /// `drop@4s:0.5`, `restart@8s:1s`, `storm@12s`.
    pub fn parse_spec(spec: &str) -> anyhow::Result<Self> {
        let (kind, rest) = spec.split_once('@').with_context(|| {
            format!(
                "fault {spec:?}: expected KIND@AT[:ARG], e.g. drop@4s:0.5, restart@8s:1s, storm@12s"
            )
        })?;
        let (at, arg) = match rest.split_once(':') {
            Some((at, arg)) => (at, Some(arg)),
            None => (rest, None),
        };
        let at = humantime::parse_duration(at.trim())
            .with_context(|| format!("fault {spec:?}: bad time {at:?}"))?;
        let mut fault = Fault {
            at,
            kind: match kind.trim() {
                "drop" => FaultKind::Drop,
                "storm" => FaultKind::Storm,
                "restart" => FaultKind::Restart,
                other => bail!("fault {spec:?}: unknown kind {other:?} (drop, storm, restart)"),
            },
            fraction: None,
            pause: None,
        };
        match (fault.kind, arg) {
            (FaultKind::Drop, Some(f)) => {
                fault.fraction =
                    Some(f.trim().parse().with_context(|| {
                        format!("fault {spec:?}: fraction {f:?} is not a number")
                    })?);
            }
            (FaultKind::Restart, Some(p)) => {
                fault.pause = Some(
                    humantime::parse_duration(p.trim())
                        .with_context(|| format!("fault {spec:?}: bad pause {p:?}"))?,
                );
            }
            (FaultKind::Storm, Some(_)) => bail!("fault {spec:?}: a storm takes no argument"),
            (_, None) => {}
        }
        Ok(fault)
    }

    /// Checks one fault against a measured window of length `window`.
    fn validate(&self, i: usize, window: Duration) -> anyhow::Result<()> {
        let name = format!("`faults[{i}]` ({})", self.kind.as_str());
        if self.at >= window {
            bail!(
                "{name}: `at` ({}) must fall inside the measured window (shorter than `duration`, {})",
                fmt_duration(self.at),
                fmt_duration(window)
            );
        }
        match self.kind {
            FaultKind::Drop => match self.fraction {
                Some(f) if f.is_finite() && f > 0.0 && f <= 1.0 => {}
                Some(f) => bail!("{name}: `fraction` must be above 0 and at most 1, got {f}"),
                None => bail!("{name}: `fraction` is required (above 0, at most 1)"),
            },
            FaultKind::Storm | FaultKind::Restart if self.fraction.is_some() => {
                bail!("{name}: `fraction` applies to drop only (a storm drops every connection)")
            }
            _ => {}
        }
        match (self.kind, self.pause) {
            (FaultKind::Restart, None) => bail!("{name}: `pause` is required (e.g. \"1s\")"),
            (FaultKind::Restart, Some(p)) if p > MAX_FAULT_PAUSE => bail!(
                "{name}: `pause` must be at most {}, got {}",
                fmt_duration(MAX_FAULT_PAUSE),
                fmt_duration(p)
            ),
            (FaultKind::Drop | FaultKind::Storm, Some(_)) => {
                bail!("{name}: `pause` applies to restart only")
            }
            _ => {}
        }
        Ok(())
    }
}

impl Default for Scenario {
    /// The embedded default scenario (`scenarios/default.toml`).
    fn default() -> Self {
        // The embedded file is part of the binary and checked by a unit test.
        toml::from_str(DEFAULT_TOML).expect("the embedded default scenario parses")
    }
}

impl Scenario {
    /// Reads a scenario file: the default scenario with the file's keys applied.
    ///
    /// A file that does not name itself is named after the file (`fanout.toml`
    /// → `fanout`), and one without a description gets none, rather than the
    /// default scenario's, which would describe a different workload.
    ///
    /// Errors name the file, the line and column, and what is wrong (an
    /// unknown key is named, with the keys that are allowed).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario file {}", path.display()))?;
        let mut patch =
            parse_patch(&text).with_context(|| format!("scenario file {}", path.display()))?;
        check_group_patch(&patch).with_context(|| format!("scenario file {}", path.display()))?;
        if patch.name.is_none() {
            patch.name = path
                .file_stem()
                .map(|stem| sanitize_name(&stem.to_string_lossy()));
        }
        patch.description.get_or_insert_with(String::new);
        let mut s = Scenario::default();
        s.apply(patch);
        Ok(s)
    }

    /// The default scenario with the keys of `text` (TOML) applied.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let patch = parse_patch(text)?;
        check_group_patch(&patch)?;
        let mut s = Scenario::default();
        s.apply(patch);
        Ok(s)
    }

    /// Resolves `topics = 0` (one topic per client) against the final
    /// `clients`, so the stored scenario names the real number.
    ///
    /// A sweep over `clients` keeps 0: each point resolves it against its own
    /// fleet ([`Scenario::at`]).
    ///
    /// A mixed scenario resolves each group's `topics = 0` against the
    /// group's clients, then derives the run's `transports` (the groups'
    /// in order, each once), `clients` and `topics` (the groups' sums);
    /// `rate` and `senders` become 0: each group has its own.
    pub fn resolve_topics(&mut self) {
        if self.topics == 0 && self.sweep.clients.is_none() {
            self.topics = u32::try_from(self.clients).unwrap_or(u32::MAX);
        }
        if self.group.is_empty() {
            return;
        }
        let mut transports: Vec<Contender> = Vec::new();
        for g in &mut self.group {
            if g.topics == 0 {
                g.topics = u32::try_from(g.clients).unwrap_or(u32::MAX);
            }
            let t = Contender::from(g.transport);
            if !transports.contains(&t) {
                transports.push(t);
            }
        }
        self.transports = transports;
        self.clients = self.group.iter().map(|g| g.clients).sum();
        self.topics = self
            .group
            .iter()
            .fold(0u32, |n, g| n.saturating_add(g.topics));
        self.rate = 0.0;
        self.senders = 0;
    }

    /// Whether this is a mixed run (`[[group]]`).
    pub fn is_mixed(&self) -> bool {
        !self.group.is_empty()
    }

    /// The server's topic groups of a mixed run, one per client group, in order.
    pub fn topic_groups(&self) -> Vec<protocol::schedule::TopicGroup> {
        self.group
            .iter()
            .map(|g| protocol::schedule::TopicGroup {
                name: g.name.clone(),
                topics: g.topics,
                rate: g.rate,
            })
            .collect()
    }

    /// The placement asked for (the `pin` key), parsed.
    pub fn pin_spec(&self) -> anyhow::Result<crate::placement::PinSpec> {
        self.pin
            .parse()
            .with_context(|| format!("`pin` {:?} is not auto, none or server:N,fleet:M", self.pin))
    }

    /// The points this scenario measures at: its sweep's grid, or (no sweep)
    /// the one point of its own values.
    pub fn points(&self) -> Vec<SweepPoint> {
        self.sweep
            .points(self.clients, self.rate, self.payload_bytes)
    }

    /// The scenario of one point: the point's values, no sweep, and
    /// `topics = 0` resolved against the point's fleet.
    pub fn at(&self, p: &SweepPoint) -> Scenario {
        let mut s = self.clone();
        s.clients = p.clients;
        s.rate = p.rate;
        s.payload_bytes = p.payload_bytes;
        s.sweep = Sweep::default();
        s.resolve_topics();
        s
    }

    /// The scenario as a JSON value (what `run.json` stores).
    pub fn to_json(&self) -> serde_json::Value {
        // Strings, numbers, lists and humantime strings: cannot fail.
        serde_json::to_value(self).expect("a scenario serialises")
    }

    /// Checks every value, with the open-file limit of this process.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.validate_with_fd_limit(open_file_limit())
    }

    /// Checks every value; `fd_limit` is the open-file limit the fleet must
    /// fit in (`None` when unknown: no client bound beyond sanity).
    ///
    /// The message names the key, the allowed range and the value given.
    ///
    /// A sweep is checked list by list, then point by point: every point must
    /// be a valid scenario (fit the open-file limit, say), and the first that
    /// is not is named, before anything runs.
    pub fn validate_with_fd_limit(&self, fd_limit: Option<u64>) -> anyhow::Result<()> {
        if self.is_mixed() {
            self.validate_groups(fd_limit)?;
        }
        if self.sweep.is_active() {
            self.sweep.validate()?;
            let points = self.points();
            let n = points.len();
            for p in &points {
                self.at(p)
                    .validate_with_fd_limit(fd_limit)
                    .with_context(|| format!("sweep point {} of {n} ({p})", p.index))?;
            }
            return Ok(());
        }
        check_name(&self.name)?;
        self.behaviour.validate("behaviour", self.idle_timeout)?;
        if self.transports.is_empty() {
            let names: Vec<&str> = TransportKind::ALL.iter().map(|t| t.as_str()).collect();
            bail!(
                "`transports` is empty: name at least one of {} (or a declared target)",
                names.join(", ")
            );
        }
        let mut seen = BTreeSet::new();
        for t in &self.transports {
            if !seen.insert(t) {
                bail!("`transports` names `{t}` twice: each transport runs at most once");
            }
            if let Contender::Target(name) = t
                && !self.targets.contains_key(name)
            {
                let builtins: Vec<&str> = TransportKind::ALL.iter().map(|t| t.as_str()).collect();
                let declared: Vec<&str> = self.targets.keys().map(String::as_str).collect();
                bail!(
                    "`transports` names `{name}`, which is neither a built-in transport ({}) \
                     nor a declared target ({})",
                    builtins.join(", "),
                    if declared.is_empty() {
                        "none declared under [targets]".to_string()
                    } else {
                        declared.join(", ")
                    }
                );
            }
        }
        for (name, target) in &self.targets {
            target.validate(name)?;
        }
        let max_clients = max_clients(fd_limit);
        if self.clients < 1 || self.clients as u64 > max_clients {
            let why = match fd_limit {
                Some(l) => {
                    format!(" (the open-file limit is {l}; one file per client plus headroom)")
                }
                None => String::new(),
            };
            bail!(
                "`clients` must be between 1 and {max_clients}{why}, got {}",
                self.clients
            );
        }
        if self.topics < 1 || self.topics > 1_000_000 {
            bail!(
                "`topics` must be between 1 and 1000000 (0 in a scenario file means one per \
                 client), got {}",
                self.topics
            );
        }
        if self.repeat < 1 || self.repeat > 100 {
            bail!("`repeat` must be between 1 and 100, got {}", self.repeat);
        }
        self.pin_spec()?;
        if !self.rate.is_finite() || self.rate < 0.0 || self.rate > 1_000_000.0 {
            bail!(
                "`rate` (events/s per topic) must be a number between 0 and 1000000, got {}",
                self.rate
            );
        }
        if self.payload_bytes > 1 << 20 {
            bail!(
                "`payload_bytes` must be between 0 and 1048576 (1 MiB), got {}",
                self.payload_bytes
            );
        }
        if self.history < 1 || self.history > 10_000_000 {
            bail!(
                "`history` must be between 1 and 10000000 events, got {}",
                self.history
            );
        }
        if let Some(ty) = &self.event_type
            && (ty.is_empty() || ty.chars().any(|c| c.is_control()))
        {
            bail!("`event_type` must be a non-empty name without control characters, got {ty:?}");
        }
        positive("duration", self.duration)?;
        positive("poll_interval", self.poll_interval)?;
        positive("longpoll_timeout", self.longpoll_timeout)?;
        positive("connect_timeout", self.connect_timeout)?;
        positive("keepalive", self.keepalive)?;
        for (key, d) in [
            ("warmup", self.warmup),
            ("duration", self.duration),
            ("poll_interval", self.poll_interval),
            ("longpoll_timeout", self.longpoll_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reconnect_delay", self.reconnect_delay),
            ("idle_timeout", self.idle_timeout),
            ("keepalive", self.keepalive),
        ] {
            // A day bounds every wait of a run and keeps µs arithmetic far from overflow.
            if d > Duration::from_secs(86_400) {
                bail!("`{key}` must be at most 24h, got {}", fmt_duration(d));
            }
        }
        if self.idle_timeout <= self.keepalive {
            bail!(
                "`idle_timeout` ({}) must be longer than `keepalive` ({}), or idle streams \
                 would be torn down between keep-alives",
                fmt_duration(self.idle_timeout),
                fmt_duration(self.keepalive)
            );
        }
        if !self.connect_rate.is_finite() || self.connect_rate <= 0.0 {
            bail!(
                "`connect_rate` (connections/s) must be a number above 0, got {}",
                self.connect_rate
            );
        }
        for (i, f) in self.faults.iter().enumerate() {
            f.validate(i, self.duration)?;
        }
        if self.faults.windows(2).any(|w| w[1].at < w[0].at) {
            bail!("`faults` must be in order of `at`");
        }
        self.validate_chat()?;
        if self.retry_ms > 86_400_000 {
            bail!(
                "`retry_ms` must be between 0 and 86400000, got {}",
                self.retry_ms
            );
        }
        Ok(())
    }
}

impl Scenario {
    /// The `[[group]]` keys of a mixed run: each group valid on its own,
    /// names unique, the whole fleet within the open-file limit, and nothing
    /// a mixed run cannot do (a sweep, faults).
    fn validate_groups(&self, fd_limit: Option<u64>) -> anyhow::Result<()> {
        for (i, g) in self.group.iter().enumerate() {
            if let Some(j) = self.group[..i].iter().position(|h| h.name == g.name) {
                bail!(
                    "`group[{i}].name` must differ from every other group's, got {:?} (also group[{j}])",
                    g.name
                );
            }
            g.validate(i, fd_limit)?;
        }
        let total: usize = self.group.iter().map(|g| g.clients).sum();
        let max = max_clients(fd_limit);
        if total as u64 > max {
            let why = fd_limit.map_or(String::new(), |l| {
                format!(" (the open-file limit is {l}; one file per client plus headroom)")
            });
            bail!(
                "the groups' `clients` must add up to at most {max}{why}, got {total}: one \
                 fleet process runs every group"
            );
        }
        if self.sweep.is_active() {
            bail!(
                "`sweep` must be empty with `[[group]]`: a mixed run measures its groups at \
                 their own values (run one scenario per mix instead)"
            );
        }
        if !self.faults.is_empty() {
            bail!("`faults` must be empty with `[[group]]`: faults are not measured in mixed runs");
        }
        Ok(())
    }

    /// Whether this is a chat scenario (some clients send).
    pub fn is_chat(&self) -> bool {
        self.senders > 0
    }

    /// The chat keys: a sender count the fleet holds, a usable rate, no
    /// generated events to mix with the messages (their ids would shift),
    /// and only transports with an upstream path.
    fn validate_chat(&self) -> anyhow::Result<()> {
        if self.senders > self.clients {
            bail!(
                "`senders` must be between 0 and `clients` ({}), got {}",
                self.clients,
                self.senders
            );
        }
        if !self.send_rate.is_finite() || self.send_rate <= 0.0 || self.send_rate > MAX_SEND_RATE {
            bail!(
                "`send_rate` (messages/s per sender) must be above 0 and at most {MAX_SEND_RATE}, got {}",
                self.send_rate
            );
        }
        if !self.is_chat() {
            return Ok(());
        }
        if self.rate != 0.0 {
            bail!(
                "`rate` must be 0 when `senders` > 0 (chat): every event on a chat topic is a \
                 message, so each subscriber's ids can be checked against the server's; got {}",
                self.rate
            );
        }
        if self.transports.contains(&TransportKind::Tcp.into()) {
            bail!(
                "`transports` must not include tcp when `senders` > 0 (chat): the raw-TCP floor \
                 has no upstream path; use sse, ws, long-poll, short-poll"
            );
        }
        if let Some(target) = self
            .transports
            .iter()
            .find(|c| matches!(c, Contender::Target(_)))
        {
            bail!(
                "`transports` must not name a target when `senders` > 0 (chat): senders publish \
                 through push-server's POST /publish and WebSocket messages, got `{target}`"
            );
        }
        if !self.faults.is_empty() {
            bail!(
                "`faults` must be empty when `senders` > 0 (chat): faults are not measured in chat runs"
            );
        }
        Ok(())
    }
}

/// A file with `[[group]]` must leave the keys its groups decide to them:
/// a top-level `rate` beside groups with their own would be silently
/// meaningless.
fn check_group_patch(patch: &ScenarioPatch) -> anyhow::Result<()> {
    if patch.group.as_ref().is_none_or(Vec::is_empty) {
        return Ok(());
    }
    let set = [
        patch.transports.is_some(),
        patch.clients.is_some(),
        patch.topics.is_some(),
        patch.rate.is_some(),
        patch.senders.is_some(),
        patch.send_rate.is_some(),
    ];
    if let Some(((key, group_key), _)) = GROUP_DECIDES.iter().zip(set).find(|(_, s)| *s) {
        bail!("`{key}` must not be set beside `[[group]]`: each group sets its own `{group_key}`");
    }
    Ok(())
}

/// Parses the keys of a scenario file.
fn parse_patch(text: &str) -> anyhow::Result<ScenarioPatch> {
    toml::from_str(text).map_err(|e| toml_error(text, &e))
}

/// A valid `name` made from `s` (other characters become `-`).
fn sanitize_name(s: &str) -> String {
    let name: String = s
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        "scenario".to_string()
    } else {
        name
    }
}

/// Formats a duration the way scenario files write it (`1s 500ms`).
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn positive(key: &str, d: Duration) -> anyhow::Result<()> {
    if d.is_zero() {
        bail!("`{key}` must be longer than 0 (e.g. \"500ms\", \"3s\"), got 0");
    }
    Ok(())
}

/// The name becomes a directory under `results/`: keep it to one safe path component.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!(
            "`name` must be 1 to 100 characters of letters, digits, `-`, `_` or `.` \
             (it names the results directory), got {name:?}"
        );
    }
    Ok(())
}

/// The largest fleet that fits in `fd_limit` open files, keeping headroom.
pub fn max_clients(fd_limit: Option<u64>) -> u64 {
    match fd_limit {
        // 5% or FD_HEADROOM_MIN, whichever is larger.
        Some(l) => l.saturating_sub((l / 20).max(FD_HEADROOM_MIN)),
        // Unknown limit: the machine facts (20,000 files per process) are the sanity bound.
        None => 20_000,
    }
}

/// The soft `RLIMIT_NOFILE` of this process (what `open` actually enforces),
/// or `None` if it cannot be read or is unlimited.
pub fn open_file_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which is valid
    // and properly aligned for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    (rc == 0 && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
}

/// Raises the soft `RLIMIT_NOFILE` of this process to its hard limit and
/// returns the soft limit now in force (`None`: unknown or unlimited). The
/// fleet is then refused only when it cannot fit what the machine allows,
/// not what a shell's default happened to be; a failure leaves the limit as
/// it was (and validation reports the fleet that does not fit it).
pub fn raise_open_file_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass,
    // which is valid and properly aligned for the duration of each call.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                tracing::debug!("could not raise RLIMIT_NOFILE to {}", rl.rlim_max);
            }
        }
    }
    open_file_limit()
}

/// Turns a TOML error into one line: `line L, column C: message`.
///
/// toml's own `Display` draws a multi-line snippet; the CLI prints errors on
/// one line, so the position is computed from the span instead.
fn toml_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            anyhow::anyhow!("line {line}, column {col}: {message}")
        }
        None => anyhow::anyhow!("{message}"),
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &Scenario) -> String {
        format!("{:#}", s.validate_with_fd_limit(Some(20_000)).unwrap_err())
    }

    #[test]
    fn default_parses_and_validates() {
        let s = Scenario::default();
        assert_eq!(s.name, "default");
        assert_eq!(s.transports, TransportKind::ALL.to_vec(), "the floor last");
        assert_eq!(s.repeat, 1);
        assert_eq!(s.pin, "auto");
        assert_eq!(s.clients, 100);
        assert_eq!(s.topics, 1);
        assert_eq!(s.rate, 10.0);
        assert_eq!(s.payload_bytes, 64);
        assert_eq!(s.warmup, Duration::from_secs(3));
        assert_eq!(s.duration, Duration::from_secs(10));
        assert_eq!(s.poll_interval, Duration::from_secs(1));
        assert_eq!(s.event_type, None);
        s.validate_with_fd_limit(Some(20_000)).unwrap();
    }

    #[test]
    fn default_file_sets_every_key() {
        // The strict `Scenario` (no optional keys except `event_type`) parses
        // the embedded file directly: nothing relies on a fallback.
        let strict: Scenario = toml::from_str(DEFAULT_TOML).unwrap();
        assert_eq!(strict, Scenario::default());
    }

    #[test]
    fn a_file_changes_only_its_keys() {
        let s = Scenario::from_toml(
            "name = \"tiny\"\nclients = 4\nduration = \"2s\"\npoll_interval = \"200ms\"\n\
             transports = [\"sse\"]\nevent_type = \"status\"\n",
        )
        .unwrap();
        assert_eq!(s.name, "tiny");
        assert_eq!(s.clients, 4);
        assert_eq!(s.duration, Duration::from_secs(2));
        assert_eq!(s.poll_interval, Duration::from_millis(200));
        assert_eq!(s.transports, vec![TransportKind::Sse]);
        assert_eq!(s.event_type.as_deref(), Some("status"));
        assert_eq!(s.rate, Scenario::default().rate);
    }

    #[test]
    fn chat_keys_are_checked_with_the_key_the_range_and_the_value() {
        let chat = "senders = 3\nsend_rate = 2.0\nrate = 0.0\nclients = 10\n\
                    transports = [\"sse\", \"ws\", \"long-poll\", \"short-poll\"]\n";
        let s = Scenario::from_toml(chat).unwrap();
        assert!(s.is_chat());
        s.validate_with_fd_limit(Some(20_000)).unwrap();
        type Change = fn(&mut Scenario);
        let cases: [(Change, &str); 6] = [
            (
                |s| s.senders = 11,
                "`senders` must be between 0 and `clients` (10), got 11",
            ),
            (
                |s| s.send_rate = 0.0,
                "`send_rate` (messages/s per sender) must be above 0 and at most 1000, got 0",
            ),
            (|s| s.send_rate = 5000.0, "got 5000"),
            (
                |s| s.rate = 5.0,
                "`rate` must be 0 when `senders` > 0 (chat)",
            ),
            (
                |s| s.transports = builtins(&[TransportKind::Ws, TransportKind::Tcp]),
                "`transports` must not include tcp when `senders` > 0",
            ),
            (
                |s| s.faults = vec![Fault::parse_spec("storm@1s").unwrap()],
                "`faults` must be empty when `senders` > 0",
            ),
        ];
        for (change, want) in cases {
            let mut bad = s.clone();
            change(&mut bad);
            let msg = err(&bad);
            assert!(msg.contains(want), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
        // Without senders the generator and the floor are as usual.
        assert!(!Scenario::default().is_chat());
    }

    #[test]
    fn unknown_key_is_rejected_by_name_with_position() {
        let e = Scenario::from_toml("clients = 3\nclinets = 5\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("clinets"), "{msg}");
        assert!(msg.contains("line 2, column 1"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "bogus = 1\n").unwrap();
        let msg = format!("{:#}", Scenario::load(&path).unwrap_err());
        assert!(msg.contains("bad.toml") && msg.contains("bogus"), "{msg}");
        let msg = format!(
            "{:#}",
            Scenario::load(&dir.path().join("none.toml")).unwrap_err()
        );
        assert!(msg.contains("none.toml"), "{msg}");
    }

    #[test]
    fn a_file_without_name_is_named_after_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fan out.toml");
        std::fs::write(&path, "clients = 5\n").unwrap();
        let s = Scenario::load(&path).unwrap();
        assert_eq!(s.name, "fan-out");
        assert_eq!(s.description, "", "not the default scenario's description");
        s.validate_with_fd_limit(Some(20_000)).unwrap();
        std::fs::write(&path, "name = \"x\"\ndescription = \"d\"\n").unwrap();
        let s = Scenario::load(&path).unwrap();
        assert_eq!((s.name.as_str(), s.description.as_str()), ("x", "d"));
    }

    #[test]
    fn bad_duration_and_bad_types_are_rejected() {
        let msg = format!(
            "{:#}",
            Scenario::from_toml("duration = \"abc\"").unwrap_err()
        );
        assert!(msg.contains("line 1"), "{msg}");
        assert!(Scenario::from_toml("duration = 5").is_err());
        assert!(Scenario::from_toml("clients = -1").is_err());
        // Parsed as a target's name, then refused: none is declared.
        let s = Scenario::from_toml("transports = [\"carrier-pigeon\"]").unwrap();
        let msg = s.validate_with_fd_limit(None).unwrap_err().to_string();
        assert!(msg.contains("`carrier-pigeon`"), "{msg}");
    }

    #[test]
    fn each_validation_names_its_key() {
        type Change = Box<dyn Fn(&mut Scenario)>;
        let cases: Vec<(&str, Change)> = vec![
            ("`clients`", Box::new(|s| s.clients = 0)),
            ("`clients`", Box::new(|s| s.clients = 19_001)),
            ("`rate`", Box::new(|s| s.rate = -1.0)),
            ("`rate`", Box::new(|s| s.rate = f64::NAN)),
            ("`rate`", Box::new(|s| s.rate = f64::INFINITY)),
            ("`duration`", Box::new(|s| s.duration = Duration::ZERO)),
            (
                "`poll_interval`",
                Box::new(|s| s.poll_interval = Duration::ZERO),
            ),
            ("`history`", Box::new(|s| s.history = 0)),
            ("`transports`", Box::new(|s| s.transports.clear())),
            (
                "`transports` names `sse` twice",
                Box::new(|s| s.transports = builtins(&[TransportKind::Sse, TransportKind::Sse])),
            ),
            ("`topics`", Box::new(|s| s.topics = 0)),
            ("`repeat`", Box::new(|s| s.repeat = 0)),
            ("`pin`", Box::new(|s| s.pin = "server:0".into())),
            ("`connect_rate`", Box::new(|s| s.connect_rate = 0.0)),
            ("`name`", Box::new(|s| s.name = "../etc".into())),
            (
                "`event_type`",
                Box::new(|s| s.event_type = Some("a\nb".into())),
            ),
            (
                "`idle_timeout`",
                Box::new(|s| s.idle_timeout = Duration::from_secs(1)),
            ),
        ];
        for (needle, change) in cases {
            let mut s = Scenario::default();
            change(&mut s);
            let msg = err(&s);
            assert!(msg.contains(needle), "expected {needle} in: {msg}");
        }
    }

    #[test]
    fn client_bound_follows_the_open_file_limit() {
        assert_eq!(max_clients(Some(20_000)), 19_000);
        assert_eq!(max_clients(Some(1024)), 924);
        let s = Scenario {
            clients: 1000,
            ..Scenario::default()
        };
        let msg = format!("{:#}", s.validate_with_fd_limit(Some(1024)).unwrap_err());
        assert!(
            msg.contains("between 1 and 924") && msg.contains("1024"),
            "{msg}"
        );
        assert!(open_file_limit().is_some_and(|l| l > 0));
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        let get = || {
            let mut rl = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: writes into the struct we pass.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
            rl
        };
        let hard = get().rlim_max;
        if hard == libc::RLIM_INFINITY || hard < 256 {
            return; // nothing meaningful to lower and raise on this machine
        }
        // Lower the soft limit a little (other tests keep plenty of room), then raise it.
        let lowered = libc::rlimit {
            rlim_cur: hard - 16,
            rlim_max: hard,
        };
        // SAFETY: reads the struct we pass.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        assert_eq!(open_file_limit(), Some(hard - 16));
        assert_eq!(raise_open_file_limit(), Some(hard));
        assert_eq!(get().rlim_cur, hard);
    }

    #[test]
    fn zero_topics_means_one_per_client() {
        let mut s = Scenario::from_toml("topics = 0\nclients = 37\n").unwrap();
        s.resolve_topics();
        assert_eq!(s.topics, 37);
        s.validate_with_fd_limit(Some(20_000)).unwrap();
        let mut s = Scenario::default();
        s.resolve_topics();
        assert_eq!(s.topics, 1, "a real number stays");
    }

    #[test]
    fn shipped_scenarios_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let mut s = Scenario::load(&path).unwrap();
                s.resolve_topics();
                s.validate_with_fd_limit(Some(20_000))
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                // Chat has no floor: the raw-TCP transport has no upstream
                // path; a mixed run's groups are deployments, never the floor.
                if !s.is_chat() && !s.is_mixed() {
                    assert_eq!(
                        s.transports.last(),
                        Some(&Contender::Builtin(TransportKind::Tcp)),
                        "{}",
                        path.display()
                    );
                }
                n += 1;
            }
        }
        assert!(n >= 3, "default, ci and notifications at least");
    }

    #[test]
    fn json_keeps_durations_readable() {
        let v = Scenario::default().to_json();
        assert_eq!(v["duration"], "10s");
        assert_eq!(v["transports"][0], "short-poll");
        let back: Scenario = serde_json::from_value(v).unwrap();
        assert_eq!(back, Scenario::default());
    }

    #[test]
    fn faults_parse_from_toml_and_the_command_line() {
        let p = parse_patch(
            r#"faults = [{ at = "4s", kind = "drop", fraction = 0.5 },
                         { at = "8s", kind = "restart", pause = "1s" },
                         { at = "12s", kind = "storm" }]"#,
        )
        .unwrap();
        let faults = p.faults.unwrap();
        assert_eq!(faults.len(), 3);
        assert_eq!(faults[0].drop_fraction(), Some(0.5));
        assert_eq!(faults[1].pause, Some(Duration::from_secs(1)));
        assert_eq!(
            faults[2].drop_fraction(),
            Some(1.0),
            "a storm drops everything"
        );
        assert_eq!(Fault::parse_spec("drop@4s:0.5").unwrap(), faults[0]);
        assert_eq!(Fault::parse_spec("restart@8s:1s").unwrap(), faults[1]);
        assert_eq!(Fault::parse_spec("storm@12s").unwrap(), faults[2]);
        for bad in [
            "drop",
            "melt@1s",
            "drop@soon",
            "drop@1s:half",
            "storm@1s:0.5",
            "restart@1s:x",
        ] {
            assert!(Fault::parse_spec(bad).is_err(), "{bad}");
        }
        let unknown = parse_patch(r#"faults = [{ at = "1s", kind = "drop", fracton = 0.5 }]"#);
        assert!(unknown.is_err(), "unknown fault keys are refused");
        // Faults round-trip through run.json's scenario.
        let s = Scenario {
            faults,
            duration: Duration::from_secs(20),
            ..Scenario::default()
        };
        let back: Scenario = serde_json::from_value(s.to_json()).unwrap();
        assert_eq!(back.faults, s.faults);
    }

    #[test]
    fn faults_are_validated_against_the_window() {
        let with = |spec: &str| {
            let s = Scenario {
                duration: Duration::from_secs(10),
                faults: vec![Fault::parse_spec(spec).unwrap()],
                ..Scenario::default()
            };
            s.validate_with_fd_limit(None).map_err(|e| e.to_string())
        };
        assert!(with("drop@4s:0.5").is_ok());
        assert!(
            with("drop@10s:0.5")
                .unwrap_err()
                .contains("inside the measured window")
        );
        assert!(
            with("drop@1s")
                .unwrap_err()
                .contains("`fraction` is required")
        );
        assert!(with("drop@1s:1.5").unwrap_err().contains("at most 1"));
        assert!(with("drop@1s:0").unwrap_err().contains("above 0"));
        assert!(
            with("restart@1s")
                .unwrap_err()
                .contains("`pause` is required")
        );
        assert!(with("restart@1s:2m").unwrap_err().contains("at most 1m"));
        let s = Scenario {
            duration: Duration::from_secs(10),
            faults: vec![
                Fault::parse_spec("storm@5s").unwrap(),
                Fault::parse_spec("storm@2s").unwrap(),
            ],
            ..Scenario::default()
        };
        let e = s.validate_with_fd_limit(None).unwrap_err().to_string();
        assert!(e.contains("in order"), "{e}");
    }

    #[test]
    fn targets_are_named_in_transports_and_their_keys_checked() {
        let base = r#"
            transports = ["sse", "django-eventstream"]
            [targets.django-eventstream]
            transport = "sse"
            command = ["targets/django-eventstream/run.sh"]
            path = "/events/?channel={topic}"
        "#;
        let s = Scenario::from_toml(base).unwrap();
        s.validate_with_fd_limit(None).unwrap();
        assert_eq!(
            s.transports,
            vec![
                Contender::Builtin(TransportKind::Sse),
                Contender::Target("django-eventstream".into())
            ]
        );
        let t = &s.targets["django-eventstream"];
        assert_eq!(t.ready_path, "/healthz");
        assert_eq!(t.ready_timeout, Duration::from_secs(60));
        for (change, needle) in [
            (
                ("transport = \"sse\"", "transport = \"long-poll\""),
                "`targets.django-eventstream.transport` must be sse or ws",
            ),
            (
                ("path = \"/events/?channel={topic}\"", "path = \"/events/\""),
                "`targets.django-eventstream.path` must start with `/` and contain `{topic}`, got \"/events/\"",
            ),
            (
                (
                    "command = [\"targets/django-eventstream/run.sh\"]",
                    "command = []",
                ),
                "`targets.django-eventstream.command` must name a program",
            ),
            (
                ("path =", "ready_timeout = \"0s\"\npath ="),
                "`targets.django-eventstream.ready_timeout` must be between 1ms and 10m, got 0s",
            ),
        ] {
            let s = Scenario::from_toml(&base.replace(change.0, change.1)).unwrap();
            let msg = s.validate_with_fd_limit(None).unwrap_err().to_string();
            assert!(msg.contains(needle), "{msg}");
        }
        let s = Scenario::from_toml(&base.replace("django-eventstream", "ws")).unwrap();
        let msg = s.validate_with_fd_limit(None).unwrap_err().to_string();
        assert!(msg.contains("not a built-in transport's name"), "{msg}");
        let msg = Scenario::from_toml(&format!("{base}\nready_pth = \"/x\""))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("ready_pth"), "{msg}");
    }

    const TWO_GROUPS: &str = r#"
        [[group]]
        name = "idle"
        transport = "sse"
        clients = 8
        topics = 0
        rate = 0.5

        [[group]]
        name = "busy"
        transport = "ws"
        clients = 4
        rate = 20.0
    "#;

    fn mixed(extra: &str) -> anyhow::Result<Scenario> {
        let mut s = Scenario::from_toml(&format!("{extra}\n{TWO_GROUPS}"))?;
        s.resolve_topics();
        Ok(s)
    }

    #[test]
    fn groups_decide_the_fleet_and_get_disjoint_topic_ranges() {
        let s = mixed("").unwrap();
        s.validate_with_fd_limit(Some(20_000)).unwrap();
        assert!(s.is_mixed());
        assert_eq!(s.clients, 12, "the groups' sum");
        assert_eq!(s.topics, 9, "8 per-client topics + 1 hot topic");
        let ts: Vec<&str> = s.transports.iter().map(Contender::name).collect();
        assert_eq!(ts, ["sse", "ws"]);
        assert_eq!((s.group[0].topics, s.group[1].topics), (8, 1));
        let ranges = protocol::schedule::TopicGroup::schedules(&s.topic_groups(), 1);
        assert_eq!(ranges[0].0, 0);
        assert_eq!(ranges[1].0, 8, "busy's topic is t8, after idle's t0…t7");
        assert_eq!((ranges[0].1.rate, ranges[1].1.rate), (0.5, 20.0));
        // A group's own scenario is a plain one-transport scenario.
        let busy = s.group[1].scenario(&s);
        assert!(!busy.is_mixed());
        assert_eq!((busy.clients, busy.topics, busy.rate), (4, 1, 20.0));
    }

    #[test]
    fn bad_groups_are_refused_naming_the_key_the_range_and_the_value() {
        let e = |extra: &str, edit: &dyn Fn(&mut Scenario)| {
            let mut s = mixed(extra).unwrap();
            edit(&mut s);
            s.validate_with_fd_limit(Some(20_000))
                .unwrap_err()
                .to_string()
        };
        let msg = e("", &|s| s.group[1].clients = 0);
        assert!(
            msg.contains("`group[1].clients` must be at least 1, got 0"),
            "{msg}"
        );
        let msg = e("", &|s| s.group[1].name = "idle".into());
        assert!(
            msg.contains("`group[1].name` must differ") && msg.contains("\"idle\""),
            "{msg}"
        );
        let msg = e("", &|s| s.group[0].name = "a b".into());
        assert!(msg.contains("`group[0].name` must be 1 to 32"), "{msg}");
        let msg = e("", &|s| s.group[1].transport = TransportKind::Tcp);
        assert!(
            msg.contains("`group[1].transport` must be one of") && msg.contains("got tcp"),
            "{msg}"
        );
        let msg = e("", &|s| s.group[1].rate = -1.0);
        assert!(
            msg.contains("`group[1].rate`") && msg.contains("got -1") && msg.contains("busy"),
            "{msg}"
        );
        let msg = e("", &|s| s.group[1].senders = 2);
        assert!(
            msg.contains("`group[1].rate` must be 0 when `senders` > 0"),
            "{msg}"
        );
        let msg = e("", &|s| s.group[0].clients = 19_000);
        assert!(
            msg.contains("add up to at most 19000") && msg.contains("got 19004"),
            "{msg}"
        );
        let msg = e("", &|s| {
            s.faults = vec![Fault::parse_spec("drop@1s:0.5").unwrap()]
        });
        assert!(
            msg.contains("`faults` must be empty with `[[group]]`"),
            "{msg}"
        );
        let msg = e("[sweep]\nclients = [10, 20]\n", &|_| {});
        assert!(
            msg.contains("`sweep` must be empty with `[[group]]`"),
            "{msg}"
        );
    }

    #[test]
    fn keys_the_groups_decide_are_refused_beside_them() {
        for (key, value, group_key) in [
            ("transports", "[\"sse\"]", "transport"),
            ("clients", "10", "clients"),
            ("rate", "1.0", "rate"),
            ("senders", "1", "senders"),
        ] {
            let err = mixed(&format!("{key} = {value}")).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{key}` must not be set beside `[[group]]`"))
                    && err.contains(&format!("its own `{group_key}`")),
                "{err}"
            );
        }
        let err = Scenario::from_toml(
            "[[group]]\nname = \"x\"\ntransport = \"sse\"\nclients = 1\nport = 3\n",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("port"), "{err:#}");
    }
}
