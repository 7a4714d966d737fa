//! The fleet of one transport's run, wherever its clients run: in this
//! process ([`Fleet`]) or in agent processes ([`AgentFleet`]). Either way
//! the end is the same: totals per part, counted against the schedule.

use hdrhistogram::Histogram;

use crate::agent::remote::AgentFleet;
use crate::fleet::parts::{Part, Slice, tally};
use crate::fleet::{self, Fleet};
use crate::recorder::Totals;

/// The fleet of one transport's run.
pub(crate) enum AnyFleet {
    /// Every client in this process.
    Local(Fleet),
    /// Client `i` in agent `i % agents`.
    Agents(AgentFleet),
}

/// What the stopped fleet counted.
pub(super) struct Counted {
    /// Totals per part.
    pub(super) part_totals: Vec<Totals>,
    /// What went wrong while stopping.
    pub(super) problems: Vec<String>,
    /// The agents' timer lag in the window, merged (`None`: no agents).
    pub(super) agent_lag: Option<Histogram<u64>>,
}

impl AnyFleet {
    /// Clients that have connected at least once.
    pub(crate) fn connected(&self) -> usize {
        match self {
            AnyFleet::Local(f) => f.connected(),
            AnyFleet::Agents(a) => a.connected(),
        }
    }

    /// Why the fleet cannot go on (an agent died), if so.
    pub(crate) fn failure(&self) -> Option<String> {
        match self {
            AnyFleet::Local(_) => None,
            AnyFleet::Agents(a) => a.failure(),
        }
    }

    /// Passes the measured window on to the agents (a local fleet reads
    /// the shared [`crate::recorder::Window`] itself).
    pub(super) async fn set_window(&mut self, start_us: u64, end_us: u64) {
        if let AnyFleet::Agents(a) = self {
            a.set_window(start_us, end_us).await;
        }
    }

    /// Passes a cut of the window on to the agents.
    pub(super) async fn cut(&mut self, end_us: u64) {
        if let AnyFleet::Agents(a) = self {
            a.cut(end_us).await;
        }
    }

    /// Stops every client (bounded) and counts each part's clients against
    /// the schedule over `window` (chat's last ids and fault outages as
    /// [`tally`] takes them; agents take neither).
    pub(super) async fn stop(
        self,
        parts: &[Part],
        chat_last: &[Option<Vec<u64>>],
        window: (u64, u64),
        outage_times: &[(u64, u64, usize)],
    ) -> Counted {
        match self {
            AnyFleet::Local(f) => {
                let outcome = f.stop(fleet::STOP_TIMEOUT).await;
                Counted {
                    part_totals: tally(
                        parts,
                        Slice::ALL,
                        outcome.recorders,
                        chat_last,
                        window,
                        outage_times,
                    ),
                    problems: outcome.problems,
                    agent_lag: None,
                }
            }
            AnyFleet::Agents(a) => {
                let outcome = a.stop(parts, window).await;
                Counted {
                    part_totals: outcome.part_totals,
                    problems: outcome.problems,
                    agent_lag: Some(outcome.lag),
                }
            }
        }
    }
}
