//! pushbench's harness: scenarios in, `run.json` and reports out.
//!
//! Data flows one way:
//!
//! ```text
//! scenario ─► runner ─► (server process, client fleet) ─► recorder ─► run.json ─► report
//! ```
//!
//! - [`scenario`]: the TOML scenario (embedded default, files, CLI overrides), validated.
//! - [`sweep`]: a scenario's `[sweep]` grid of clients, rate and payload, and the point of each entry.
//! - [`server_process`]: starts a fresh `push-server` per measured run, waits for readiness, stops it.
//! - [`placement`]: pins the server and the fleet to their cores.
//! - [`probe`]: the server's and the fleet's CPU and memory from `/proc`, sampled on a timeline.
//! - [`fleet`]: the client fleet (one task per simulated client, each with its own connection).
//! - [`recorder`]: per-client HDR histograms and counters, merged at the end; no locks on the hot path.
//! - [`runner`]: orchestrates one transport after another: start, connect, warm up, measure, drain, stop, verify.
//! - [`results`]: the `run.json` contract.
//! - [`provenance`]: where and how a run was made.
//! - [`report`]: `report.md` and plots, derived from `run.json` alone: latency, the cost table, ratios to the floor, repetitions aggregated.
//! - [`mixed_report`]: the report of a mixed run (`[[group]]`): one row per client group, no winner.
//! - [`plot`]: SVG charts (plotters), fixed colour per transport.
//! - [`plot_xy`]: line charts of one figure against another (a sweep's, the capacity search's).
//! - [`html`]: the self-contained `report.html`: a verdict, the report's tables, plots inline.
//! - [`compare`]: `pushbench compare BASE NEW`: changes between two runs, regressions flagged.
//! - [`capacity`]: `pushbench capacity`: per transport, the most clients (or rate) within a latency SLO.
//! - [`progress`]: progress bars on a terminal, plain lines otherwise.
//! - [`cli`]: the `pushbench` command line.

pub mod capacity;
pub mod cli;
pub mod compare;
pub mod fleet;
pub mod placement;
pub mod probe;
pub mod progress;
pub mod provenance;
pub mod recorder;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod server_process;
pub mod sys;
