//! pushbench's harness: scenarios in, `run.json` and reports out.
//!
//! Data flows one way:
//!
//! ```text
//! scenario ─► runner ─► (server process, client fleet) ─► recorder ─► run.json ─► report
//! ```
//!
//! The rooms, from the top down; each imports only rooms below it (see
//! `docs/architecture.md`, checked by `cargo test -p harness --test it architecture`):
//!
//! - [`cli`]: the `pushbench` command line: parses and dispatches.
//! - [`capacity`]: `pushbench capacity`: per transport, the most clients (or rate) within a latency SLO.
//! - [`runner`]: one transport after another: start the server, connect, warm up, measure, drain, stop, verify.
//! - [`compare`]: `pushbench compare BASE NEW`: changes between two runs, regressions flagged.
//! - [`fleet`]: the client fleet (one task per simulated client, each with its own connection).
//! - [`probe`]: the server's and the fleet's CPU and memory from `/proc`, sampled on a timeline.
//! - [`progress`]: progress bars on a terminal, plain lines otherwise.
//! - [`report`]: `report.md`, `report.html` and the SVG charts, derived from `run.json` alone.
//! - [`recorder`]: per-client HDR histograms and counters, merged at the end; no locks on the hot path.
//! - [`server_process`]: starts a fresh `push-server` (or a target) per measured run, reads its `/stats`, stops it.
//! - [`provenance`]: where and how a run was made.
//! - [`results`]: the `run.json` contract (and the `--json` summary).
//! - [`scenario`]: the TOML scenario (embedded default, files, flags, sweeps, client habits), validated.
//! - [`placement`]: pins the server and the fleet to their cores.
//! - [`sys`]: every call into the operating system (rlimits, affinity, `sysconf`, signals).

pub mod agent;
pub mod browser;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod demo;
pub mod fleet;
pub mod link;
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
