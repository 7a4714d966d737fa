//! The `pushbench` command line.
//!
//! `pushbench run` measures (the embedded default scenario unless
//! `--scenario FILE`; flags override the scenario; the harness pins itself
//! to the fleet's cores before it starts its runtime), `pushbench report DIR`
//! re-renders a report from `DIR/run.json`. Every error is one line on
//! stderr, `error: …`. Exit status: 0 when the run completed and every
//! transport verified, 1 when a run failed or did not verify, 2 for usage and
//! configuration errors (nothing was measured).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use protocol::TransportKind;
use tokio_util::sync::CancellationToken;

use crate::placement::{self, PinSpec, Placement};
use crate::progress::Progress;
use crate::runner::{self, RunOptions};
use crate::scenario::{Scenario, ScenarioPatch};
use crate::server_process::{self, SERVER_BIN_ENV};

/// Exit status of a run that failed or did not verify.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// pushbench: compare short polling, long polling, SSE and WebSocket with measurements.
#[derive(Debug, Parser)]
#[command(name = "pushbench", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (the embedded default unless --scenario) and write results/NAME/.
    Run(RunArgs),
    /// Re-render DIR/report.md, DIR/report.html and the charts from DIR/run.json alone.
    Report {
        /// A results directory holding run.json.
        dir: PathBuf,
    },
    /// Compare run NEW with run BASE; exit 1 if a figure regressed beyond the tolerance.
    Compare(crate::compare::CompareArgs),
}

/// Flags of `pushbench run`; each overrides the scenario's value.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML); keys it leaves out keep the default scenario's values.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Transports to measure, in order, comma-separated: short-poll, long-poll, sse, ws,
    /// and tcp (the raw-TCP floor; put it last: reports show ratios to it)
    /// [default: short-poll,long-poll,sse,ws,tcp].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub transports: Option<Vec<TransportKind>>,
    /// Runs of each transport; repetitions alternate the order (ABCD DCBA …) and
    /// the report shows the median and min–max of every figure [default: 1].
    #[arg(long, value_name = "K")]
    pub repeat: Option<u32>,
    /// Placement: auto (server on the first core, fleet on the others), none,
    /// or server:0,fleet:1 (cores as N, N-M or N+M) [default: auto].
    #[arg(long, value_name = "SPEC")]
    pub pin: Option<String>,
    /// Simulated clients, one connection each [default: 100].
    #[arg(long, value_name = "N")]
    pub clients: Option<usize>,
    /// Events per second per topic, fractional allowed, 0 = none [default: 10].
    #[arg(long, value_name = "F")]
    pub rate: Option<f64>,
    /// Size of each event's data filler, in bytes [default: 64].
    #[arg(long, value_name = "N")]
    pub payload_bytes: Option<usize>,
    /// Length of the measured window, e.g. 10s, 1m [default: 10s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Time the fleet runs before the window opens, e.g. 3s, 500ms [default: 3s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Short polling: each client's request interval, e.g. 1s, 200ms [default: 1s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub poll_interval: Option<Duration>,
    /// Number of topics t0..t{N-1}; client i subscribes to t{i % N} [default: 1].
    #[arg(long, value_name = "N")]
    pub topics: Option<u32>,
    /// Output directory [default: results/NAME, NAME being the scenario's name].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Measure a push-server that is already running at this base URL
    /// (e.g. http://10.0.0.5:8080) instead of starting one per transport;
    /// its rate, topics and payload (from GET /stats) replace the scenario's.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// The push-server binary [default: push-server beside the pushbench executable].
    #[arg(long, value_name = "PATH", env = SERVER_BIN_ENV)]
    pub server_bin: Option<PathBuf>,
}

