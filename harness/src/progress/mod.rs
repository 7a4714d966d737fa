//! Progress of a run: a bar per transport on a terminal, plain lines
//! otherwise, and the time left for the whole run.
//!
//! Plain lines are what CI logs and pipes get: one line per phase
//! (`[sse] measuring 10s (100 clients connected; run ETA 1m 5s)`), a status
//! line every [`HEARTBEAT`] during a long phase, and one summary per
//! transport (`[sse] delivered 10000/10000, p50 0.41 ms, p99 1.2 ms`). On a
//! terminal the same phases drive two indicatif bars: the run's (planned
//! time done, and what is left) and the current transport's (connected
//! clients while connecting, elapsed time while warming up, measuring and
//! draining); summaries are printed above them. Everything goes to stderr;
//! stdout stays free for scripts (`pushbench run --json`).
//!
//! The run's ETA is planned, not extrapolated: the runner announces every
//! transport run's phases up front ([`Progress::plan`]); the time left is the
//! rest of the current phase (its real length once known), the planned
//! phases after it, and the planned length of every transport run not yet
//! begun. Timed phases are fixed by the scenario, so the ETA is close; start,
//! connect and stop are estimates ([`START_ESTIMATE`], [`STOP_ESTIMATE`]).

use std::cell::Cell;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::format_ms;
use crate::results::TransportResult;
use crate::scenario::check::fmt_duration;

/// Planned time to start a server and read its settings (about 0.1 s on
/// the reference machine; waiting for the previous run's sockets to close
/// is usually instant).
pub const START_ESTIMATE: Duration = Duration::from_millis(250);

/// Planned time to stop the fleet and the server (tens of ms when they
/// stop cleanly).
pub const STOP_ESTIMATE: Duration = Duration::from_millis(250);

/// In plain mode, a phase still running after this long gets a status line,
/// and again this often: a long run's log shows it is alive and when it ends.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif bars (stderr is a terminal).
    Bars,
    /// One line per phase on stderr.
    Plain,
    /// Nothing.
    Quiet,
}

/// The planned length of one transport run, phase by phase: what the ETA
/// is made of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportPlan {
    /// Starting the server.
    pub start: Duration,
    /// Connecting the fleet.
    pub connect: Duration,
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Drain after the window.
    pub drain: Duration,
    /// Stopping the fleet and the server.
    pub stop: Duration,
}

impl TransportPlan {
    /// A plan with the estimated start ([`START_ESTIMATE`]) and stop
    /// ([`STOP_ESTIMATE`]) around the given phases.
    pub fn new(connect: Duration, warmup: Duration, measure: Duration, drain: Duration) -> Self {
        Self {
            start: START_ESTIMATE,
            connect,
            warmup,
            measure,
            drain,
            stop: STOP_ESTIMATE,
        }
    }

    /// The whole planned length.
    pub fn total(&self) -> Duration {
        self.phases().iter().sum()
    }

    /// Phase lengths in the order of [`Phase`].
    fn phases(&self) -> [Duration; 6] {
        [
            self.start,
            self.connect,
            self.warmup,
            self.measure,
            self.drain,
            self.stop,
        ]
    }
}

/// A timed phase of a transport run: its length is fixed when it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timed {
    /// The fleet runs before the measured window opens.
    WarmingUp,
    /// The measured window.
    Measuring,
    /// Clients keep running after the window so late events still arrive.
    Draining,
}

impl Timed {
    /// The words shown for it.
    pub fn name(self) -> &'static str {
        match self {
            Timed::WarmingUp => "warming up",
            Timed::Measuring => "measuring",
            Timed::Draining => "draining",
        }
    }

    fn phase(self) -> Phase {
        match self {
            Timed::WarmingUp => Phase::Warmup,
            Timed::Measuring => Phase::Measure,
            Timed::Draining => Phase::Drain,
        }
    }
}

/// Every phase of a transport run, in order (indexes [`TransportPlan::phases`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start = 0,
    Connect,
    Warmup,
    Measure,
    Drain,
    Stop,
}

/// The whole run's plan, shared by [`Progress`] and its transports.
#[derive(Debug, Default)]
struct RunPlan {
    /// Planned length of the whole run.
    total: Duration,
    /// Planned length of the transport runs not yet begun.
    pending: Duration,
    /// Transport runs planned.
    runs: usize,
    /// Transport runs begun so far.
    begun: usize,
    /// The run's bar (terminal only).
    bar: Option<ProgressBar>,
}

