//! What a transport cost: the server's memory, CPU and bytes on the wire
//! over the window, and the fleet's own CPU and lag (generator-bound or not).

use crate::probe;
use crate::results::TransportResult;
use crate::results::{self, FleetUsage, Sample, ServerUsage, Summary, Wire};
use crate::results::{FLEET_CPU_BOUND, FLEET_LAG_BOUND_US};
use crate::runner::watch::Snapshot;
use crate::server_process::{self, ServerStats};
use std::time::Duration;

/// Everything read while a transport ran, from which its costs are derived.
#[derive(Debug, Clone)]
pub(crate) struct Costs<'a> {
    pub(super) window_start_us: u64,
    pub(super) window_end_us: u64,
    /// Whether the server is a local process of ours (its `/proc` is the server's).
    pub(super) local_server: bool,
    /// Whether a fault restarted the server in the window (its own CPU
    /// clock restarted with it: `/proc`'s ticks plus the killed ones' are used).
    pub(super) restarted: bool,
    pub(super) baseline: Sample,
    pub(super) idle: Sample,
    pub(super) idle_clients: usize,
    pub(super) at_start: Snapshot,
    pub(super) at_end: Snapshot,
    pub(super) drained_stats: Option<ServerStats>,
    pub(super) hwm_bytes: Option<u64>,
    pub(super) timeline: &'a [Sample],
    pub(super) lag: Summary,
    pub(super) fleet_cpus: &'a [usize],
}

