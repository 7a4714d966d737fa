//! Faults injected during the measured window (server restarts, pauses,
//! dropped connections) and what they cost: outage spans, the CPU after
//! each fault, a restarted server's new process.

use crate::probe::{self};
use crate::recorder::Totals;
use crate::recorder::Window;
use crate::results::Summary;
use crate::results::{self, Sample};
use crate::runner::bounds::RESTART_BOUND;
use crate::runner::bounds::RESTART_RETRY;
use crate::runner::watch::{Waited, Watch, instant_at};
use crate::scenario::check::fmt_duration;
use crate::server_process::{self, ServerProcess, ServerSpec};
use std::path::PathBuf;
use tokio::time::Instant;

/// Server CPU seconds from `at_us` to `span_s` later, from the timeline's
/// samples around those instants (`None` without a sample on each side).
pub(crate) fn cpu_after(timeline: &[Sample], at_us: u64, span_s: f64) -> Option<f64> {
    let end_us = at_us + (span_s * 1e6) as u64;
    let before = timeline
        .iter()
        .rev()
        .find(|s| s.t_us <= at_us)?
        .server_cpu_s?;
    let after = timeline.iter().find(|s| s.t_us >= end_us)?.server_cpu_s?;
    Some((after - before).max(0.0))
}

/// What injecting a transport's faults left behind.
#[derive(Debug, Default)]
pub(crate) struct FaultLog {
    /// One record per fault, in order.
    pub(super) records: Vec<results::FaultRecord>,
    /// `[kill, ready)` of each restart, µs since the Unix epoch, and the
    /// restart's fault epoch (what the recorders saw it as).
    pub(super) outages: Vec<(u64, u64, usize)>,
    /// CPU seconds of the servers killed (gone from `/proc` afterwards).
    pub(super) cpu_carry_s: f64,
    /// The pid of the latest restarted server.
    pub(super) new_pid: Option<u32>,
}

/// The spans of scheduled time whose losses are the restarts': each
/// `[kill − slack, ready)`, as the `[a, b)` bounds `ids_in_window` takes,
/// kept disjoint so no loss is counted twice.
pub(crate) fn outage_spans(outages: &[(u64, u64, usize)], slack_us: u64) -> Vec<(u64, u64, usize)> {
    let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(outages.len());
    for &(kill, ready, epoch) in outages {
        let mut a = kill.saturating_sub(slack_us);
        if let Some(&(_, prev_end, _)) = spans.last() {
            a = a.max(prev_end);
        }
        if ready > a {
            spans.push((a, ready, epoch));
        }
    }
    spans
}

/// Injects `faults` at their offsets from `window_start` (µs), each wait
/// watching the server, the fleet and Ctrl-C like any other. Each fault is
/// announced to the recorders through `window` just before it acts, and a
/// restarted server's pid is published in `server_pid` for the sampler.
///
/// A drop or storm that fails is recorded with its error and the run goes
/// on; a restarted server that does not come back within its pause plus
/// [`RESTART_BOUND`] ends the run ([`Waited::ServerLost`]).
pub(crate) async fn inject_faults(
    watch: &mut Watch<'_>,
    faults: &[crate::scenario::Fault],
    (window_start, phase_start): (u64, Instant),
    base_url: &str,
    restart: Option<&(ServerSpec, PathBuf, PathBuf)>,
    (window, server_pid): (&Window, &std::sync::atomic::AtomicU32),
    log: &mut FaultLog,
) -> Waited {
    use crate::scenario::FaultKind;
    for (n, fault) in faults.iter().enumerate() {
        let at = window_start + fault.at.as_micros() as u64;
        let ended = watch.sleep_until(instant_at(at), phase_start).await;
        if !matches!(ended, Waited::Done) {
            return ended;
        }
        let mut record = results::FaultRecord {
            kind: fault.kind.as_str().to_string(),
            at_us: protocol::now_us(),
            fraction: fault.drop_fraction(),
            dropped: None,
            outage_us: None,
            recovered: 0,
            all_back_us: None,
            server_cpu_s: None,
            error: None,
        };
        // Before the fault acts, so every recovery from it is attributed to it.
        window.begin_fault();
        let token = restart.and_then(|(spec, _, _)| spec.admin_token.as_deref());
        match (fault.kind, fault.drop_fraction(), token) {
            (FaultKind::Drop | FaultKind::Storm, Some(fraction), Some(token)) => {
                match server_process::admin_drop(base_url, token, fraction).await {
                    Ok(r) => record.dropped = Some(r.dropped),
                    Err(e) => record.error = Some(format!("{e:#}")),
                }
            }
            (FaultKind::Restart, _, _) => {
                let (Some((spec, bin, first_log)), Some(server)) =
                    (restart, watch.server.as_deref_mut())
                else {
                    record.error = Some("no server of ours to restart".into());
                    log.records.push(record);
                    continue;
                };
                let pause = fault.pause.unwrap_or_default();
                if let Some(u) = probe::read_process(Some(server.pid())) {
                    log.cpu_carry_s += u.cpu_s;
                }
                if let Err(e) = server.kill().await {
                    record.error = Some(format!("SIGKILL: {e:#}"));
                    log.records.push(record);
                    continue;
                }
                let kill_us = protocol::now_us();
                record.at_us = kill_us;
                // Each incarnation logs to its own file: the first one's last words stay.
                let log_path = first_log.with_extension(format!("restart{}.log", n + 1));
                let deadline = Instant::now() + pause + RESTART_BOUND;
                tokio::select! {
                    () = watch.interrupt.cancelled() => return Waited::Interrupted,
                    () = tokio::time::sleep(pause) => {}
                }
                let mut last_err = String::new();
                let started = loop {
                    match ServerProcess::start(bin, spec, &log_path).await {
                        Ok(s) => break Some(s),
                        // Most likely the port is not free again yet.
                        Err(e) => last_err = format!("{e:#}"),
                    }
                    if Instant::now() + RESTART_RETRY >= deadline {
                        break None;
                    }
                    tokio::select! {
                        () = watch.interrupt.cancelled() => return Waited::Interrupted,
                        () = tokio::time::sleep(RESTART_RETRY) => {}
                    }
                };
                let Some(new) = started else {
                    let msg = format!(
                        "the server killed at +{} (restart fault) did not come back within {}: {last_err}; \
                         the run ends here and is saved as incomplete",
                        fmt_duration(fault.at),
                        fmt_duration(pause + RESTART_BOUND)
                    );
                    record.error = Some(msg.clone());
                    log.records.push(record);
                    // The window ends at the kill: what was due afterwards was
                    // never served, by this transport or any other.
                    window.cut(kill_us);
                    return Waited::ServerLost(msg);
                };
                let ready_us = protocol::now_us();
                record.outage_us = Some(ready_us - kill_us);
                log.outages.push((kill_us, ready_us, window.fault_epoch()));
                log.new_pid = Some(new.pid());
                // The sampler follows the new process from its next tick on.
                server_pid.store(new.pid(), std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    pid = new.pid(),
                    outage_us = ready_us - kill_us,
                    "push-server restarted"
                );
                *server = new;
            }
            (FaultKind::BrokerRestart, _, _) => {
                let pause = fault.pause.unwrap_or_default();
                match restart_broker(watch, pause, n).await {
                    Ok((kill_us, ready_us)) => {
                        record.at_us = kill_us;
                        record.outage_us = Some(ready_us - kill_us);
                        // What was published meanwhile is lost to every
                        // server: counted as the fault's, not as missing.
                        log.outages.push((kill_us, ready_us, window.fault_epoch()));
                    }
                    Err(BrokerLost::Interrupted) => return Waited::Interrupted,
                    Err(BrokerLost::Gone(msg)) => {
                        record.error = Some(msg.clone());
                        log.records.push(record);
                        window.cut(protocol::now_us());
                        return Waited::ServerLost(msg);
                    }
                }
            }
            _ => {
                record.error = Some("no admin token: the server was not started for faults".into())
            }
        }
        if let Some(e) = &record.error {
            tracing::warn!("fault {}: {e}", record.kind);
        }
        log.records.push(record);
    }
    Waited::Done
}

