//! What coordinator and agent say to each other: one JSON object per
//! line, the coordinator's on the agent's stdin, the agent's on its stdout.
//!
//! A run: `clock` a few times (the agent answers its time, for the clock
//! offset), `start` (the agent builds its slice of the fleet and starts
//! connecting; it reports `status` every [`STATUS_EVERY`]), `window` once
//! the measured window is fixed, and `stop`: the agent stops its clients,
//! counts each against the schedule and answers `done` with its totals per
//! part, histograms whole, so the coordinator merges them exactly.

use std::time::Duration;

use protocol::{Schedule, TransportKind};
use serde::{Deserialize, Serialize};

use crate::fleet::parts::{FleetTarget, Slice};
use crate::recorder::{ChatTotals, Totals};
use crate::results::{self, Counts, Habits};
use crate::scenario::Scenario;

/// How often an agent reports its connected clients.
pub const STATUS_EVERY: Duration = Duration::from_millis(200);

/// From the coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToAgent {
    /// Answer [`FromAgent::Time`] at once.
    Clock,
    /// Build and start this slice of the fleet.
    Start(Box<SliceSpec>),
    /// The measured window, µs since the Unix epoch.
    Window {
        /// Its start.
        start_us: u64,
        /// Its end.
        end_us: u64,
    },
    /// The window was cut short (Ctrl-C, a server that died): its new end.
    Cut {
        /// The new end, µs since the Unix epoch.
        end_us: u64,
    },
    /// Stop every client, count, and answer [`FromAgent::Done`].
    Stop,
}

/// One agent's share of a transport's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SliceSpec {
    /// The point's scenario (validated by the coordinator).
    pub scenario: Scenario,
    /// What the clients speak.
    pub transport: TransportKind,
    /// The server's schedule.
    pub schedule: Schedule,
    /// Where clients connect (client `i` to `targets[i % len]`).
    pub targets: Vec<FleetTarget>,
    /// A foreign target's stream path, if any.
    pub path: Option<String>,
    /// Which clients are this agent's.
    pub slice: Slice,
}

/// From the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromAgent {
    /// Its clock now, µs since the Unix epoch.
    Time {
        /// The time.
        now_us: u64,
    },
    /// Its clients are built and connecting.
    Started {
        /// How many it runs.
        clients: usize,
    },
    /// Its clients that ever connected, and those connected now.
    Status {
        /// Ever connected.
        ever: usize,
        /// Connected now.
        now: usize,
    },
    /// Its clients stopped and counted.
    Done(Box<AgentReport>),
    /// It cannot go on (the message says why).
    Failed {
        /// Why.
        message: String,
    },
}

/// What an agent measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentReport {
    /// Totals per part of the fleet, in order.
    pub parts: Vec<TotalsWire>,
    /// What went wrong while stopping.
    pub problems: Vec<String>,
    /// Its runtime's timer lag in the window, µs ([`crate::probe::LagProbe`]).
    pub lag_us: String,
}

/// [`Totals`] as JSON: histograms serialised whole (V2, deflated, base64),
/// so nothing is rounded on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotalsWire {
    clients: usize,
    clients_connected: usize,
    counts: Counts,
    unexpected: u64,
    warmup_events: u64,
    drain_events: u64,
    latency_us: String,
    connect_us: String,
    reconnect_us: String,
    first_errors: Vec<String>,
    reconnect_attempts: u64,
    lost_outage: u64,
    delivered_per_s: Vec<u64>,
    per_fault: Vec<(u64, u64)>,
    habits: Habits,
    chat: Option<ChatWire>,
}

/// [`ChatTotals`] as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChatWire {
    senders: u64,
    sent: u64,
    echoed: u64,
    send_errors: u64,
    round_trip_us: String,
}

impl From<&Totals> for TotalsWire {
    fn from(t: &Totals) -> Self {
        let enc = results::encode_histogram;
        Self {
            clients: t.clients,
            clients_connected: t.clients_connected,
            counts: t.counts,
            unexpected: t.unexpected,
            warmup_events: t.warmup_events,
            drain_events: t.drain_events,
            latency_us: enc(&t.latency),
            connect_us: enc(&t.connect),
            reconnect_us: enc(&t.reconnect),
            first_errors: t.first_errors.clone(),
            reconnect_attempts: t.reconnect_attempts,
            lost_outage: t.lost_outage,
            delivered_per_s: t.delivered_per_s.clone(),
            per_fault: t.per_fault.clone(),
            habits: t.habits,
            chat: t.chat.as_ref().map(|c| ChatWire {
                senders: c.senders,
                sent: c.sent,
                echoed: c.echoed,
                send_errors: c.send_errors,
                round_trip_us: enc(&c.round_trip),
            }),
        }
    }
}