#[derive(Debug)]
struct Shared {
    /// A lock, not atomics: touched a few times a second, never on a hot path.
    plan: Mutex<RunPlan>,
    /// Holds the bars on a terminal, so lines print above them.
    multi: Option<MultiProgress>,
}

impl Shared {
    fn plan(&self) -> std::sync::MutexGuard<'_, RunPlan> {
        // Progress is cosmetic: a panic elsewhere must not make it panic too.
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prints `msg` on stderr, above the bars if there are any.
    fn println(&self, msg: &str) {
        match &self.multi {
            // A hidden target (stderr not a terminal) would swallow the line.
            Some(multi) if !multi.is_hidden() => {
                let _ = multi.println(msg);
            }
            _ => eprintln!("{msg}"),
        }
    }

    /// The run's time left when the current transport has `current` left;
    /// moves the run's bar to match.
    fn run_eta(&self, current: Duration) -> Duration {
        let plan = self.plan();
        let eta = current + plan.pending;
        if let Some(bar) = &plan.bar {
            let done = plan.total.saturating_sub(eta);
            bar.set_position(done.as_millis() as u64);
            bar.set_message(format!(
                "transport {}/{}, ETA {}",
                plan.begun.max(1),
                plan.runs,
                fmt_eta(eta)
            ));
        }
        eta
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // An early return (error, interrupt) must not leave the run's bar drawn.
        if let Some(bar) = self.plan().bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Progress of a whole run.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
    shared: Arc<Shared>,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn auto() -> Self {
        Self::new(if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Plain
        })
    }

    /// Progress shown in `mode`.
    pub fn new(mode: Mode) -> Self {
        let multi = (mode == Mode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            mode,
            shared: Arc::new(Shared {
                plan: Mutex::new(RunPlan::default()),
                multi,
            }),
        }
    }

    /// The display mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Announces the run: the plan of every transport run, in order. Shows
    /// the run's bar (terminal) or one line with the planned length (plain).
    pub fn plan(&self, runs: &[TransportPlan]) {
        let total: Duration = runs.iter().map(TransportPlan::total).sum();
        let mut plan = self.shared.plan();
        plan.total = total;
        plan.pending = total;
        plan.runs = runs.len();
        plan.begun = 0;
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => eprintln!(
                "plan: {} transport run{}, about {}",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" },
                fmt_eta(total)
            ),
            Mode::Bars => {
                if let Some(multi) = &self.shared.multi {
                    let bar = multi.add(ProgressBar::new(total.as_millis().max(1) as u64));
                    bar.set_style(style("green/white"));
                    bar.set_prefix("[run]");
                    bar.set_message(format!("about {} left", fmt_eta(total)));
                    if let Some(old) = plan.bar.replace(bar) {
                        old.finish_and_clear();
                    }
                }
            }
        }
    }

    /// The run is over: clears the run's bar.
    pub fn finish(&self) {
        if let Some(bar) = self.shared.plan().bar.take() {
            bar.finish_and_clear();
            if let Some(multi) = &self.shared.multi {
                multi.remove(&bar);
            }
        }
    }

    /// A line not tied to one transport (e.g. where the results went).
    pub fn line(&self, msg: &str) {
        if self.mode != Mode::Quiet {
            self.shared.println(msg);
        }
    }

    /// Progress of one transport run with `clients` clients, planned as
    /// `plan`; `name` is the transport's (`sse`) or a target's.
    pub fn transport(&self, name: &str, clients: usize, plan: TransportPlan) -> TransportProgress {
        let ordinal = {
            let mut run = self.shared.plan();
            run.pending = run.pending.saturating_sub(plan.total());
            run.begun += 1;
            // A transport the plan did not announce still counts.
            run.runs = run.runs.max(run.begun);
            (run.begun, run.runs)
        };
        let bar = self.shared.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(1));
            bar.set_style(style("cyan/blue"));
            bar.set_prefix(format!("[{name}]"));
            bar
        });
        let now = Instant::now();
        TransportProgress {
            name: name.to_string(),
            clients,
            mode: self.mode,
            bar,
            shared: self.shared.clone(),
            plan,
            ordinal,
            phase: Cell::new(Phase::Start),
            phase_len: Cell::new(plan.start),
            phase_started: Cell::new(now),
            last_heartbeat: Cell::new(now),
            timed: Cell::new(None),
        }
    }
}

fn style(colours: &str) -> ProgressStyle {
    let template = format!("{{prefix:>12.bold}} [{{bar:30.{colours}}}] {{wide_msg}}");
    ProgressStyle::with_template(&template)
        .expect("constant progress template is valid")
        .progress_chars("=> ")
}

