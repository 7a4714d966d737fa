//! The coordinator's side of fleet agents: [`AgentFleet`] starts the
//! agent processes, measures each one's clock offset, hands each its slice,
//! follows their connections, and at the end merges what they counted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use super::wire::{AgentReport, FromAgent, SliceSpec, ToAgent};
use crate::fleet::parts::{Part, Slice};
use crate::recorder::{Presence, Totals};
pub use crate::results::ClockOffset;
use crate::server_process::log_tail_suffix;

/// Bound on an agent answering the clock, or building its clients.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound on an agent stopping its clients and counting them, beyond the
/// fleet's own stop bound.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(60);

/// Clock exchanges per agent; the one with the shortest round trip counts.
const CLOCK_ROUNDS: usize = 8;

/// What every agent's stdout reader shares: per agent its clients ever
/// connected and connected now, the fleet's sum of them, and the first
/// agent failure.
type Shared<'a> = (
    &'a Arc<Vec<(AtomicUsize, AtomicUsize)>>,
    &'a Arc<Presence>,
    &'a Arc<Mutex<Option<String>>>,
);

/// One agent process.
struct Agent {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    replies: mpsc::UnboundedReceiver<FromAgent>,
    log: PathBuf,
    clock: ClockOffset,
}

/// The fleet's agents, running.
pub struct AgentFleet {
    agents: Vec<Agent>,
    presence: Arc<Presence>,
    /// The first agent that failed, and why.
    failure: Arc<Mutex<Option<String>>>,
}

/// What the agents handed back.
pub struct AgentOutcome {
    /// Totals per part, every agent's merged.
    pub part_totals: Vec<Totals>,
    /// What went wrong, per agent.
    pub problems: Vec<String>,
    /// Every agent's timer lag in the window, merged, µs.
    pub lag: Histogram<u64>,
}

impl AgentFleet {
    /// Starts `n` agents (`bin agent`), pinned to `cpus`, each logging to
    /// `log_of(k)`, and measures each one's clock; `presence` will count
    /// their clients' connections. All started, or none (an error).
    pub async fn spawn(
        n: usize,
        bin: &Path,
        cpus: &[usize],
        log_of: impl Fn(usize) -> PathBuf,
        presence: Arc<Presence>,
    ) -> anyhow::Result<Self> {
        let counts: Arc<Vec<(AtomicUsize, AtomicUsize)>> =
            Arc::new((0..n).map(|_| Default::default()).collect());
        let failure = Arc::new(Mutex::new(None));
        let mut agents = Vec::with_capacity(n);
        for k in 0..n {
            let log = log_of(k);
            let agent = spawn_one(k, bin, cpus, &log, (&counts, &presence, &failure))
                .with_context(|| format!("cannot start fleet agent {}", k + 1))?;
            agents.push(agent);
        }
        let mut fleet = Self {
            agents,
            presence,
            failure,
        };
        for k in 0..n {
            let clock = fleet.clock(k).await?;
            fleet.agents[k].clock = clock;
        }
        Ok(fleet)
    }

    /// The pids of the agents, for their CPU and memory.
    pub fn pids(&self) -> Vec<u32> {
        self.agents.iter().map(|a| a.pid).collect()
    }

    /// Each agent's clock offset, in order.
    pub fn clocks(&self) -> Vec<ClockOffset> {
        self.agents.iter().map(|a| a.clock).collect()
    }

    /// Measures agent `k`'s clock offset ([`CLOCK_ROUNDS`] exchanges).
    async fn clock(&mut self, k: usize) -> anyhow::Result<ClockOffset> {
        let mut best: Option<(u64, ClockOffset)> = None;
        for _ in 0..CLOCK_ROUNDS {
            let t0 = protocol::now_us();
            self.send(k, &ToAgent::Clock).await?;
            let now_us = match self.reply(k, ANSWER_TIMEOUT).await? {
                FromAgent::Time { now_us } => now_us,
                other => bail!("agent {} answered the clock with {other:?}", k + 1),
            };
            let t1 = protocol::now_us();
            let rtt = t1.saturating_sub(t0);
            let mid = t0 + rtt / 2;
            let c = ClockOffset {
                offset_us: now_us as i64 - mid as i64,
                bound_us: rtt.div_ceil(2),
            };
            if best.is_none_or(|(r, _)| rtt < r) {
                best = Some((rtt, c));
            }
        }
        Ok(best.map(|(_, c)| c).unwrap_or_default())
    }

