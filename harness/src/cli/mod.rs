//! The `pushbench` command line.
//!
//! `pushbench run` measures (the embedded default scenario unless
//! `--scenario FILE`; flags override the scenario; the harness pins itself
//! to the fleet's cores before it starts its runtime), `pushbench report DIR`
//! re-renders a report from `DIR/run.json`, `pushbench capacity` searches
//! each transport's capacity within a latency SLO, `pushbench schema` prints the
//! JSON Schema of `run.json` (or of the `--json` summary). Every error is one
//! line on stderr, `error: …`. Exit status: 0 when the run completed and
//! every transport verified, 1 when a run failed or did not verify, 2 for
//! usage and configuration errors (nothing was measured).
//!
//! For scripts: `run --quiet` prints nothing but that error line;
//! `run --json` prints exactly one JSON object on stdout when the run ends
//! ([`RunSummary`], schema in `schemas/summary.schema.json`), whatever the
//! outcome, once the command line parsed; progress stays on stderr.

use crate::scenario::args::ScenarioArgs;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::placement::{self, PinSpec, Placement};
use crate::progress::{Mode, Progress};
use crate::report;
use crate::results::summary::RunSummary;
use crate::results::summary::SUMMARY_VERSION;
use crate::results::summary::TransportSummary;
use crate::results::summary::summary_schema;
use crate::results::{self, TransportResult};
use crate::runner::{self, RunOptions, RunOutcome};
use crate::scenario::Scenario;
use crate::server_process::{self, SERVER_BIN_ENV};

/// Exit status of a run that failed or did not verify.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// pushbench: compare short polling, long polling, SSE and WebSocket with measurements.
///
/// Exit status, every command: 0 success; 1 the work ran and failed (a run
/// that did not verify, a regression found by compare); 2 bad input (a bad
/// flag or scenario, a results directory that cannot be read).
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
    // Boxed: its flags are several times the size of the other variants.
    Run(Box<RunArgs>),
    /// Re-render DIR/report.md, DIR/report.html and the charts from DIR/run.json alone.
    Report {
        /// A results directory holding run.json.
        dir: PathBuf,
    },
    /// Search, per transport, the most clients (or the highest rate) served within a
    /// p99 latency SLO; writes results/capacity-NAME/ (capacity.json, report.md, capacity.svg).
    Capacity(Box<crate::capacity::CapacityArgs>),
    /// Compare run NEW with run BASE; exit 1 if a figure regressed beyond the tolerance.
    Compare(crate::compare::CompareArgs),
    /// Print a JSON Schema (draft 2020-12) on stdout: of run.json, or of the summary `run --json` prints.
    Schema {
        /// Which document.
        #[arg(value_enum, default_value_t = SchemaKind::Run)]
        which: SchemaKind,
    },
    /// Start push-server with its live page (the four transports side by side,
    /// a session heartbeat, new-message notifications) and print its URL.
    Demo(crate::demo::DemoArgs),
    /// The link emulator between the fleet and the server (started by `run
    /// --link`; not for direct use).
    #[command(hide = true)]
    Relay(crate::link::process::RelayArgs),
    /// A fleet agent: runs the slice of a fleet its coordinator (`run
    /// --agents N`) sends on stdin (not for direct use).
    #[command(hide = true)]
    Agent,
}

/// The documents `pushbench schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// run.json, what every run writes.
    Run,
    /// The one JSON object `run --json` prints.
    Summary,
}

