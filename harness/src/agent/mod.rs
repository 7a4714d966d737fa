//! Fleet agents: a fleet split over several processes, each with its own
//! open-file limit and runtime, merged exactly.
//!
//! `pushbench run --agents N` starts N `pushbench agent` processes
//! ([`remote::AgentFleet`]); client `i` of the fleet runs in agent
//! `i % N` ([`crate::fleet::parts::Slice`]). Each agent builds its clients
//! exactly as a fleet in one process would ([`crate::fleet::parts`]),
//! counts each against the schedule when told to stop, and hands back its
//! totals per part with the histograms whole ([`wire`]). The coordinator
//! adds them bucket by bucket: percentiles are never averaged, and the
//! merged histogram is the one a single process recording every value
//! would hold. An agent that dies or cannot report makes its clients'
//! events count as missing, named in the transport's problems; its clock
//! offset to the coordinator is measured at start and reported.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::fleet::parts::{Part, fleet_clients, fleet_parts, tally};
use crate::fleet::{self, Fleet};
use crate::probe::LagProbe;
use crate::recorder::{Presence, Window};
use crate::results;

pub mod remote;
pub mod wire;

use wire::{AgentReport, FromAgent, SliceSpec, ToAgent};

/// `pushbench agent`: runs the slices its coordinator sends on stdin until
/// stdin closes (the coordinator is gone) or it has answered `stop`.
pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the agent's runtime")?;
    rt.block_on(serve())
}

/// A slice of the fleet running in this agent.
struct Running {
    fleet: Fleet,
    parts: Vec<Part>,
    spec: SliceSpec,
    window: Arc<Window>,
    lag: LagProbe,
    status: CancellationToken,
}

async fn serve() -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<FromAgent>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(msg) = rx.recv().await {
            let mut line = serde_json::to_vec(&msg).expect("agent messages serialise");
            line.push(b'\n');
            if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut running: Option<Running> = None;
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        let msg: ToAgent = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                let message = format!("cannot read the coordinator's line: {e}");
                let _ = tx.send(FromAgent::Failed { message });
                continue;
            }
        };
        match msg {
            ToAgent::Clock => {
                let _ = tx.send(FromAgent::Time {
                    now_us: protocol::now_us(),
                });
            }
            ToAgent::Start(spec) => {
                let r = start(*spec, &tx);
                let _ = tx.send(FromAgent::Started {
                    clients: r.fleet.clients(),
                });
                running = Some(r);
            }
            ToAgent::Window { start_us, end_us } => {
                if let Some(r) = &running {
                    r.window.set(start_us, end_us);
                }
            }
            ToAgent::Cut { end_us } => {
                if let Some(r) = &running {
                    r.window.cut(end_us);
                }
            }
            ToAgent::Stop => {
                if let Some(r) = running.take() {
                    let report = stop(r).await;
                    let _ = tx.send(FromAgent::Done(Box::new(report)));
                }
                break;
            }
        }
    }
    if let Some(r) = running.take() {
        // The coordinator went away: stop the clients, report to nobody.
        r.status.cancel();
        let _ = r.fleet.stop(fleet::STOP_TIMEOUT).await;
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}

/// Builds this agent's clients and starts them at its share of the
/// connect rate, reporting their connections every [`wire::STATUS_EVERY`].
fn start(spec: SliceSpec, tx: &mpsc::UnboundedSender<FromAgent>) -> Running {
    let window = Arc::new(Window::new());
    let presence = Presence::new();
    let parts = fleet_parts(spec.transport, &spec.scenario, &spec.schedule);
    // Agents take no chat (validation refuses it): no send window.
    let (_send_window, send_window_rx) = tokio::sync::watch::channel(None);
    let clients = fleet_clients(
        &parts,
        spec.slice,
        (&spec.targets, spec.path.as_deref()),
        (&window, &presence),
        &send_window_rx,
    );
    // Together the agents connect at the scenario's rate.
    let rate = spec.scenario.connect_rate / spec.slice.of.max(1) as f64;
    let fleet = Fleet::start(clients, rate, presence.clone());
    let status = CancellationToken::new();
    let (stop, tx) = (status.clone(), tx.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(wire::STATUS_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    let msg = FromAgent::Status { ever: presence.ever(), now: presence.now() };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let lag = LagProbe::start(window.clone());
    Running {
        fleet,
        parts,
        spec,
        window,
        lag,
        status,
    }
}

/// Stops the clients and counts each against the schedule.
async fn stop(r: Running) -> AgentReport {
    r.status.cancel();
    let outcome = r.fleet.stop(fleet::STOP_TIMEOUT).await;
    let lag = r.lag.stop().await;
    let span = (
        r.window.start_us(),
        r.window.end_us().max(r.window.start_us()),
    );
    let chat_last = vec![None; r.parts.len()];
    let totals = tally(
        &r.parts,
        r.spec.slice,
        outcome.recorders,
        &chat_last,
        span,
        &[],
    );
    AgentReport {
        parts: totals.iter().map(Into::into).collect(),
        problems: outcome.problems,
        lag_us: results::encode_histogram(&lag),
    }
}
