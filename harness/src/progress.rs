//! Progress of a run: a bar per transport on a terminal, plain lines otherwise.
//!
//! Plain lines are what CI logs and pipes get: one line per phase
//! (`[sse] measuring 10s (100 clients connected)`) and one summary per
//! transport (`[sse] delivered 10000/10000, p50 0.41 ms, p99 1.2 ms`). On a
//! terminal the same phases drive an indicatif bar (connected clients while
//! connecting, elapsed time and ETA while warming up and measuring), and the
//! summaries are printed above it. Everything goes to stderr; stdout stays
//! free for scripts.

use std::cell::Cell;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use protocol::TransportKind;

use crate::report::format_ms;
use crate::results::TransportResult;
use crate::scenario::fmt_duration;

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

/// Progress of a whole run.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    mode: Mode,
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
        Self { mode }
    }

    /// The display mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A line not tied to one transport (e.g. where the results went).
    pub fn line(&self, msg: &str) {
        if self.mode != Mode::Quiet {
            eprintln!("{msg}");
        }
    }

    /// Progress of one transport with `clients` clients.
    pub fn transport(&self, transport: TransportKind, clients: usize) -> TransportProgress {
        let bar = (self.mode == Mode::Bars).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(style());
            bar.set_prefix(format!("[{transport}]"));
            bar
        });
        TransportProgress {
            transport,
            clients,
            mode: self.mode,
            bar,
            timed: Cell::new(None),
        }
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12.bold} [{bar:30.cyan/blue}] {wide_msg}")
        .expect("constant progress template is valid")
        .progress_chars("=> ")
}

/// Progress of one transport.
#[derive(Debug)]
pub struct TransportProgress {
    transport: TransportKind,
    clients: usize,
    mode: Mode,
    bar: Option<ProgressBar>,
    /// Name and length of the current timed phase (warm-up, measuring,
    /// draining). A `Cell` so that progress can be reported through a shared
    /// reference while the runner's wait loop also holds one.
    timed: Cell<Option<(&'static str, Duration)>>,
}

impl TransportProgress {
    /// Starting the server (or reading the target's schedule).
    pub fn starting(&self, what: &str) {
        self.timed.set(None);
        self.plain(what);
        if let Some(bar) = &self.bar {
            bar.set_length(1);
            bar.set_position(0);
            bar.set_message(what.to_string());
        }
    }

    /// Connecting the fleet.
    pub fn connecting(&self) {
        self.timed.set(None);
        self.plain(&format!("connecting {} clients", self.clients));
        if let Some(bar) = &self.bar {
            bar.set_length(self.clients as u64);
            bar.set_position(0);
            bar.set_message(format!("connecting 0/{} clients", self.clients));
        }
    }

    /// A timed phase begins: `name` is `warming up`, `measuring` or `draining`.
    pub fn timed_phase(&self, name: &'static str, length: Duration, connected: usize) {
        self.timed.set(Some((name, length)));
        self.plain(&format!(
            "{name} {} ({connected} clients connected)",
            fmt_duration(round_ms(length))
        ));
        if let Some(bar) = &self.bar {
            bar.set_length(length.as_millis().max(1) as u64);
            bar.set_position(0);
            bar.reset_eta();
        }
        self.tick(connected, Duration::ZERO);
    }

    /// Periodic update: clients connected, time into the current phase.
    pub fn tick(&self, connected: usize, elapsed: Duration) {
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
        self.print(&format!("[{}] problem: {msg}", self.transport));
    }

    /// The transport is done: clears the bar and prints its summary line.
    pub fn finish(self, result: &TransportResult) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Quiet {
            eprintln!("{}", summary_line(result));
        }
    }

    fn plain(&self, what: &str) {
        if self.mode == Mode::Plain {
            eprintln!("[{}] {what}", self.transport);
        }
    }

    fn print(&self, line: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(line),
            (None, Mode::Quiet) => {}
            (None, _) => eprintln!("{line}"),
        }
    }
}

impl Drop for TransportProgress {
    fn drop(&mut self) {
        // An early return (interrupt, error) must not leave a bar drawn.
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
        }
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
        r.transport,
        c.delivered,
        c.expected,
        format_ms(r.latency.p50 as f64 / 1000.0),
        format_ms(r.latency.p99 as f64 / 1000.0),
        r.delivered_per_s
    );
    if r.repetition > 1 {
        line.insert_str(
            r.transport.as_str().len() + 1,
            &format!(" #{}", r.repetition),
        );
    }
    let cost = cost_summary(r);
    if !cost.is_empty() {
        line.push_str(", ");
        line.push_str(&cost);
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
mod tests {
    use super::*;
    use crate::results::{Counts, Histograms, Summary};

    #[test]
    fn summary_names_counts_percentiles_and_problems() {
        let mut r = TransportResult {
            transport: TransportKind::Sse,
            verified: true,
            problems: vec![],
            clients: 100,
            clients_connected: 100,
            window_s: 10.0,
            window_start_us: 1,
            counts: Counts {
                expected: 10_000,
                delivered: 10_000,
                ..Counts::default()
            },
            delivered_per_s: 1000.0,
            latency: Summary {
                p50: 410,
                p99: 1_200,
                ..Summary::default()
            },
            connect: Summary::default(),
            histograms: Histograms::default(),
            repetition: 1,
            wire: None,
            server: None,
            fleet: Default::default(),
            timeline: Vec::new(),
            server_config: serde_json::Value::Null,
            floor: None,
        };
        assert_eq!(
            summary_line(&r),
            "[sse] delivered 10000/10000, p50 0.410 ms, p99 1.20 ms, 1000 events/s"
        );
        r.verified = false;
        r.problems = vec!["3 events missing".into()];
        assert!(summary_line(&r).ends_with("NOT VERIFIED: 3 events missing"));
        r.verified = true;
        r.repetition = 2;
        r.server = Some(crate::results::ServerUsage {
            cpu_s: 0.03,
            rss_baseline_bytes: 1 << 20,
            rss_idle_bytes: (1 << 20) + 100 * 7 * 1024,
            idle_clients: 100,
            ..Default::default()
        });
        r.fleet.generator_bound = true;
        r.fleet.generator_bound_reasons = vec!["the fleet used 97%".into()];
        let line = summary_line(&r);
        assert!(line.starts_with("[sse #2] delivered"), "{line}");
        assert!(
            line.contains("CPU 3.0 µs/event, RSS +7.0 KiB/conn"),
            "{line}"
        );
        assert!(
            line.ends_with("GENERATOR-BOUND: the fleet used 97%"),
            "{line}"
        );
    }
}
