//! What a run is made of: its options, its entries (each contender times
//! each repetition, in alternating order) and each entry's plan: its
//! protocol, drain and the name of its server log.
use crate::placement::Placement;
use crate::progress::Progress;
use crate::progress::TransportPlan;
use crate::results::RunFile;
use crate::results::TransportResult;
use crate::runner::bounds::DRAIN;
use crate::runner::bounds::TICK;
use crate::runner::bounds::WINDOW_LEAD;
use crate::scenario::Scenario;
use crate::scenario::contender::Contender;
use crate::scenario::sweep::SweepPoint;
use protocol::TransportKind;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a run is carried out (everything that is not the scenario).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where `run.json`, the report and the server logs go.
    pub out_dir: PathBuf,
    /// A server already running (`--target URL`): no server is started.
    pub target: Option<String>,
    /// The `push-server` binary (required unless `target` is set).
    pub server_bin: Option<PathBuf>,
    /// The command line, recorded in the provenance.
    pub command_line: Vec<String>,
    /// Cancelled on Ctrl-C: the run stops and saves what it measured.
    pub interrupt: CancellationToken,
    /// How progress is shown.
    pub progress: Progress,
    /// Where the server and the fleet run. The runner pins each server it
    /// starts to `server_cpus`; pinning the fleet (this process) is the
    /// caller's job, before it builds its runtime (see
    /// [`placement::pin_process`]). The fleet's cores are recorded as
    /// observed, whatever was asked.
    pub placement: Placement,
}

/// ` (repetition 2)` when the run has several repetitions, else empty.
pub(crate) fn repetition_suffix(run: &RunFile, repetition: u32) -> String {
    if run.transports.iter().any(|t| t.repetition > 1) {
        format!(" (repetition {repetition})")
    } else {
        String::new()
    }
}

/// The order of the transports in repetition `rep` (1-based): the
/// scenario's order in odd repetitions, reversed in even ones (ABCD DCBA …;
/// see the module documentation for why).
pub fn repetition_order<T: Clone>(transports: &[T], rep: u32) -> Vec<T> {
    let mut order = transports.to_vec();
    if rep % 2 == 0 {
        order.reverse();
    }
    order
}

/// What runs in repetition `rep`: the transports in [`repetition_order`],
/// or in a mixed run its one entry (named after its first group's
/// transport; [`fleet_parts`] holds the groups).
pub(crate) fn contenders(at: &Scenario, rep: u32) -> Vec<Contender> {
    match at.group.first() {
        Some(g) => vec![g.transport.into()],
        None => repetition_order(&at.transports, rep),
    }
}

/// The transport whose phases plan a run: short polling's, when a mixed
/// run has a short-polling group (its connect and drain are the longest).
pub(crate) fn plan_transport(contender: &Contender, scenario: &Scenario) -> TransportKind {
    let polls = |g: &crate::scenario::Group| g.transport == TransportKind::ShortPoll;
    if scenario.group.iter().any(polls) {
        TransportKind::ShortPoll
    } else {
        protocol_of(contender, scenario)
    }
}

/// Which run this is: what runs, its repetition and, in a sweep, its point.
#[derive(Debug, Clone)]
pub(crate) struct RunId {
    pub(super) contender: Contender,
    pub(super) repetition: u32,
    pub(super) point: Option<SweepPoint>,
}

/// The log file of a server: `server-sse.log`, `server-sse-2.log` for
/// repetition 2, `server-sse-p3.log` at sweep point 3; a target's is named
/// after it (`server-django-eventstream.log`), a mixed run's is
/// `server-mixed.log`.
pub(crate) fn server_log_name(id: &RunId, name: &str) -> String {
    let point = id
        .point
        .map(|p| format!("-p{}", p.index))
        .unwrap_or_default();
    if id.repetition <= 1 {
        format!("server-{name}{point}.log")
    } else {
        format!("server-{name}{point}-{}.log", id.repetition)
    }
}

/// The protocol `contender`'s clients speak (a target's `transport`).
pub(crate) fn protocol_of(contender: &Contender, scenario: &Scenario) -> TransportKind {
    match contender {
        Contender::Builtin(t) => *t,
        // Validation guarantees the target is declared; SSE is a harmless
        // fallback for an unvalidated scenario (its run then fails to start).
        Contender::Target(name) => scenario
            .targets
            .get(name)
            .map_or(TransportKind::Sse, |t| t.transport),
    }
}

/// The planned phases of one run of `transport` (for the run's ETA; the
/// drain is the one the run really uses).
pub(crate) fn transport_plan(transport: TransportKind, scenario: &Scenario) -> TransportPlan {
    // Validation keeps `connect_rate` above 0; an estimate must not panic if it was skipped.
    let ramp = Duration::try_from_secs_f64(scenario.clients as f64 / scenario.connect_rate)
        .unwrap_or_default();
    // The connect wait notices the last client at its next tick; short
    // polling connects at the first answer, up to one interval in, and
    // drains beyond the interval so the last poll's answer still counts.
    let (connect, drain) = match transport {
        TransportKind::ShortPoll => (
            ramp + scenario.poll_interval,
            scenario.poll_interval + DRAIN,
        ),
        _ => (ramp + TICK, DRAIN),
    };
    // A client that pauses reading ([behaviour]) may be paused as the
    // window closes: the drain outlasts a pause, so the events it owes
    // still arrive and count (late) rather than as missing.
    let longest_pause = scenario
        .group
        .iter()
        .filter_map(|g| g.behaviour.as_ref()?.pause_for)
        .chain(scenario.behaviour.pause_for)
        .max()
        .unwrap_or_default();
    let drain = drain + longest_pause;
    TransportPlan::new(
        connect,
        scenario.warmup.max(WINDOW_LEAD),
        scenario.duration,
        drain,
    )
}

/// Gives an entry its repetition number.
pub(crate) fn with_repetition(mut r: TransportResult, repetition: u32) -> TransportResult {
    r.repetition = repetition;
    r
}