impl RunArgs {
    /// The scenario flags given, as `--flag value` strings.
    fn overrides(&self) -> Vec<String> {
        let dur = |d: &Option<Duration>| d.map(crate::scenario::fmt_duration);
        [
            (
                "--transports",
                self.transports
                    .as_ref()
                    .map(|t| t.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")),
            ),
            ("--repeat", self.repeat.map(|v| v.to_string())),
            ("--pin", self.pin.clone()),
            ("--clients", self.clients.map(|v| v.to_string())),
            ("--rate", self.rate.map(|v| v.to_string())),
            ("--payload-bytes", self.payload_bytes.map(|v| v.to_string())),
            ("--duration", dur(&self.duration)),
            ("--warmup", dur(&self.warmup)),
            ("--poll-interval", dur(&self.poll_interval)),
            ("--topics", self.topics.map(|v| v.to_string())),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.map(|v| format!("{flag} {v}")))
        .collect()
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write durations like 3s, 500ms, 1m)"))
}

impl RunArgs {
    /// The scenario these flags describe: the file (or the default), flags applied.
    /// Not yet validated.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut s = match &self.scenario {
            Some(path) => Scenario::load(path)?,
            None => Scenario::default(),
        };
        let overrides = self.overrides();
        if !overrides.is_empty() {
            // The description was written for the scenario as it stood; say what changed.
            let note = format!("Overridden on the command line: {}.", overrides.join(" "));
            s.description = if s.description.is_empty() {
                note
            } else {
                format!("{} {note}", s.description)
            };
        }
        s.apply(ScenarioPatch {
            transports: self.transports.clone(),
            repeat: self.repeat,
            pin: self.pin.clone(),
            clients: self.clients,
            rate: self.rate,
            payload_bytes: self.payload_bytes,
            duration: self.duration,
            warmup: self.warmup,
            poll_interval: self.poll_interval,
            topics: self.topics,
            ..ScenarioPatch::default()
        });
        // `topics = 0` (one per client) follows the final `--clients`.
        s.resolve_topics();
        Ok(s)
    }
}

/// A failure and the exit status it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn usage(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_USAGE,
        error,
    }
}

fn failed(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_FAILED,
        error,
    }
}

/// Entry point of the `pushbench` binary.
pub fn main() -> ExitCode {
    run_cli(std::env::args_os().collect())
}

/// Runs the command line `args` (the program name first) and returns the exit status.
pub fn run_cli(args: Vec<OsString>) -> ExitCode {
    init_tracing();
    let command_line: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(EXIT_USAGE);
            }
            // clap explains over several lines; the contract is one line.
            // Keep the explanation (e.g. the names of missing arguments), drop
            // the usage block and the "for more information" hint.
            let text = e.render().to_string();
            let explanation: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            let line = if explanation.is_empty() {
                "error: bad command line".to_string()
            } else {
                explanation.join(" ")
            };
            eprintln!("{line} (see --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match cli.command {
        Command::Run(args) => cmd_run(&args, command_line),
        // Its own exit statuses (1 regression, 2 bad input) and output.
        Command::Compare(args) => return crate::compare::cmd_compare(&args),
        Command::Report { dir } => crate::report::render_dir(&dir)
            .with_context(|| format!("cannot render the report of {}", dir.display()))
            .map_err(failed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let msg = format!("{:#}", f.error).replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(f.code)
        }
    }
}

fn cmd_run(args: &RunArgs, command_line: Vec<String>) -> Result<(), Failure> {
    let scenario = args.scenario().map_err(usage)?;
    scenario.validate().map_err(usage)?;
    let server_bin = match &args.target {
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(usage(anyhow::anyhow!(
                    "--target must be a base URL like http://HOST:PORT, got {url:?}"
                )));
            }
            None
        }
        None => Some(server_process::find_server_bin(args.server_bin.as_deref()).map_err(usage)?),
    };
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&scenario.name));

    let placement = placement_for(&scenario, args.target.is_some()).map_err(usage)?;
    if !placement.fleet_cpus.is_empty() {
        // Before the runtime exists, so every worker and blocking thread
        // inherits the fleet's cores (and tokio sizes its workers to them).
        placement::pin_process(&placement.fleet_cpus).map_err(failed)?;
    }

    // The fleet is async and spread over its cores; the server is another process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
        .map_err(failed)?;
    let interrupt = CancellationToken::new();
    let opts = RunOptions {
        out_dir,
        target: args.target.clone(),
        server_bin,
        command_line,
        interrupt: interrupt.clone(),
        progress: Progress::auto(),
        placement,
    };
    let outcome = rt.block_on(async {
        tokio::spawn(cancel_on_signal(interrupt));
        runner::run(&scenario, &opts).await
    });
    // Bounded: nothing left running should outlive the run by much.
    rt.shutdown_timeout(Duration::from_secs(2));
    let outcome = outcome.map_err(failed)?;
    match outcome.failure() {
        None => Ok(()),
        Some(why) => Err(failed(anyhow::anyhow!(
            "{why} (results in {})",
            outcome.out_dir.display()
        ))),
    }
}

/// The placement for a run of `scenario` on this machine. Against a
/// `--target` the server is not ours: `auto` then leaves the fleet every core.
fn placement_for(scenario: &Scenario, target: bool) -> anyhow::Result<Placement> {
    let spec = scenario.pin_spec()?;
    let allowed = placement::allowed_cpus();
    if target && spec == PinSpec::Auto {
        return Ok(Placement {
            spec: spec.to_string(),
            server_cpus: Vec::new(),
            fleet_cpus: Vec::new(),
            note: "--target: the server is not started by pushbench; the fleet may use every core"
                .to_string(),
        });
    }
    placement::resolve(&spec, &allowed)
}

