//! A scaled-out entry's own figures: its servers behind a broker, and its
//! fleet agents with their clock offsets.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How an entry was spread over processes (`null` for one push-server and
/// a fleet in one process, and in files before).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ScaleFigures {
    /// push-server processes; the entry's `server` figures are their sum.
    pub servers: usize,
    /// The broker between them (`redis`), or `null`.
    pub broker: Option<String>,
    /// The broker process's CPU seconds over the window (`null` without one
    /// or when it could not be read at both ends).
    pub broker_cpu_s: Option<f64>,
    /// Events the schedule published in the window (every topic), what
    /// the broker carried once each.
    #[serde(default)]
    pub events_in_window: u64,
    /// The broker's resident memory at the window's end, bytes.
    pub broker_rss_bytes: Option<u64>,
    /// Fleet agents (0: the fleet ran in the coordinator); the entry's
    /// `fleet` figures are the coordinator's and every agent's, summed.
    pub agents: usize,
    /// Each agent's clock against the coordinator's, in agent order.
    pub agent_clocks: Vec<ClockOffset>,
}

/// An agent's clock against the coordinator's, from an NTP-style
/// exchange: `offset_us` = agent − coordinator at the exchange's midpoint,
/// true within ± `bound_us` (half the shortest round trip).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClockOffset {
    /// Agent clock minus coordinator clock, µs.
    pub offset_us: i64,
    /// How far off `offset_us` can be, µs.
    pub bound_us: u64,
}