impl TryFrom<TotalsWire> for Totals {
    type Error = anyhow::Error;

    fn try_from(w: TotalsWire) -> anyhow::Result<Self> {
        let dec = results::decode_histogram;
        Ok(Totals {
            clients: w.clients,
            clients_connected: w.clients_connected,
            counts: w.counts,
            unexpected: w.unexpected,
            warmup_events: w.warmup_events,
            drain_events: w.drain_events,
            latency: dec(&w.latency_us)?,
            connect: dec(&w.connect_us)?,
            reconnect: dec(&w.reconnect_us)?,
            first_errors: w.first_errors,
            reconnect_attempts: w.reconnect_attempts,
            lost_outage: w.lost_outage,
            delivered_per_s: w.delivered_per_s,
            per_fault: w.per_fault,
            chat: match w.chat {
                Some(c) => Some(ChatTotals {
                    senders: c.senders,
                    sent: c.sent,
                    echoed: c.echoed,
                    send_errors: c.send_errors,
                    round_trip: dec(&c.round_trip_us)?,
                }),
                None => None,
            },
            habits: w.habits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    /// Values spread like latencies: mostly a few ms, a tail to seconds.
    fn values(n: u64, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                // xorshift: deterministic, no dependency.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let base = 200 + x % 5_000;
                if x % 97 == 0 { base * 400 } else { base }
            })
            .collect()
    }

    #[test]
    fn agents_totals_merge_into_exactly_the_histogram_of_one_process() {
        let all = values(100_000, 0x9e37_79b9_7f4a_7c15);
        // One process recording every value...
        let mut one = crate::recorder::total_histogram();
        for &v in &all {
            one.record(v).unwrap();
        }
        // ...and four agents recording a quarter each (client i in agent
        // i % 4), each sent through the wire as JSON, then merged.
        let mut merged = Totals::new();
        for k in 0..4 {
            let mut t = Totals::new();
            t.clients = 1;
            for (i, &v) in all.iter().enumerate() {
                if i % 4 == k {
                    t.latency.record(v).unwrap();
                    t.counts.delivered += 1;
                }
            }
            let line = serde_json::to_string(&TotalsWire::from(&t)).unwrap();
            let back: TotalsWire = serde_json::from_str(&line).unwrap();
            merged.merge(&Totals::try_from(back).unwrap());
        }
        assert_eq!(merged.counts.delivered, all.len() as u64);
        assert_eq!(merged.clients, 4);
        let h: &Histogram<u64> = &merged.latency;
        assert_eq!(h.len(), one.len());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(
                h.value_at_quantile(q),
                one.value_at_quantile(q),
                "quantile {q}"
            );
        }
        assert_eq!((h.min(), h.max()), (one.min(), one.max()));
        assert_eq!(h.mean(), one.mean());
        // Bucket by bucket, the same histogram.
        let buckets = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        assert_eq!(buckets(h), buckets(&one));
    }

    #[test]
    fn an_uneven_split_merges_exactly_where_averaging_percentiles_fails() {
        // Agent 1's clients all fast; agent 2's have a 5 % tail at 1 s
        // (a slow server behind one of them).
        let mut a = Totals::new();
        let mut b = Totals::new();
        let mut one = crate::recorder::total_histogram();
        for i in 0..1000u64 {
            let (fast, tail) = (
                1_000 + i % 50,
                if i % 20 == 0 {
                    1_000_000
                } else {
                    1_000 + i % 50
                },
            );
            a.latency.record(fast).unwrap();
            b.latency.record(tail).unwrap();
            one.record(fast).unwrap();
            one.record(tail).unwrap();
        }
        let averaged = (a.latency.value_at_quantile(0.99) + b.latency.value_at_quantile(0.99)) / 2;
        let mut merged = Totals::new();
        for t in [&a, &b] {
            let back: TotalsWire =
                serde_json::from_str(&serde_json::to_string(&TotalsWire::from(t)).unwrap())
                    .unwrap();
            merged.merge(&Totals::try_from(back).unwrap());
        }
        let exact = one.value_at_quantile(0.99);
        assert_eq!(merged.latency.value_at_quantile(0.99), exact);
        // 2.5 % of all values are at 1 s, so the true p99 is 1 s; the mean
        // of the two agents' p99s says about half that.
        assert!(exact >= 999_000, "{exact}");
        assert!(
            averaged < exact * 6 / 10,
            "averaged {averaged} vs exact {exact}"
        );
    }

    #[test]
    fn a_report_with_a_bad_histogram_is_refused() {
        let mut w = TotalsWire::from(&Totals::new());
        w.latency_us = "not base64!".into();
        assert!(Totals::try_from(w).is_err());
    }
}