/// Flags of `pushbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario and the flags that override its values.
    #[command(flatten)]
    pub flags: ScenarioArgs,
    /// Sweep a key over a list of values, repeatable: KEY=V1,V2,… with KEY
    /// clients, rate, payload_bytes, rtt_ms or loss_pct (the link's); every
    /// transport runs at every point of the grid (the product of the lists,
    /// in that order, clients slowest); replaces the scenario's [sweep] table
    /// [default: the scenario's sweep, none in the default scenario].
    #[arg(long = "sweep", value_name = "KEY=LIST")]
    pub sweep: Vec<String>,
    /// Output directory [default: results/NAME, NAME being the scenario's name].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Measure a push-server that is already running at this base URL
    /// (e.g. http://10.0.0.5:8080) instead of starting one per transport;
    /// its rate, topics and payload (from GET /stats) replace the scenario's
    /// [default: none: a fresh push-server per transport].
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// The push-server binary [default: push-server beside the pushbench executable].
    #[arg(long, value_name = "PATH", env = SERVER_BIN_ENV)]
    pub server_bin: Option<PathBuf>,
    /// Print nothing but errors: no progress, no per-transport lines, no
    /// "results:" line; the exit status tells the outcome [default: off].
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// When the run ends, print one JSON object summarising it on stdout and
    /// nothing else there (schema: `pushbench schema summary`); progress
    /// still goes to stderr, silenced by --quiet [default: off].
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    /// The scenario these flags describe: the file (or the default), flags
    /// and `--sweep` applied. Not yet validated.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut s = self.flags.scenario()?;
        if !self.sweep.is_empty() {
            let mut sweep = crate::scenario::sweep::Sweep::default();
            for spec in &self.sweep {
                sweep.set_from_spec(spec)?;
            }
            let note = format!("Swept on the command line: {}.", sweep.describe());
            s.description = if s.description.is_empty() {
                note
            } else {
                format!("{} {note}", s.description)
            };
            s.sweep = sweep;
        }
        // `topics = 0` (one per client) follows the final `--clients` (or,
        // in a sweep over clients, each point's).
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
    // A fleet needs one file per client: use all the kernel allows this
    // process (the soft limit is often 1,024 while the hard one is far higher).
    crate::sys::raise_open_file_limit();
    run_cli(std::env::args_os().collect())
}