    /// Hands agent `k` of `n` its slice of `spec` and waits (bounded) until
    /// every agent has built its clients.
    pub async fn start(&mut self, spec: &SliceSpec) -> anyhow::Result<()> {
        let n = self.agents.len();
        for k in 0..n {
            let mut mine = spec.clone();
            mine.slice = Slice { index: k, of: n };
            self.send(k, &ToAgent::Start(Box::new(mine))).await?;
        }
        let mut started = 0;
        for k in 0..n {
            match self.reply(k, ANSWER_TIMEOUT).await? {
                FromAgent::Started { clients } => started += clients,
                FromAgent::Failed { message } => bail!("agent {}: {message}", k + 1),
                other => bail!("agent {} answered start with {other:?}", k + 1),
            }
        }
        // Never a silently smaller fleet.
        if started != spec.scenario.clients {
            bail!(
                "the agents started {started} clients, the fleet has {}",
                spec.scenario.clients
            );
        }
        Ok(())
    }

    /// Clients that have connected at least once, over every agent.
    pub fn connected(&self) -> usize {
        self.presence.ever()
    }

    /// Why the fleet cannot go on (an agent exited or failed), if so.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Tells every agent the measured window.
    pub async fn set_window(&mut self, start_us: u64, end_us: u64) {
        self.broadcast(&ToAgent::Window { start_us, end_us }).await;
    }

    /// Tells every agent the window was cut at `end_us`.
    pub async fn cut(&mut self, end_us: u64) {
        self.broadcast(&ToAgent::Cut { end_us }).await;
    }

    async fn broadcast(&mut self, msg: &ToAgent) {
        for k in 0..self.agents.len() {
            if let Err(e) = self.send(k, msg).await {
                self.fail(format!("{e:#}"));
            }
        }
    }

    fn fail(&self, why: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(why);
        }
    }

    /// Stops every agent's clients, collects each one's totals (bounded)
    /// and merges them per part; an agent that does not report has all its
    /// clients' expected events counted missing (`window`: the measured
    /// window, for what they were due). The agents are gone afterwards.
    pub async fn stop(mut self, parts: &[Part], window: (u64, u64)) -> AgentOutcome {
        let n = self.agents.len();
        let mut part_totals: Vec<Totals> = parts.iter().map(|_| Totals::new()).collect();
        let mut problems = Vec::new();
        let mut lag = crate::recorder::total_histogram();
        for k in 0..n {
            let _ = self.send(k, &ToAgent::Stop).await;
        }
        let bound = crate::fleet::STOP_TIMEOUT + REPORT_TIMEOUT;
        for k in 0..n {
            let got = match self.reply(k, bound).await {
                Ok(FromAgent::Done(report)) => merge_report(*report, &mut part_totals),
                Ok(other) => Err(anyhow!("it answered stop with {other:?}")),
                Err(e) => Err(e),
            };
            match got {
                Ok((agent_problems, agent_lag)) => {
                    problems.extend(
                        agent_problems
                            .into_iter()
                            .map(|p| format!("agent {}: {p}", k + 1)),
                    );
                    let _ = lag.add(&agent_lag);
                }
                Err(e) => {
                    let slice = Slice { index: k, of: n };
                    let lost = count_lost(parts, slice, window, &mut part_totals);
                    problems.push(format!(
                        "fleet agent {} did not report ({e:#}); its {lost} clients' events count as missing{}",
                        k + 1,
                        log_tail_suffix(&self.agents[k].log)
                    ));
                }
            }
        }
        for a in &mut self.agents {
            if tokio::time::timeout(Duration::from_secs(2), a.child.wait())
                .await
                .is_err()
            {
                let _ = a.child.kill().await;
            }
        }
        AgentOutcome {
            part_totals,
            problems,
            lag,
        }
    }

    async fn send(&mut self, k: usize, msg: &ToAgent) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(msg).expect("agent messages serialise");
        line.push(b'\n');
        let a = &mut self.agents[k];
        tokio::time::timeout(ANSWER_TIMEOUT, a.stdin.write_all(&line))
            .await
            .map_err(|_| anyhow!("agent {} did not read its stdin", k + 1))?
            .with_context(|| format!("agent {} is gone", k + 1))
    }

    async fn reply(&mut self, k: usize, bound: Duration) -> anyhow::Result<FromAgent> {
        let a = &mut self.agents[k];
        match tokio::time::timeout(bound, a.replies.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => {
                let status = a.child.try_wait().ok().flatten();
                let status = status.map_or(String::new(), |s| format!(" ({s})"));
                bail!("agent {} exited{status}{}", k + 1, log_tail_suffix(&a.log))
            }
            Err(_) => bail!(
                "agent {} did not answer within {}",
                k + 1,
                crate::scenario::check::fmt_duration(bound)
            ),
        }
    }
}

