//! The `--json` summary that `pushbench run --json` prints on stdout: one
//! line per transport with its verdict and headline figures, versioned and
//! described by `schemas/summary.schema.json`.

use crate::results;
use protocol::TransportKind;
use schemars::JsonSchema;
use serde::Serialize;

/// Version of the `run --json` summary layout ([`RunSummary`]).
pub const SUMMARY_VERSION: u32 = 1;

/// Where the JSON Schema of the `run --json` summary is kept, relative to the repository root.
pub const SUMMARY_SCHEMA_FILE: &str = "schemas/summary.schema.json";

/// What `pushbench run --json` prints on stdout: one object, on one line.
///
/// A digest of `run.json` for scripts and CI (pass or fail, headline figures
/// per transport run); the full figures, histograms and provenance are in
/// `run.json`. Absent figures (no samples, no server of ours) are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "pushbench run --json summary")]
pub struct RunSummary {
    /// Layout version ([`SUMMARY_VERSION`]).
    #[schemars(extend("const" = SUMMARY_VERSION))]
    pub summary_version: u32,
    /// Whether the run completed and every transport verified (exit status 0).
    pub passed: bool,
    /// pushbench's exit status: 0 passed, 1 the run failed or did not verify,
    /// 2 a usage or configuration error (nothing was measured).
    pub exit_code: u8,
    /// Why the run did not pass, in one line; `null` when it passed.
    pub error: Option<String>,
    /// The results directory; `null` when nothing was measured.
    pub out: Option<String>,
    /// The run's `run.json`; `null` when nothing was measured.
    pub run_json: Option<String>,
    /// Whether every planned transport ran to the end.
    pub complete: bool,
    /// Whether the load generator was saturated or lagging in any transport run.
    pub generator_bound: bool,
    /// One entry per transport and repetition, in the order they ran.
    pub transports: Vec<TransportSummary>,
}

/// The headline figures of one transport run (see `run.json` for the rest).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransportSummary {
    /// Which transport (for a target: the protocol its clients spoke).
    #[schemars(with = "results::TransportName")]
    pub transport: TransportKind,
    /// The target measured, by its name under the scenario's `targets`
    /// (`null`: pushbench's own push-server).
    pub target: Option<String>,
    /// Which repetition of this transport (1-based).
    pub repetition: u32,
    /// Whether every expected event was delivered exactly once and in order
    /// to every client; speed figures of an unverified run are not valid.
    pub verified: bool,
    /// Why verification failed (empty when verified).
    pub problems: Vec<String>,
    /// Whether the fleet, not the server, limited this run's figures.
    pub generator_bound: bool,
    /// Clients in the fleet.
    pub clients: usize,
    /// Clients that connected.
    pub clients_connected: usize,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// Events the clients should have received in the window, summed.
    pub expected: u64,
    /// Distinct expected events received.
    pub delivered: u64,
    /// Expected events never received.
    pub missing: u64,
    /// Extra copies of events already received.
    pub duplicated: u64,
    /// Events received after an event with a higher id.
    pub out_of_order: u64,
    /// Errors reported by clients.
    pub errors: u64,
    /// Events delivered per second over the window, all clients together.
    pub delivered_per_s: Option<f64>,
    /// Median latency (receive time − scheduled emission time), µs.
    pub p50_us: Option<u64>,
    /// 90th percentile latency, µs.
    pub p90_us: Option<u64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<u64>,
    /// 99.9th percentile latency, µs.
    pub p999_us: Option<u64>,
    /// Largest latency, µs.
    pub max_us: Option<u64>,
    /// Median connection set-up time, µs.
    pub connect_p50_us: Option<u64>,
    /// Server CPU time per delivered event over the window, µs.
    pub server_cpu_us_per_event: Option<f64>,
    /// Bytes the server wrote per delivered event over the window.
    pub bytes_down_per_event: Option<f64>,
    /// Server memory per connected client (connected idle − baseline), KiB.
    pub rss_per_conn_kib: Option<f64>,
}

/// The JSON Schema (draft 2020-12) of [`RunSummary`]; [`SUMMARY_SCHEMA_FILE`]
/// holds it, checked equal by a test.
pub fn summary_schema() -> serde_json::Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<RunSummary>()
        .to_value()
}