/// Why a broker restart ended the run.
enum BrokerLost {
    Interrupted,
    /// It could not be killed or did not come back (the message says why).
    Gone(String),
}

/// SIGKILLs the broker, waits `pause`, starts it again on its port (empty)
/// and returns when it was killed and when it was back (µs).
async fn restart_broker(
    watch: &mut Watch<'_>,
    pause: std::time::Duration,
    n: usize,
) -> Result<(u64, u64), BrokerLost> {
    let Some(broker) = watch.broker.as_deref_mut() else {
        return Err(BrokerLost::Gone("no broker to restart".into()));
    };
    let addr = broker.addr();
    let cpus = crate::sys::allowed_cpus_of(broker.pid());
    let log_path = broker
        .log_path()
        .with_extension(format!("restart{}.log", n + 1));
    broker
        .kill()
        .await
        .map_err(|e| BrokerLost::Gone(format!("SIGKILL of the broker: {e:#}")))?;
    let kill_us = protocol::now_us();
    let deadline = Instant::now() + pause + RESTART_BOUND;
    tokio::select! {
        () = watch.interrupt.cancelled() => return Err(BrokerLost::Interrupted),
        () = tokio::time::sleep(pause) => {}
    }
    loop {
        let last_err = match ServerProcess::start_redis_at(addr, &cpus, &log_path).await {
            Ok(new) => {
                *broker = new;
                return Ok((kill_us, protocol::now_us()));
            }
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() + RESTART_RETRY >= deadline {
            return Err(BrokerLost::Gone(format!(
                "the broker did not come back within {}: {last_err}; the run ends here and \
                 is saved as incomplete",
                fmt_duration(pause + RESTART_BOUND)
            )));
        }
        tokio::select! {
            () = watch.interrupt.cancelled() => return Err(BrokerLost::Interrupted),
            () = tokio::time::sleep(RESTART_RETRY) => {}
        }
    }
}

/// The entry's recovery: each fault with how many clients came back and
/// when the last did, the server's CPU after it, and the reconnects.
pub(super) fn recovery(
    mut faults: Vec<results::FaultRecord>,
    totals: &Totals,
    timeline: &[Sample],
) -> results::Recovery {
    for (i, f) in faults.iter_mut().enumerate() {
        if let Some(&(n, max)) = totals.per_fault.get(i) {
            f.recovered = n;
            f.all_back_us = (n > 0).then_some(max);
        }
        if f.kind != "restart" && f.kind != "broker-restart" {
            f.server_cpu_s = cpu_after(timeline, f.at_us, results::FAULT_CPU_SPAN_S);
        }
    }
    results::Recovery {
        faults,
        reconnect_attempts: totals.reconnect_attempts,
        reconnect: Summary::from_histogram(&totals.reconnect),
        reconnect_us: results::encode_histogram(&totals.reconnect),
        lost_outage: totals.lost_outage,
        delivered_per_s: totals.delivered_per_s.clone(),
    }
}
