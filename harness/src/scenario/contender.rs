//! Who is measured: a built-in transport of push-server, or a foreign
//! server ([`TargetSpec`]) started by its own command and measured the same way.

use anyhow::bail;
use protocol::TransportKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::scenario::check::fmt_duration;

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
pub(crate) fn default_ready_path() -> String {
    "/healthz".to_string()
}

/// Default of [`TargetSpec::ready_timeout`]: a Python stack may take
/// several seconds to import and migrate before it answers.
pub(crate) fn default_ready_timeout() -> Duration {
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
    pub(crate) fn validate(&self, name: &str) -> anyhow::Result<()> {
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