/// A time left, to the second (`1m 5s`).
pub fn fmt_eta(d: Duration) -> String {
    fmt_duration(Duration::from_secs(d.as_secs_f64().round() as u64))
}

/// Progress of one transport.
#[derive(Debug)]
pub struct TransportProgress {
    /// The transport's name, or a target's.
    name: String,
    clients: usize,
    mode: Mode,
    bar: Option<ProgressBar>,
    shared: Arc<Shared>,
    plan: TransportPlan,
    /// This transport run's place in the run: (n, of).
    ordinal: (usize, usize),
    // `Cell`s so that progress can be reported through a shared reference
    // while the runner's wait loop also holds one.
    /// The current phase, its length (planned, or real once known) and start.
    phase: Cell<Phase>,
    phase_len: Cell<Duration>,
    phase_started: Cell<Instant>,
    /// When plain mode last printed a status line in this phase.
    last_heartbeat: Cell<Instant>,
    /// Name and length of the current timed phase, if it is one.
    timed: Cell<Option<(&'static str, Duration)>>,
}

impl TransportProgress {
    fn enter(&self, phase: Phase, length: Duration) {
        let now = Instant::now();
        self.phase.set(phase);
        self.phase_len.set(length);
        self.phase_started.set(now);
        self.last_heartbeat.set(now);
    }

    /// Time this transport run has left at `now`: the rest of the current
    /// phase (none once it overruns) and the planned phases after it.
    pub fn remaining_at(&self, now: Instant) -> Duration {
        let phase = self.phase.get() as usize;
        let into = now.saturating_duration_since(self.phase_started.get());
        let rest: Duration = self.plan.phases()[phase + 1..].iter().sum();
        self.phase_len.get().saturating_sub(into) + rest
    }

    /// Time the whole run has left at `now` (this transport's and the
    /// planned length of those not yet begun).
    pub fn run_eta_at(&self, now: Instant) -> Duration {
        self.shared.run_eta(self.remaining_at(now))
    }

    /// Starting the server (or reading the target's schedule).
    pub fn starting(&self, what: &str) {
        self.enter(Phase::Start, self.plan.start);
        self.timed.set(None);
        let eta = self.run_eta_at(Instant::now());
        let (n, of) = self.ordinal;
        self.plain(&format!(
            "{what} (transport run {n} of {of}; run ETA {})",
            fmt_eta(eta)
        ));
        if let Some(bar) = &self.bar {
            bar.set_length(1);
            bar.set_position(0);
            bar.set_message(what.to_string());
        }
    }

    /// Connecting the fleet.
    pub fn connecting(&self) {
        self.enter(Phase::Connect, self.plan.connect);
        self.timed.set(None);
        self.run_eta_at(Instant::now());
        self.plain(&format!("connecting {} clients", self.clients));
        if let Some(bar) = &self.bar {
            bar.set_length(self.clients as u64);
            bar.set_position(0);
            bar.set_message(format!("connecting 0/{} clients", self.clients));
        }
    }

    /// A timed phase begins, `length` long.
    pub fn timed_phase(&self, phase: Timed, length: Duration, connected: usize) {
        let name = phase.name();
        self.enter(phase.phase(), length);
        self.timed.set(Some((name, length)));
        let eta = self.run_eta_at(Instant::now());
        self.plain(&format!(
            "{name} {} ({connected} clients connected; run ETA {})",
            fmt_duration(round_ms(length)),
            fmt_eta(eta)
        ));
        if let Some(bar) = &self.bar {
            bar.set_length(length.as_millis().max(1) as u64);
            bar.set_position(0);
            bar.reset_eta();
        }
        self.tick(connected, Duration::ZERO);
    }

    /// Stopping the fleet and the server.
    pub fn stopping(&self) {
        self.enter(Phase::Stop, self.plan.stop);
        self.timed.set(None);
        self.run_eta_at(Instant::now());
        self.plain("stopping");
        if let Some(bar) = &self.bar {
            bar.set_length(1);
            bar.set_position(0);
            bar.set_message("stopping");
        }
    }

