//! Process probes: what the server and the fleet cost, read from `/proc`.
//!
//! - `/proc/<pid>/status`: resident set size (`VmRSS`) and its high-water
//!   mark (`VmHWM`);
//! - `/proc/<pid>/stat`: user and system CPU time (`utime`, `stime`, in clock
//!   ticks, converted with `sysconf(_SC_CLK_TCK)`, read once);
//! - `/proc/net/sockstat`: the kernel's memory for all TCP sockets (pages).
//!
//! The parsers take text, not paths, so tests feed them recorded samples.
//! [`Sampler`] samples all of them every 250 ms in a background task (the
//! timeline); [`LagProbe`] measures how late the fleet's runtime wakes a
//! sleeping task, to tell a saturated load generator from a slow server.
//! Reading a `/proc` file costs tens of microseconds, so sampling is done
//! inline on the runtime rather than on a blocking thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::recorder::{Phase, Window};
use crate::results::{Sample, TcpEvents};
use crate::sys::clock_ticks;
use crate::sys::page_size;

/// How often the timeline is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// How long the lag probe sleeps between wake-ups.
pub const LAG_PERIOD: Duration = Duration::from_millis(10);

/// Bound on stopping a background probe.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Memory figures of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size so far (`VmHWM`), bytes (0 if not reported).
    pub hwm_bytes: u64,
}

/// Parses `/proc/<pid>/status`. `None` without a `VmRSS` line (a kernel
/// thread, a zombie, or not a status file at all).
pub fn parse_status(text: &str) -> Option<ProcStatus> {
    let kib = |key: &str| -> Option<u64> {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            let mut parts = rest.split_whitespace();
            let n: u64 = parts.next()?.parse().ok()?;
            // The kernel always writes "kB" (meaning KiB); refuse anything else.
            (parts.next() == Some("kB")).then_some(n * 1024)
        })
    };
    Some(ProcStatus {
        rss_bytes: kib("VmRSS")?,
        hwm_bytes: kib("VmHWM").unwrap_or(0),
    })
}

/// CPU time of a process from `/proc/<pid>/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// User-mode time (field 14).
    pub utime: u64,
    /// Kernel-mode time (field 15).
    pub stime: u64,
}

impl CpuTicks {
    /// User + system time in seconds, at `hz` ticks per second.
    pub fn seconds(self, hz: u64) -> f64 {
        (self.utime + self.stime) as f64 / hz.max(1) as f64
    }
}

/// Parses `/proc/<pid>/stat`.
///
/// The second field is the command name in parentheses, and it may itself
/// contain spaces and parentheses (`(tokio (rt) 1)`), so fields are counted
/// from the *last* `)`: after it come field 3 (state) onwards, which holds
/// `utime` at field 14 and `stime` at field 15.
pub fn parse_stat(text: &str) -> Option<CpuTicks> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3, so field N is fields[N - 3].
    Some(CpuTicks {
        utime: fields.get(14 - 3)?.parse().ok()?,
        stime: fields.get(15 - 3)?.parse().ok()?,
    })
}

/// The `TCP:` line of `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockStat {
    /// TCP sockets in use.
    pub inuse: u64,
    /// Orphaned sockets (closed by the application, still in the kernel).
    pub orphan: u64,
    /// Sockets in TIME_WAIT.
    pub tw: u64,
    /// Allocated TCP sockets.
    pub alloc: u64,
    /// Memory of all TCP sockets, pages.
    pub mem_pages: u64,
}

/// Parses `/proc/net/sockstat` (its `TCP:` line: `inuse N orphan N tw N alloc N mem N`).
pub fn parse_sockstat(text: &str) -> Option<SockStat> {
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let get = |key: &str| -> Option<u64> {
        words
            .chunks(2)
            .find(|kv| kv.first() == Some(&key))
            .and_then(|kv| kv.get(1)?.parse().ok())
    };
    Some(SockStat {
        inuse: get("inuse")?,
        orphan: get("orphan").unwrap_or(0),
        tw: get("tw").unwrap_or(0),
        alloc: get("alloc").unwrap_or(0),
        mem_pages: get("mem")?,
    })
}

/// Values of the `PREFIX:` table of `/proc/net/snmp` or `/proc/net/netstat`:
/// a line of names followed by a line of values, both starting with
/// `PREFIX:` (`Tcp:` in snmp, `TcpExt:` in netstat). Names without a value
/// that parses as a number are left out.
pub fn parse_net_table(text: &str, prefix: &str) -> Vec<(String, u64)> {
    let mut rows = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix).and_then(|r| r.strip_prefix(':')));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return Vec::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect()
}

