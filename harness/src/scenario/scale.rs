//! Beyond one process: the scenario keys `servers`, `broker` and `agents`,
//! and what they may be combined with.
//!
//! One process here holds at most its open-file limit in sockets, so one
//! push-server and one fleet each top out near it. `servers = N` runs N
//! push-servers sharing one event stream through Redis (`broker =
//! "redis"`); `agents = N` runs the fleet in N `pushbench agent`
//! processes. A run's clients are then bounded by the fewer of the two
//! sides' processes times one process's limit.

use crate::scenario::broker::Broker;
use crate::scenario::{Contender, FaultKind, Scenario};
use anyhow::bail;

/// Most push-server processes behind one broker.
pub const MAX_SERVERS: usize = 64;

/// Most fleet agents.
pub const MAX_AGENTS: usize = 64;

impl Scenario {
    /// The processes a run's clients spread over on its narrower side:
    /// the fleet's (1, or `agents`) or the servers'.
    pub fn processes(&self) -> usize {
        self.agents.max(1).min(self.servers.max(1))
    }

    /// Whether the run's servers share their events through a broker.
    pub fn brokered(&self) -> bool {
        self.broker != Broker::None
    }

    /// Checks `servers`, `broker` and `agents`, and what they may be
    /// combined with; the message names what is not built yet.
    pub(crate) fn validate_scale(&self) -> anyhow::Result<()> {
        if self.servers < 1 || self.servers > MAX_SERVERS {
            bail!(
                "`servers` must be between 1 and {MAX_SERVERS}, got {}",
                self.servers
            );
        }
        if self.agents > MAX_AGENTS {
            bail!(
                "`agents` must be between 0 and {MAX_AGENTS} (0: the fleet runs in this \
                 process), got {}",
                self.agents
            );
        }
        if self.servers > 1 && !self.brokered() {
            bail!(
                "`servers = {}` needs a broker to share one event stream: set `broker = \
                 \"redis\"` (or --broker redis)",
                self.servers
            );
        }
        if self.brokered() {
            let why_not = if self
                .transports
                .iter()
                .any(|t| matches!(t, Contender::Target(_)))
            {
                Some("a [targets] entry (only push-server speaks to a broker)")
            } else if self.is_chat() {
                Some("chat (`senders`): with a broker only the publishing server assigns ids")
            } else if self.is_mixed() {
                Some("`[[group]]` (mixed runs) yet")
            } else if self.servers < 2
                && self
                    .faults
                    .iter()
                    .any(|f| f.kind != FaultKind::BrokerRestart)
            {
                Some(
                    "`faults` on one server (they hit server 2, which only reads; set `servers` to 2 or more)",
                )
            } else if !self.link_spec().is_ok_and(|l| l.is_loopback()) {
                Some("a `link` other than loopback yet")
            } else {
                None
            };
            if let Some(why) = why_not {
                bail!(
                    "`broker = \"{}\"` cannot be combined with {why}",
                    self.broker.as_str()
                );
            }
        }
        if !self.brokered()
            && self
                .faults
                .iter()
                .any(|f| f.kind == FaultKind::BrokerRestart)
        {
            bail!(
                "a `broker-restart` fault needs servers behind a broker (`broker = \"redis\"` or \
                 \"redis-pubsub\"`)"
            );
        }
        if self.agents > 0 {
            let why_not = if self.is_chat() {
                Some("chat (`senders`) yet")
            } else if !self.faults.is_empty() {
                Some("`faults` yet")
            } else if !self.link_spec().is_ok_and(|l| l.is_loopback()) {
                Some("a `link` other than loopback yet")
            } else {
                None
            };
            if let Some(why) = why_not {
                bail!("`agents` cannot be combined with {why}");
            }
        }
        Ok(())
    }
}

impl Scenario {
    /// What would let a fleet larger than one process's limit run, for the
    /// message refusing it.
    pub(crate) fn more_processes_hint(&self) -> String {
        match (self.agents <= 1, self.servers <= 1) {
            (true, true) => "; `agents` and `servers` (with `broker = \"redis\"`) spread \
                             clients over more processes"
                .to_string(),
            (true, false) => "; `agents` spreads the fleet over more processes".to_string(),
            (false, true) => {
                "; `servers` (with `broker = \"redis\"`) spreads them over more servers".to_string()
            }
            (false, false) => format!(
                " in each of min(agents, servers) = {} processes",
                self.processes()
            ),
        }
    }
}
