//! A mixed run's client groups (`[[group]]`): each its own transport and
//! workload, all against one server in one run, and their checks.

use crate::scenario::behaviour::Behaviour;
use protocol::TransportKind;
use serde::{Deserialize, Serialize};

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

pub(crate) fn one() -> u32 {
    1
}

pub(crate) fn one_per_s() -> f64 {
    1.0
}

/// Top-level keys a mixed scenario's groups decide, and which group key decides each.
pub(crate) const GROUP_DECIDES: [(&str, &str); 6] = [
    ("transports", "transport"),
    ("clients", "clients"),
    ("topics", "topics"),
    ("rate", "rate"),
    ("senders", "senders"),
    ("send_rate", "send_rate"),
];

/// Most messages per second per chat sender.
pub const MAX_SEND_RATE: f64 = 1000.0;