/// Runs the command line `args` (the program name first) and returns the exit status.
pub fn run_cli(args: Vec<OsString>) -> ExitCode {
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
    // `--quiet` means errors only, from the logs as from everything else.
    init_tracing(match &cli.command {
        Command::Run(a) => a.quiet,
        Command::Capacity(a) => a.quiet,
        _ => false,
    });
    let result = match cli.command {
        Command::Run(args) => return run_and_summarise(&args, command_line),
        Command::Capacity(args) => cmd_capacity(&args, command_line),
        // Its own exit statuses (1 regression, 2 bad input) and output.
        Command::Compare(args) => return crate::compare::cmd_compare(&args),
        Command::Report { dir } => {
            // An unreadable results directory is bad input, as for compare.
            match results::io::read_run(&dir) {
                Err(e) => Err(usage(
                    e.context(format!("cannot render the report of {}", dir.display())),
                )),
                Ok(_) => crate::report::render_dir(&dir)
                    .with_context(|| format!("cannot render the report of {}", dir.display()))
                    .map_err(failed),
            }
        }
        Command::Relay(args) => crate::link::process::run(&args).map_err(failed),
        Command::Agent => crate::agent::run().map_err(failed),
        Command::Demo(args) => crate::demo::run(&args).map_err(failed),
        Command::Schema { which } => {
            let schema = match which {
                SchemaKind::Run => results::schema::run_schema(),
                SchemaKind::Summary => summary_schema(),
            };
            let text = serde_json::to_string_pretty(&schema).expect("a JSON value serialises");
            print_stdout(&text);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => exit_with(&f),
    }
}

/// Prints `text` and a newline on stdout. A reader that went away (`| head`)
/// is not an error worth a panic, which `println!` would make of it.
fn print_stdout(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Prints the one-line error of `f` and returns its exit status.
fn exit_with(f: &Failure) -> ExitCode {
    eprintln!("error: {}", one_line(&f.error));
    ExitCode::from(f.code)
}

fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}

/// `pushbench run`: runs, then reports the outcome as the flags ask (the
/// `--json` summary on stdout, the one-line error on stderr, the exit status).
fn run_and_summarise(args: &RunArgs, command_line: Vec<String>) -> ExitCode {
    let (outcome, failure) = match cmd_run(args, command_line) {
        Ok(outcome) => {
            let failure = outcome.failure().map(|why| {
                failed(anyhow::anyhow!(
                    "{why} (results in {})",
                    outcome.out_dir.display()
                ))
            });
            (Some(outcome), failure)
        }
        Err(f) => (None, Some(f)),
    };
    if args.json {
        let summary = RunSummary::new(outcome.as_ref(), failure.as_ref());
        match serde_json::to_string(&summary) {
            Ok(text) => print_stdout(&text),
            // Only non-string map keys fail to serialise, and there are none.
            Err(e) => eprintln!("error: cannot serialise the summary: {e}"),
        }
    }
    match failure {
        None => ExitCode::SUCCESS,
        Some(f) => exit_with(&f),
    }
}

fn cmd_run(args: &RunArgs, command_line: Vec<String>) -> Result<RunOutcome, Failure> {
    let scenario = args.scenario().map_err(usage)?;
    scenario
        .validate()
        .map_err(|e| usage(args.flags.locate(e)))?;
    if scenario.browser_clients > 0 {
        crate::browser::check_available().map_err(usage)?;
    }
    if scenario.brokered() {
        if args.target.is_some() {
            return Err(usage(anyhow::anyhow!(
                "--target cannot run with a broker: pushbench starts the servers behind Redis \
                 itself (`servers`, `broker`)"
            )));
        }
        crate::server_process::find_redis().map_err(usage)?;
    }
    let server_bin = match &args.target {
        Some(_) if scenario.sweep.rate.is_some() || scenario.sweep.payload_bytes.is_some() => {
            return Err(usage(anyhow::anyhow!(
                "--target: a running server's rate and payload are its own, so a sweep over \
                 `rate` or `payload_bytes` cannot run against it (sweep `clients` only)"
            )));
        }
        Some(_) if scenario.is_mixed() => {
            return Err(usage(anyhow::anyhow!(
                "--target cannot run a mixed scenario ([[group]]): its groups need a push-server \
                 started with their topic groups (--topic-group), which pushbench starts itself"
            )));
        }
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
    let opts = RunOptions {
        out_dir,
        target: args.target.clone(),
        server_bin,
        command_line,
        interrupt: CancellationToken::new(),
        progress: progress_for(args.quiet),
        placement,
    };
    in_runtime(&opts, args.quiet, runner::run(&scenario, &opts))
}

/// Progress bars on a terminal, plain lines otherwise, nothing when `quiet`.
fn progress_for(quiet: bool) -> Progress {
    if quiet {
        Progress::new(Mode::Quiet)
    } else {
        Progress::auto()
    }
}

/// Pins this process to the fleet's cores, then runs `work` on a new tokio
/// runtime with Ctrl-C and SIGTERM cancelling `opts.interrupt`.
fn in_runtime<T>(
    opts: &RunOptions,
    quiet: bool,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> Result<T, Failure> {
    if !opts.placement.fleet_cpus.is_empty() {
        // Before the runtime exists, so every worker and blocking thread
        // inherits the fleet's cores (and tokio sizes its workers to them).
        placement::pin_process(&opts.placement.fleet_cpus).map_err(failed)?;
    }
    // The fleet is async and spread over its cores; the server is another process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
        .map_err(failed)?;
    let interrupt = opts.interrupt.clone();
    let outcome = rt.block_on(async {
        tokio::spawn(cancel_on_signal(interrupt, quiet));
        work.await
    });
    // Bounded: nothing left running should outlive the run by much.
    rt.shutdown_timeout(Duration::from_secs(2));
    outcome.map_err(failed)
}

/// `pushbench capacity`: the search, then its outcome as an exit status
/// (0: every transport's search ended on its own, whatever it found).
fn cmd_capacity(
    args: &crate::capacity::CapacityArgs,
    command_line: Vec<String>,
) -> Result<(), Failure> {
    let (scenario, search, slo) = args
        .plan(crate::sys::open_file_limit())
        .map_err(|e| usage(args.flags.locate(e)))?;
    let server_bin = server_process::find_server_bin(args.server_bin.as_deref()).map_err(usage)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(format!("capacity-{}", scenario.name)));
    let placement = placement_for(&scenario, false).map_err(usage)?;
    let opts = RunOptions {
        out_dir,
        target: None,
        server_bin: Some(server_bin),
        command_line,
        interrupt: CancellationToken::new(),
        progress: progress_for(args.quiet),
        placement,
    };
    let file = in_runtime(
        &opts,
        args.quiet,
        crate::capacity::search(&scenario, &search, &slo, &opts),
    )?;
    if !file.complete {
        return Err(failed(anyhow::anyhow!(
            "the capacity search was interrupted (what was probed is in {})",
            opts.out_dir.join(crate::capacity::CAPACITY_JSON).display()
        )));
    }
    Ok(())
}

/// The placement for a run of `scenario` on this machine. Against a
/// `--target` the server is not ours: `auto` then leaves the fleet every core.
fn placement_for(scenario: &Scenario, target: bool) -> anyhow::Result<Placement> {
    let spec = scenario.pin_spec()?;
    let allowed = crate::sys::allowed_cpus();
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
async fn cancel_on_signal(token: CancellationToken, quiet: bool) {
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
    if !quiet {
        // Not an error yet: the error line follows when the run has stopped.
        eprintln!("interrupted: stopping the server and the fleet, saving what was measured");
    }
    token.cancel();
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`, or `error` when `quiet`).
fn init_tracing(quiet: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if quiet { "error" } else { "warn" })
    });
    // A second call (tests running the CLI in-process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

impl RunSummary {
    /// The summary of a run's `outcome` (`None`: nothing was measured) and
    /// of its `failure`, if any.
    fn new(outcome: Option<&RunOutcome>, failure: Option<&Failure>) -> Self {
        let run = outcome.map(|o| &o.run);
        let path = |p: &std::path::Path| p.display().to_string();
        Self {
            summary_version: SUMMARY_VERSION,
            passed: failure.is_none(),
            exit_code: failure.map_or(0, |f| f.code),
            error: failure.map(|f| one_line(&f.error)),
            out: outcome.map(|o| path(&o.out_dir)),
            run_json: outcome.map(|o| path(&o.out_dir.join(results::io::RUN_FILE))),
            complete: run.is_some_and(|r| r.complete),
            generator_bound: run.is_some_and(|r| r.generator_bound),
            transports: run
                .map(|r| r.transports.iter().map(TransportSummary::new).collect())
                .unwrap_or_default(),
        }
    }
}

impl TransportSummary {
    fn new(r: &TransportResult) -> Self {
        let latency = |us: u64| (r.latency.count > 0).then_some(us);
        // Derived figures come from the report's metric table, so the
        // summary and the report agree on every definition.
        let metric = |key: &str| {
            let m = report::metric(key).expect("a metric of the report's table");
            (m.value)(r).filter(|v| v.is_finite())
        };
        Self {
            transport: r.transport,
            target: r.target.clone(),
            repetition: r.repetition,
            verified: r.verified,
            problems: r.problems.clone(),
            generator_bound: r.fleet.generator_bound,
            clients: r.clients,
            clients_connected: r.clients_connected,
            window_s: r.window_s,
            expected: r.counts.expected,
            delivered: r.counts.delivered,
            missing: r.counts.missing,
            duplicated: r.counts.duplicated,
            out_of_order: r.counts.out_of_order,
            errors: r.counts.errors,
            delivered_per_s: metric("delivered_per_s"),
            p50_us: latency(r.latency.p50),
            p90_us: latency(r.latency.p90),
            p99_us: latency(r.latency.p99),
            p999_us: latency(r.latency.p999),
            max_us: latency(r.latency.max),
            connect_p50_us: (r.connect.count > 0).then_some(r.connect.p50),
            server_cpu_us_per_event: metric("cpu_us_per_event"),
            bytes_down_per_event: metric("bytes_down_per_event"),
            rss_per_conn_kib: metric("rss_per_conn"),
        }
    }
}

#[cfg(test)]
mod tests;
