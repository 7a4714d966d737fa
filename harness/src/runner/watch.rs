//! Waiting with bounds: every wait of a transport's run ends at its deadline,
//! on Ctrl-C, or when the server dies, whichever comes first ([`Watch`]);
//! and the server's figures at one instant ([`Snapshot`]).

use crate::probe::{self, ProcUsage, Procs};
use crate::progress::TransportProgress;
use crate::results::TcpEvents;
use crate::runner::bounds::TICK;
use crate::runner::fleets::AnyFleet;
use crate::server_process::{self, ServerProcess, ServerStats};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a wait ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// The condition held.
    Done,
    /// The deadline passed first.
    Deadline,
    /// Ctrl-C.
    Interrupted,
    /// The server process exited (the message says how).
    ServerExited(String),
    /// A restarted server did not come back (the message says why): the run ends.
    ServerLost(String),
    /// A fleet agent died (the message says how): the window ends, the run goes on.
    FleetLost(String),
}

/// Everything a wait watches.
pub(crate) struct Watch<'a> {
    pub(super) fleet: &'a mut AnyFleet,
    pub(super) server: Option<&'a mut ServerProcess>,
    /// The further servers of a scaled-out run.
    pub(super) others: &'a mut [ServerProcess],
    /// Their broker (`None`: none).
    pub(super) broker: Option<&'a mut ServerProcess>,
    pub(super) interrupt: &'a CancellationToken,
    pub(super) progress: &'a TransportProgress,
}

impl Watch<'_> {
    /// Waits until `done` holds or `deadline` passes, checking every [`TICK`]
    /// for Ctrl-C and for the server's exit, and redrawing progress.
    pub(super) async fn until(
        &mut self,
        deadline: Instant,
        phase_start: Instant,
        done: impl Fn(&AnyFleet) -> bool,
    ) -> Waited {
        loop {
            if done(self.fleet) {
                return Waited::Done;
            }
            for other in self.others.iter_mut().chain(self.broker.as_deref_mut()) {
                if let Some(status) = other.exited() {
                    return Waited::ServerExited(format!(
                        "{} ({}) exited unexpectedly ({status}){}",
                        other.name(),
                        other.base_url(),
                        other.log_tail()
                    ));
                }
            }
            if let Some(why) = self.fleet.failure() {
                return Waited::FleetLost(why);
            }
            if let Some(server) = self.server.as_deref_mut() {
                if let Some(status) = server.exited() {
                    return Waited::ServerExited(format!(
                        "{} exited unexpectedly ({status}){}",
                        server.name(),
                        server.log_tail()
                    ));
                }
            }
            let now = Instant::now();
            self.progress.tick(
                self.fleet.connected(),
                now.saturating_duration_since(phase_start),
            );
            if now >= deadline {
                return Waited::Deadline;
            }
            tokio::select! {
                () = self.interrupt.cancelled() => return Waited::Interrupted,
                () = tokio::time::sleep_until(deadline.min(now + TICK)) => {}
            }
        }
    }

    /// Waits until `deadline` (a timed phase).
    pub(super) async fn sleep_until(&mut self, deadline: Instant, phase_start: Instant) -> Waited {
        match self.until(deadline, phase_start, |_| false).await {
            Waited::Deadline => Waited::Done,
            other => other,
        }
    }
}

/// `/stats` of every server of `urls`, summed (`None` if there is none or
/// one cannot be read: a partial sum would be no figure).
pub(super) async fn fetch_summed_stats(urls: &[String]) -> Option<ServerStats> {
    let mut sum: Option<ServerStats> = None;
    for url in urls {
        match server_process::fetch_stats(url).await {
            Ok(s) => match sum.as_mut() {
                Some(total) => total.add(&s),
                None => sum = Some(s),
            },
            Err(e) => {
                tracing::warn!("GET /stats: {e:#}");
                return None;
            }
        }
    }
    sum
}

/// The tokio instant of a wall-clock time (µs since the Unix epoch).
pub(crate) fn instant_at(us: u64) -> Instant {
    let now_us = protocol::now_us();
    let now = Instant::now();
    if us >= now_us {
        now + Duration::from_micros(us - now_us)
    } else {
        now.checked_sub(Duration::from_micros(now_us - us))
            .unwrap_or(now)
    }
}

/// What was read at one instant: the server's counters and the CPU and
/// memory of the server and of the fleet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(super) stats: Option<ServerStats>,
    pub(super) server: Option<ProcUsage>,
    /// The broker of servers scaled out (`None` without one).
    pub(super) broker: Option<ProcUsage>,
    pub(super) fleet: Option<ProcUsage>,
    /// The kernel's cumulative TCP event counters.
    pub(super) tcp: Option<TcpEvents>,
}

impl Snapshot {
    /// Reads `/proc` first (instantaneous), then `/stats` (bounded) of
    /// every server of `stats_urls`, summed (none: a target, which has no
    /// `/stats`; one that cannot be read: no figure).
    pub(super) async fn take(procs: &Procs, stats_urls: &[String]) -> Self {
        let server = procs.server_usage();
        let fleet = procs.fleet_usage();
        let broker = procs.broker_usage();
        let tcp = probe::read_tcp_counters();
        let stats = fetch_summed_stats(stats_urls).await;
        Self {
            stats,
            server,
            broker,
            fleet,
            tcp,
        }
    }
}
