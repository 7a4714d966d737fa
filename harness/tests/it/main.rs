//! The harness's integration tests, one binary (one link) with shared
//! helpers in [`common`]. Each module tests one thing a user meets: the
//! command line, comparisons, reports, runs against real servers, targets,
//! the schemas, the scenario fuzzer, the CI workflow lint.

mod common;

mod architecture;

mod browser;

mod cli;
mod compare;
mod fuzz_scenario;
mod golden;
mod html;
mod link;
mod link_kernel;
mod report;
mod report_costs;
mod report_files;
mod run;
mod run_cli;
mod run_faults;
mod run_workloads;
mod scale;
mod schema;
mod sweep;
mod targets;
mod workflow;