impl Costs<'_> {
    /// Writes the costs into `result`: bytes on the wire, the kernel's TCP
    /// events, the server's and the fleet's usage, and the settings the
    /// server stated (at the window's start, else before any client, else
    /// after the drain).
    pub(super) fn fill(&self, result: &mut TransportResult, baseline_stats: Option<&ServerStats>) {
        result.wire = self.wire();
        result.kernel_tcp = match (&self.at_start.tcp, &self.at_end.tcp) {
            (Some(a), Some(b)) => Some(probe::tcp_events_between(a, b)),
            _ => None,
        };
        result.server = self.server();
        result.fleet = self.fleet();
        result.server_config = [
            self.at_start.stats.as_ref(),
            baseline_stats,
            self.drained_stats.as_ref(),
        ]
        .into_iter()
        .flatten()
        .next()
        .and_then(|s| serde_json::to_value(&s.config).ok())
        .unwrap_or_default();
    }

    /// Samples of the timeline inside the measured window.
    pub(super) fn in_window(&self) -> impl Iterator<Item = &Sample> {
        let (a, b) = (self.window_start_us, self.window_end_us);
        self.timeline
            .iter()
            .filter(move |s| s.t_us >= a && s.t_us <= b)
    }

    /// Bytes and requests over the window and in total (`None` without `/stats` at both ends).
    pub(super) fn wire(&self) -> Option<Wire> {
        let (start, end) = (self.at_start.stats.as_ref()?, self.at_end.stats.as_ref()?);
        let (a, b) = (
            server_process::wire_counts(start),
            server_process::wire_counts(end),
        );
        let total = self
            .drained_stats
            .as_ref()
            .map_or(b, server_process::wire_counts);
        Some(Wire {
            window: results::WireCounts {
                bytes_in: b.bytes_in.saturating_sub(a.bytes_in),
                bytes_out: b.bytes_out.saturating_sub(a.bytes_out),
                requests: b.requests.saturating_sub(a.requests),
                connections_accepted: b
                    .connections_accepted
                    .saturating_sub(a.connections_accepted),
            },
            total,
        })
    }

    /// The server's CPU and memory (`None` when it is not our local process
    /// or it could not be read at both ends of the window).
    pub(super) fn server(&self) -> Option<ServerUsage> {
        if !self.local_server {
            return None;
        }
        let (start, end) = (self.at_start.server?, self.at_end.server?);
        let peak = self
            .in_window()
            .filter_map(|s| s.server_rss_bytes)
            .chain([start.rss_bytes, end.rss_bytes])
            .max()
            .unwrap_or(0);
        let tcp_peak = self.in_window().filter_map(|s| s.tcp_mem_bytes).max();
        // The server's own CPU clock when it reports one at both ends of
        // the window and did not restart in it; `/proc`'s ticks otherwise.
        let precise = match (&self.at_start.stats, &self.at_end.stats) {
            (Some(a), Some(b))
                if !self.restarted
                    && a.process_cpu_ns > 0
                    && b.process_cpu_ns >= a.process_cpu_ns =>
            {
                Some((b.process_cpu_ns - a.process_cpu_ns) as f64 / 1e9)
            }
            _ => None,
        };
        Some(ServerUsage {
            cpu_s: precise.unwrap_or((end.cpu_s - start.cpu_s).max(0.0)),
            cpu_resolution_s: if precise.is_some() {
                1e-9
            } else {
                1.0 / crate::sys::clock_ticks() as f64
            },
            rss_baseline_bytes: self.baseline.server_rss_bytes?,
            rss_idle_bytes: self.idle.server_rss_bytes?,
            idle_clients: self.idle_clients,
            rss_peak_bytes: peak,
            rss_hwm_bytes: self.hwm_bytes.unwrap_or(end.hwm_bytes),
            tcp_mem_baseline_bytes: self.baseline.tcp_mem_bytes,
            tcp_mem_idle_bytes: self.idle.tcp_mem_bytes,
            tcp_mem_peak_bytes: tcp_peak,
        })
    }

    /// How the entry was spread over processes (`None`: one server, one
    /// fleet process), the broker's CPU over the window included.
    pub(super) fn scale(
        &self,
        scenario: &crate::scenario::Scenario,
        schedule: &protocol::Schedule,
        agent_clocks: Vec<crate::agent::remote::ClockOffset>,
    ) -> Option<crate::results::ScaleFigures> {
        if scenario.servers <= 1 && !scenario.brokered() && scenario.agents == 0 {
            return None;
        }
        let broker_cpu_s = match (self.at_start.broker, self.at_end.broker) {
            (Some(a), Some(b)) => Some((b.cpu_s - a.cpu_s).max(0.0)),
            _ => None,
        };
        Some(crate::results::ScaleFigures {
            servers: scenario.servers,
            broker: scenario
                .brokered()
                .then(|| scenario.broker.as_str().to_string()),
            broker_cpu_s,
            events_in_window: (0..schedule.topics)
                .filter_map(|t| schedule.ids_in_window(t, self.window_start_us, self.window_end_us))
                .map(|(a, b)| b - a + 1)
                .sum(),
            broker_rss_bytes: self.at_end.broker.map(|b| b.rss_bytes),
            agents: scenario.agents,
            agent_clocks,
        })
    }

    /// The fleet's own cost and whether it limited the measurement.
    pub(super) fn fleet(&self) -> FleetUsage {
        let cpu_s = match (self.at_start.fleet, self.at_end.fleet) {
            (Some(a), Some(b)) => (b.cpu_s - a.cpu_s).max(0.0),
            _ => 0.0,
        };
        let window_s = self.window_end_us.saturating_sub(self.window_start_us) as f64 / 1e6;
        let reasons = generator_bound_reasons(cpu_s, window_s, self.fleet_cpus.len(), &self.lag);
        FleetUsage {
            cpu_s,
            cpus: self.fleet_cpus.to_vec(),
            rss_idle_bytes: self.idle.fleet_rss_bytes.unwrap_or(0),
            rss_peak_bytes: self
                .in_window()
                .filter_map(|s| s.fleet_rss_bytes)
                .max()
                .unwrap_or(0),
            lag: self.lag,
            generator_bound: !reasons.is_empty(),
            generator_bound_reasons: reasons,
            relay_cpu_s: None,
            link_emulator: None,
        }
    }
}

/// Why the fleet limited the measurement, if it did: it used at least
/// [`FLEET_CPU_BOUND`] of its `cores` over the window, or its lag probe's
/// p99 lateness exceeded [`FLEET_LAG_BOUND_US`].
pub fn generator_bound_reasons(
    cpu_s: f64,
    window_s: f64,
    cores: usize,
    lag: &Summary,
) -> Vec<String> {
    let mut why = Vec::new();
    if window_s > 0.0 && cores > 0 {
        let share = cpu_s / (window_s * cores as f64);
        if share >= FLEET_CPU_BOUND {
            why.push(format!(
                "the fleet used {:.0}% of its {cores} core{} over the window (≥ {:.0}%)",
                share * 100.0,
                if cores == 1 { "" } else { "s" },
                FLEET_CPU_BOUND * 100.0
            ));
        }
    }
    if lag.count > 0 && lag.p99 > FLEET_LAG_BOUND_US {
        why.push(format!(
            "the fleet's runtime woke a 10 ms timer {:.1} ms late at p99 (> {} ms): it fell behind its own schedule",
            lag.p99 as f64 / 1000.0,
            FLEET_LAG_BOUND_US / 1000
        ));
    }
    why
}

pub(crate) fn round_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().ceil() as u64)
}