/// The kernel's TCP event counters now, from the texts of `/proc/net/snmp`
/// and `/proc/net/netstat` (`None` when `RetransSegs` is not there). The
/// counters are cumulative; a window's events are [`tcp_events_between`]
/// two readings.
pub fn parse_tcp_counters(snmp: &str, netstat: &str) -> Option<TcpEvents> {
    let tcp = parse_net_table(snmp, "Tcp");
    let ext = parse_net_table(netstat, "TcpExt");
    let get = |table: &[(String, u64)], name: &str| {
        table.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    };
    Some(TcpEvents {
        retrans_segs: get(&tcp, "RetransSegs")?,
        delayed_ack_lost: get(&ext, "DelayedACKLost").unwrap_or(0),
        loss_probes: get(&ext, "TCPLossProbes").unwrap_or(0),
        listen_overflows: get(&ext, "ListenOverflows").unwrap_or(0),
    })
}

/// The kernel's cumulative TCP event counters now (see [`parse_tcp_counters`]).
pub fn read_tcp_counters() -> Option<TcpEvents> {
    parse_tcp_counters(
        &std::fs::read_to_string("/proc/net/snmp").ok()?,
        &std::fs::read_to_string("/proc/net/netstat").ok()?,
    )
}

/// The events between two readings of the counters (a counter that went
/// backwards, e.g. a reset namespace, gives 0, not a wrap).
pub fn tcp_events_between(earlier: &TcpEvents, later: &TcpEvents) -> TcpEvents {
    TcpEvents {
        retrans_segs: later.retrans_segs.saturating_sub(earlier.retrans_segs),
        delayed_ack_lost: later
            .delayed_ack_lost
            .saturating_sub(earlier.delayed_ack_lost),
        loss_probes: later.loss_probes.saturating_sub(earlier.loss_probes),
        listen_overflows: later
            .listen_overflows
            .saturating_sub(earlier.listen_overflows),
    }
}

/// CPU time and memory of one process, now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcUsage {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size so far, bytes.
    pub hwm_bytes: u64,
}

/// Bound on the processes summed under one server (a runaway fork bomb
/// must not make every sample scan forever).
const MAX_TREE: usize = 256;

/// Reads `/proc/<pid>` and sums its descendants (`None`: this process
/// alone). `None` if the process is gone or its files are unreadable.
///
/// The sum is what the server costs when its command is a script or a
/// supervisor with worker processes (a target); push-server has no
/// children, so for it this is its own figure. Each descendant's peak
/// (`VmHWM`) is its own, so the summed peak is an upper bound.
pub fn read_process(pid: Option<u32>) -> Option<ProcUsage> {
    let Some(pid) = pid else {
        return read_one("/proc/self");
    };
    let mut total = read_one(&format!("/proc/{pid}"))?;
    let mut pending = children(pid);
    let mut seen = 1;
    while let Some(child) = pending.pop() {
        if seen >= MAX_TREE {
            break;
        }
        seen += 1;
        // A child that exits between listing and reading is simply not counted.
        if let Some(u) = read_one(&format!("/proc/{child}")) {
            total.cpu_s += u.cpu_s;
            total.rss_bytes += u.rss_bytes;
            total.hwm_bytes += u.hwm_bytes;
        }
        pending.extend(children(child));
    }
    Some(total)
}

/// The children of every thread of `pid` (`/proc/<pid>/task/*/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Reads one process's `stat` and `status` under `dir`.
fn read_one(dir: &str) -> Option<ProcUsage> {
    let stat = parse_stat(&std::fs::read_to_string(format!("{dir}/stat")).ok()?)?;
    let status = parse_status(&std::fs::read_to_string(format!("{dir}/status")).ok()?)?;
    Some(ProcUsage {
        cpu_s: stat.seconds(clock_ticks()),
        rss_bytes: status.rss_bytes,
        hwm_bytes: status.hwm_bytes,
    })
}

/// Kernel memory of all TCP sockets now, bytes (`None` if unreadable).
pub fn read_tcp_mem_bytes() -> Option<u64> {
    Some(read_sockstat()?.mem_pages * page_size())
}

/// The `TCP:` line of `/proc/net/sockstat` now.
pub fn read_sockstat() -> Option<SockStat> {
    parse_sockstat(&std::fs::read_to_string("/proc/net/sockstat").ok()?)
}

/// Waits (at most `bound`) until the kernel's TCP sockets stop draining:
/// the previous run's thousands of connections take a moment to close and
/// free their buffers, and a baseline sampled meanwhile would count their
/// memory against the next transport. Returns once neither the sockets in
/// use nor their memory fell over the last 100 ms.
pub async fn settle_sockets(bound: Duration) {
    let deadline = Instant::now() + bound;
    let mut last = read_sockstat();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = read_sockstat();
        let draining = matches!((last, now), (Some(a), Some(b))
            if b.inuse < a.inuse || b.mem_pages < a.mem_pages);
        if !draining {
            return;
        }
        last = now;
    }
}

/// The processes a run's costs are read from: the server side and the
/// fleet side, each one process or several summed.
#[derive(Debug, Clone, Default)]
pub struct Procs {
    /// The (first) server's pid, 0 for none; a restarted server is
    /// followed to its new process through it.
    pub server: Arc<AtomicU32>,
    /// Further push-servers of a scaled-out run, summed with the first.
    pub more_servers: Vec<u32>,
    /// Fleet agents, summed with this process as the fleet.
    pub agents: Vec<u32>,
    /// The broker between servers (0: none), read on its own.
    pub broker: u32,
}

