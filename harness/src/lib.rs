//! pushbench's harness: scenarios in, `run.json` and reports out.
//!
//! Data flows one way:
//!
//! ```text
//! scenario ─► runner ─► (server process, client fleet) ─► recorder ─► run.json ─► report
//! ```
//!
//! - [`scenario`]: the TOML scenario (embedded default, files, CLI overrides), validated.
//! - [`server_process`]: starts a fresh `push-server` per measured run, waits for readiness, stops it.
//! - [`fleet`]: the client fleet (one task per simulated client, each with its own connection).
//! - [`recorder`]: per-client HDR histograms and counters, merged at the end; no locks on the hot path.
//! - [`runner`]: orchestrates one transport after another: start, connect, warm up, measure, drain, stop, verify.
//! - [`results`]: the `run.json` contract.
//! - [`provenance`]: where and how a run was made.
//! - [`report`]: `report.md` and plots, derived from `run.json` alone.
//! - [`plot`]: SVG charts (plotters), fixed colour per transport.
//! - [`progress`]: progress bars on a terminal, plain lines otherwise.
//! - [`cli`]: the `pushbench` command line.

pub mod cli;
pub mod fleet;
pub mod plot;
pub mod progress;
pub mod provenance;
pub mod recorder;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod server_process;
