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

use crate::scenario::behaviour::Behaviour;
use crate::scenario::check::sanitize_name;
use crate::scenario::check::toml_error;
use crate::scenario::group::GROUP_DECIDES;
use crate::scenario::group::MAX_SEND_RATE;
use crate::scenario::sweep::Sweep;
use crate::scenario::sweep::SweepPoint;
use crate::sys::open_file_limit;
use anyhow::{Context as _, bail};
use protocol::TransportKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub mod args;
pub mod behaviour;
pub mod broker;
pub mod check;
pub mod contender;
pub mod fault;
pub mod group;
pub mod lines;
pub mod mixed;
pub mod pin;
pub mod scale;
pub mod sweep;
mod validate;

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
pub(crate) fn check_group_patch(patch: &ScenarioPatch) -> anyhow::Result<()> {
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
pub(crate) fn parse_patch(text: &str) -> anyhow::Result<ScenarioPatch> {
    toml::from_str(text).map_err(|e| toml_error(text, &e))
}

#[cfg(test)]
mod tests;

pub use contender::{Contender, TargetSpec, builtins};
pub use fault::{Fault, FaultKind};
pub use group::Group;

/// The embedded default scenario (`scenarios/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../../../scenarios/default.toml");

/// Most browser pages per transport (`browser_clients`): each is a
/// Chromium renderer process of its own.
pub const MAX_BROWSER_CLIENTS: usize = 50;

/// File descriptors kept free beyond one per client: stdio, the runtime's
/// epoll and wake pipes, the server's stdout pipe and log file, DNS or
/// reconnect overlap. A fleet closer to the limit than this would fail in
/// the middle of a run with `EMFILE` instead of being refused up front.
pub(crate) const FD_HEADROOM_MIN: u64 = 100;

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
    /// grid is their product (see [`crate::scenario::sweep`]); an empty table: no sweep.
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
    /// unexpected messages; [`crate::scenario::behaviour`]); empty: polite clients.
    /// A group's own `behaviour` replaces it for that group.
    behaviour: Behaviour,
    /// The link between the fleet and the server: a profile (`loopback`,
    /// `lan`, `wifi`, `4g`, `3g`, `lossy-4g`), optionally with overrides
    /// (`4g,loss=2%`, `loopback,rtt=80ms`); anything but loopback runs every
    /// client through a relay process that emulates it ([`crate::link`]).
    link: String,
    /// Which emulator carries a link that is not loopback: `auto` (the
    /// kernel where it has what the link needs, else the relay), `relay` or
    /// `kernel` ([`crate::link::Emulator`]).
    link_emulator: crate::link::Emulator,
    /// Headless Chromium pages per transport beside the fleet, each a client
    /// using the browser's own API (`fetch` polling, `EventSource`,
    /// `WebSocket`; none for the raw-TCP floor), verified and timed like the
    /// fleet's ([`crate::browser`]); 0: none.
    browser_clients: usize,
    /// push-server processes sharing one event stream through `broker`;
    /// client `i` connects to server `i % servers` ([`crate::scenario::scale`]).
    servers: usize,
    /// The broker between servers: `none`, or `redis` (pushbench starts
    /// Debian's `redis-server` itself).
    broker: crate::scenario::broker::Broker,
    /// Fleet agents: 0 runs every client in this process; N runs client
    /// `i` in agent process `i % N` ([`crate::agent`]).
    agents: usize,
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
                event_type: None,
            })
            .collect()
    }

    /// The placement asked for (the `pin` key), parsed.
    pub fn pin_spec(&self) -> anyhow::Result<crate::scenario::pin::PinSpec> {
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
        s.link = p.link_of(&s.link);
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

    /// The link between the fleet and the server (`link`), parsed.
    pub fn link_spec(&self) -> anyhow::Result<crate::link::Link> {
        self.link
            .parse()
            .with_context(|| format!("`link` = {:?}", self.link))
    }
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