/// Starts agent `k`: `bin agent`, its stdout read by a task that keeps its
/// connection counts in `counts[k]` (summed into `presence`) and passes
/// every other message on.
fn spawn_one(
    k: usize,
    bin: &Path,
    cpus: &[usize],
    log: &Path,
    (counts, presence, failure): Shared<'_>,
) -> anyhow::Result<Agent> {
    let mut cmd = crate::server_process::managed(bin, cpus, log, false)?;
    cmd.arg("agent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().unwrap_or(0);
    let stdin = child.stdin.take().context("agent stdin not captured")?;
    let stdout = child.stdout.take().context("agent stdout not captured")?;
    let (tx, replies) = mpsc::unbounded_channel();
    let (counts, presence, failure) = (counts.clone(), presence.clone(), failure.clone());
    let log_path = log.to_path_buf();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut finished = false;
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<FromAgent>(&line) {
                Ok(FromAgent::Status { ever, now }) => {
                    counts[k].0.store(ever, Ordering::Relaxed);
                    counts[k].1.store(now, Ordering::Relaxed);
                    let ever: usize = counts.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
                    let now: usize = counts.iter().map(|c| c.1.load(Ordering::Relaxed)).sum();
                    presence.set_counts(ever, now);
                }
                Ok(msg) => {
                    finished |= matches!(msg, FromAgent::Done(_));
                    if let FromAgent::Failed { message } = &msg
                        && let Ok(mut f) = failure.lock()
                    {
                        f.get_or_insert(format!("fleet agent {}: {message}", k + 1));
                    }
                    let _ = tx.send(msg);
                }
                Err(e) => tracing::warn!(agent = k + 1, "unreadable line from the agent: {e}"),
            }
        }
        if !finished && let Ok(mut f) = failure.lock() {
            f.get_or_insert(format!(
                "fleet agent {} exited before it reported{}",
                k + 1,
                log_tail_suffix(&log_path)
            ));
        }
    });
    Ok(Agent {
        child,
        pid,
        stdin,
        replies,
        log: log.to_path_buf(),
        clock: ClockOffset::default(),
    })
}

/// Adds an agent's totals into `part_totals`; returns its problems and lag.
fn merge_report(
    report: AgentReport,
    part_totals: &mut [Totals],
) -> anyhow::Result<(Vec<String>, Histogram<u64>)> {
    if report.parts.len() != part_totals.len() {
        bail!(
            "it reported {} parts, the fleet has {}",
            report.parts.len(),
            part_totals.len()
        );
    }
    let lag = crate::results::decode_histogram(&report.lag_us)?;
    let parts = report
        .parts
        .into_iter()
        .map(Totals::try_from)
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (total, part) in part_totals.iter_mut().zip(&parts) {
        total.merge(part);
    }
    Ok((report.problems, lag))
}

/// Counts the clients of `slice` lost, with every event their schedule put
/// in `window` missing; returns how many clients.
fn count_lost(
    parts: &[Part],
    slice: Slice,
    (start, end): (u64, u64),
    part_totals: &mut [Totals],
) -> usize {
    let mut first = 0;
    let mut lost = 0;
    for (part, total) in parts.iter().zip(part_totals) {
        let mut n = 0;
        let mut expected = 0;
        for j in (0..part.scenario.clients).filter(|j| slice.holds(first + j)) {
            let topic = crate::fleet::topic_of(j, part.schedule.topics);
            expected += part
                .schedule
                .ids_in_window(topic, start, end)
                .map_or(0, |(a, b)| b - a + 1);
            n += 1;
        }
        total.add_lost_clients(n, expected);
        first += part.scenario.clients;
        lost += n;
    }
    lost
}