impl Procs {
    /// The server `server_pid` and this process as the fleet.
    pub fn one(server_pid: Option<u32>) -> Self {
        Self {
            server: Arc::new(AtomicU32::new(server_pid.unwrap_or(0))),
            ..Self::default()
        }
    }

    /// The server side now: every server summed (`None` without a server,
    /// or if one of them cannot be read: a partial sum would be no figure).
    pub fn server_usage(&self) -> Option<ProcUsage> {
        let first = self.server.load(Ordering::Relaxed);
        if first == 0 {
            return None;
        }
        sum([first].iter().chain(&self.more_servers).map(|&p| Some(p)))
    }

    /// The broker now (`None` without one).
    pub fn broker_usage(&self) -> Option<ProcUsage> {
        (self.broker != 0)
            .then(|| read_process(Some(self.broker)))
            .flatten()
    }

    /// The fleet now: this process and every agent summed.
    pub fn fleet_usage(&self) -> Option<ProcUsage> {
        sum(std::iter::once(None).chain(self.agents.iter().map(|&p| Some(p))))
    }
}

/// The sum of [`read_process`] over `pids` (`None` if any is unreadable).
fn sum(pids: impl Iterator<Item = Option<u32>>) -> Option<ProcUsage> {
    let mut total = ProcUsage::default();
    for pid in pids {
        let u = read_process(pid)?;
        total.cpu_s += u.cpu_s;
        total.rss_bytes += u.rss_bytes;
        total.hwm_bytes += u.hwm_bytes;
    }
    Some(total)
}

/// One timeline sample of the servers and the fleet ([`Procs`]) and the
/// kernel's TCP memory, now (clients connected: unknown).
pub fn sample(procs: &Procs) -> Sample {
    let server = procs.server_usage();
    let fleet = procs.fleet_usage();
    Sample {
        t_us: protocol::now_us(),
        server_rss_bytes: server.map(|s| s.rss_bytes),
        server_cpu_s: server.map(|s| s.cpu_s),
        fleet_rss_bytes: fleet.map(|f| f.rss_bytes),
        fleet_cpu_s: fleet.map(|f| f.cpu_s),
        tcp_mem_bytes: read_tcp_mem_bytes(),
        clients_connected: None,
    }
}

/// Samples the timeline every [`SAMPLE_EVERY`] in a background task until stopped.
#[derive(Debug)]
pub struct Sampler {
    cancel: CancellationToken,
    task: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling `server_pid` (and this process) now.
    pub fn start(server_pid: Option<u32>, every: Duration) -> Self {
        Self::following(Procs::one(server_pid), None, every)
    }

    /// Starts sampling `procs` at each tick: a restarted server is
    /// followed to its new process (its CPU seconds then start again from 0).
    /// With `presence`, each sample also counts the fleet's connected clients.
    pub fn following(
        procs: Procs,
        presence: Option<std::sync::Arc<crate::recorder::Presence>>,
        every: Duration,
    ) -> Self {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(every);
            // A sampler that fell behind samples late, never in a burst.
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {
                        let mut s = sample(&procs);
                        s.clients_connected = presence.as_ref().map(|p| p.now() as u64);
                        samples.push(s);
                    }
                }
            }
            samples
        });
        Self { cancel, task }
    }

    /// Stops sampling and returns the timeline (empty if the task failed).
    pub async fn stop(self) -> Vec<Sample> {
        self.cancel.cancel();
        match tokio::time::timeout(STOP_TIMEOUT, self.task).await {
            Ok(Ok(samples)) => samples,
            _ => Vec::new(),
        }
    }
}

/// Measures the fleet runtime's scheduling lag: a task sleeps [`LAG_PERIOD`]
/// in a loop and records how late it wakes (µs), for wake-ups inside the
/// measured window only.
///
/// A runtime whose workers are busy with client tasks wakes it late; that
/// lateness is also added to every latency the fleet records, so a large
/// lag means the latency figures describe the fleet, not the server.
#[derive(Debug)]
pub struct LagProbe {
    cancel: CancellationToken,
    task: JoinHandle<Histogram<u64>>,
}

impl LagProbe {
    /// Starts the probe on the current runtime.
    pub fn start(window: Arc<Window>) -> Self {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let mut lag = crate::recorder::total_histogram();
            loop {
                let due = Instant::now() + LAG_PERIOD;
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep_until(due) => {}
                }
                let late = Instant::now().saturating_duration_since(due);
                if window.phase(protocol::now_us()) == Phase::Measured {
                    let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                    if lag.record(us).is_err() {
                        lag.saturating_record(us);
                    }
                }
            }
            lag
        });
        Self { cancel, task }
    }

    /// Stops the probe and returns the lateness histogram, µs.
    pub async fn stop(self) -> Histogram<u64> {
        self.cancel.cancel();
        match tokio::time::timeout(STOP_TIMEOUT, self.task).await {
            Ok(Ok(h)) => h,
            _ => crate::recorder::total_histogram(),
        }
    }
}

#[cfg(test)]
mod tests;