/// Cancels `token` on Ctrl-C or SIGTERM, so the run stops its server and fleet and saves.
async fn cancel_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("interrupted: stopping the server and the fleet, saving what was measured");
    token.cancel();
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second call (tests running the CLI in-process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pushbench").chain(args.iter().copied()))
    }

    #[test]
    fn flags_override_the_scenario() {
        let cli = parse(&[
            "run",
            "--transports",
            "sse,ws",
            "--clients",
            "7",
            "--rate",
            "2.5",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--poll-interval",
            "200ms",
            "--topics",
            "3",
            "--payload-bytes",
            "10",
            "--repeat",
            "3",
            "--pin",
            "none",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        let s = args.scenario().unwrap();
        assert_eq!(s.transports, vec![TransportKind::Sse, TransportKind::Ws]);
        assert_eq!(s.clients, 7);
        assert_eq!(s.rate, 2.5);
        assert_eq!(s.duration, Duration::from_secs(2));
        assert_eq!(s.warmup, Duration::from_millis(500));
        assert_eq!(s.poll_interval, Duration::from_millis(200));
        assert_eq!(s.topics, 3);
        assert_eq!(s.payload_bytes, 10);
        assert_eq!(s.repeat, 3);
        assert_eq!(s.pin, "none");
        assert_eq!(s.name, "default");
        assert!(
            s.description.ends_with(
                "Overridden on the command line: --transports sse,ws --repeat 3 --pin none \
                 --clients 7 --rate 2.5 --payload-bytes 10 --duration 2s --warmup 500ms \
                 --poll-interval 200ms --topics 3."
            ),
            "{}",
            s.description
        );
    }

    #[test]
    fn no_flags_is_the_default_scenario() {
        let Command::Run(args) = parse(&["run"]).unwrap().command else {
            panic!("run expected")
        };
        assert_eq!(args.scenario().unwrap(), Scenario::default());
    }

    #[test]
    fn help_states_the_default_scenario_s_values() {
        // The defaults in the help text are written out; keep them the embedded file's.
        use clap::CommandFactory as _;
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        let d = Scenario::default();
        let names: Vec<_> = d.transports.iter().map(|t| t.as_str()).collect();
        for expected in [
            format!("[default: {}]", names.join(",")),
            format!("[default: {}]", d.clients),
            format!("[default: {}]", d.rate),
            format!("[default: {}]", d.payload_bytes),
            format!("[default: {}]", crate::scenario::fmt_duration(d.duration)),
            format!("[default: {}]", crate::scenario::fmt_duration(d.warmup)),
            format!(
                "[default: {}]",
                crate::scenario::fmt_duration(d.poll_interval)
            ),
            format!("[default: {}]", d.topics),
            format!("[default: {}]", d.repeat),
            format!("[default: {}]", d.pin),
        ] {
            assert!(help.contains(&expected), "help lacks {expected}:\n{help}");
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let e = parse(&["run", "--duration", "abc"]).unwrap_err();
        assert!(e.to_string().contains("--duration"), "{e}");
        assert!(parse(&["run", "--transports", "sse,pigeon"]).is_err());
        assert!(parse(&["run", "--clients", "-3"]).is_err());
    }

    #[test]
    fn clients_decide_the_topics_of_a_one_topic_per_client_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("idle.toml");
        std::fs::write(&file, "topics = 0\nclients = 10\n").unwrap();
        let file = file.to_str().unwrap();
        let Command::Run(args) = parse(&["run", "--scenario", file, "--clients", "25"])
            .unwrap()
            .command
        else {
            panic!("run expected")
        };
        assert_eq!(args.scenario().unwrap().topics, 25);
    }

    #[test]
    fn placement_follows_the_scenario_and_spares_a_target() {
        let mut s = Scenario::default();
        let cores = placement::allowed_cpus();
        let p = placement_for(&s, false).unwrap();
        if cores.len() >= 2 {
            assert_eq!(p.server_cpus, cores[..1].to_vec());
            assert_eq!(p.fleet_cpus, cores[1..].to_vec());
        } else {
            assert!(p.server_cpus.is_empty() && p.fleet_cpus.is_empty());
        }
        let p = placement_for(&s, true).unwrap();
        assert!(p.server_cpus.is_empty() && p.fleet_cpus.is_empty());
        assert!(p.note.contains("--target"), "{}", p.note);
        s.pin = "server:0,fleet:4095".into();
        assert!(placement_for(&s, false).is_err());
    }
}
