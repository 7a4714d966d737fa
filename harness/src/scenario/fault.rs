//! Faults injected into a run at offsets from the start of the measured
//! window: server restarts, pauses, dropped connections.

use crate::scenario::check::fmt_duration;
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
    /// Servers behind a broker: SIGKILL Redis, wait `pause`, start it again
    /// on the same port, empty (nothing is saved to disk).
    #[serde(rename = "broker-restart")]
    BrokerRestart,
}

impl FaultKind {
    /// The kind as scenario files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Storm => "storm",
            Self::Restart => "restart",
            Self::BrokerRestart => "broker-restart",
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
            FaultKind::Restart | FaultKind::BrokerRestart => None,
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
                "broker-restart" => FaultKind::BrokerRestart,
                other => bail!(
                    "fault {spec:?}: unknown kind {other:?} (drop, storm, restart, broker-restart)"
                ),
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
            (FaultKind::Restart | FaultKind::BrokerRestart, Some(p)) => {
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
    pub(crate) fn validate(&self, i: usize, window: Duration) -> anyhow::Result<()> {
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
            FaultKind::Storm | FaultKind::Restart | FaultKind::BrokerRestart
                if self.fraction.is_some() =>
            {
                bail!("{name}: `fraction` applies to drop only (a storm drops every connection)")
            }
            _ => {}
        }
        match (self.kind, self.pause) {
            (FaultKind::Restart | FaultKind::BrokerRestart, None) => {
                bail!("{name}: `pause` is required (e.g. \"1s\")")
            }
            (FaultKind::Restart | FaultKind::BrokerRestart, Some(p)) if p > MAX_FAULT_PAUSE => {
                bail!(
                    "{name}: `pause` must be at most {}, got {}",
                    fmt_duration(MAX_FAULT_PAUSE),
                    fmt_duration(p)
                )
            }
            (FaultKind::Drop | FaultKind::Storm, Some(_)) => {
                bail!("{name}: `pause` applies to restart and broker-restart only")
            }
            _ => {}
        }
        Ok(())
    }
}