    /// Periodic update: clients connected, time into the current phase.
    pub fn tick(&self, connected: usize, elapsed: Duration) {
        if self.mode == Mode::Quiet {
            return;
        }
        let now = Instant::now();
        let eta = self.run_eta_at(now);
        if self.mode == Mode::Plain
            && now.saturating_duration_since(self.last_heartbeat.get()) >= HEARTBEAT
        {
            self.last_heartbeat.set(now);
            let what = match self.timed.get() {
                Some((name, length)) => format!(
                    "{name} {:.0}/{:.0} s",
                    elapsed.min(length).as_secs_f64(),
                    length.as_secs_f64()
                ),
                None => "connecting".to_string(),
            };
            self.plain(&format!(
                "{what}, {connected}/{} clients connected; run ETA {}",
                self.clients,
                fmt_eta(eta)
            ));
        }
        let Some(bar) = &self.bar else { return };
        match self.timed.get() {
            None => {
                bar.set_position(connected as u64);
                bar.set_message(format!("connecting {connected}/{} clients", self.clients));
            }
            Some((name, length)) => {
                let elapsed = elapsed.min(length);
                bar.set_position(elapsed.as_millis() as u64);
                bar.set_message(format!(
                    "{name} {:.1}/{:.1} s ({:.1} s left), {connected}/{} connected",
                    elapsed.as_secs_f64(),
                    length.as_secs_f64(),
                    (length - elapsed).as_secs_f64(),
                    self.clients,
                ));
            }
        }
    }

    /// Something went wrong (printed at once, also kept in the results).
    pub fn problem(&self, msg: &str) {
        if self.mode != Mode::Quiet {
            self.shared
                .println(&format!("[{}] problem: {msg}", self.name));
        }
    }

    /// The transport is done: clears the bar and prints its summary line.
    pub fn finish(self, result: &TransportResult) {
        self.clear();
        if self.mode != Mode::Quiet {
            self.shared.println(&summary_line(result));
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
            if let Some(multi) = &self.shared.multi {
                multi.remove(bar);
            }
        }
    }

    fn plain(&self, what: &str) {
        if self.mode == Mode::Plain {
            eprintln!("[{}] {what}", self.name);
        }
    }
}

impl Drop for TransportProgress {
    fn drop(&mut self) {
        // An early return (interrupt, error) must not leave a bar drawn.
        self.clear();
    }
}

/// Durations shown to people: to the nearest 10 ms (a phase computed from
/// clocks is 1.9996 s long, and is shown as `2s`).
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis((d.as_secs_f64() * 100.0).round() as u64 * 10)
}

/// `[sse] delivered 10000/10000, p50 0.41 ms, p99 1.2 ms` (plus what failed, if it did).
pub fn summary_line(r: &TransportResult) -> String {
    let c = &r.counts;
    let mut line = format!(
        "[{}] delivered {}/{}, p50 {} ms, p99 {} ms, {:.0} events/s",
        r.name(),
        c.delivered,
        c.expected,
        format_ms(r.latency.p50 as f64 / 1000.0),
        format_ms(r.latency.p99 as f64 / 1000.0),
        r.delivered_per_s
    );
    if r.repetition > 1 {
        line.insert_str(r.name().len() + 1, &format!(" #{}", r.repetition));
    }
    let cost = cost_summary(r);
    if !cost.is_empty() {
        line.push_str(", ");
        line.push_str(&cost);
    }
    if r.is_mixed() {
        let groups: Vec<String> = r
            .groups
            .iter()
            .map(|g| {
                let (c, l) = (&g.result.counts, &g.result.latency);
                format!(
                    "{} {}/{} p99 {} ms",
                    g.name,
                    c.delivered,
                    c.expected,
                    format_ms(l.p99 as f64 / 1000.0)
                )
            })
            .collect();
        line.push_str(" — groups: ");
        line.push_str(&groups.join("; "));
    }
    if !r.verified {
        line.push_str(" — NOT VERIFIED: ");
        line.push_str(&r.problems.join("; "));
    }
    if r.fleet.generator_bound {
        line.push_str(" — GENERATOR-BOUND: ");
        line.push_str(&r.fleet.generator_bound_reasons.join("; "));
    }
    line
}

/// `CPU 3.1 µs/event, 180 B down/event, RSS +7.2 KiB/conn` (what is known).
fn cost_summary(r: &TransportResult) -> String {
    let mut parts = Vec::new();
    let delivered = r.counts.delivered;
    if let (Some(s), true) = (&r.server, delivered > 0) {
        parts.push(format!(
            "CPU {:.1} µs/event",
            s.cpu_s * 1e6 / delivered as f64
        ));
    }
    if let (Some(w), true) = (&r.wire, delivered > 0) {
        parts.push(format!(
            "{:.0} B down/event",
            w.window.bytes_out as f64 / delivered as f64
        ));
    }
    if let Some(s) = r.server.as_ref().filter(|s| s.idle_clients > 0) {
        let per = (s.rss_idle_bytes as f64 - s.rss_baseline_bytes as f64) / s.idle_clients as f64;
        parts.push(format!("RSS {:+.1} KiB/conn", per / 1024.0));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests;
