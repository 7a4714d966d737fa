//! The command line for scripts: `run --json` prints exactly one JSON object
//! on stdout (valid against `schemas/summary.schema.json`), `run --quiet`
//! prints nothing at all on success, and both keep the one-line error
//! contract on failure. Real toy runs of the `pushbench` binary: 2 clients,
//! SSE, 1 s measured.
//!
//! `push-server` must sit beside the `pushbench` test binary: `cargo test
//! --workspace` builds it (`cargo test -p harness` alone does not).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::pushbench;
use crate::common::server_bin;
use serde_json::Value;

/// Runs `pushbench run` on a toy scenario with `extra` flags, into `out`.
fn toy_run(out: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(pushbench());
    cmd.args(["run", "--transports", "sse", "--clients", "2"])
        .args(["--duration", "1s", "--warmup", "200ms", "--pin", "none"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("PUSHBENCH_SERVER_BIN", server_bin())
        // Whatever the developer's setting, the default log level is under test.
        .env_remove("RUST_LOG");
    // Bounded by the runner's own timeouts; the toy run takes about 3 s.
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses `stdout` as exactly one JSON object and nothing else.
fn one_object(stdout: &str) -> Value {
    let mut values = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    let first = values
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout: {stdout:?}"))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}"));
    assert!(values.next().is_none(), "more than one value: {stdout:?}");
    assert!(first.is_object(), "{first}");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    first
}

fn summary_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(harness::results::summary::SUMMARY_SCHEMA_FILE);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_matches_summary_schema(doc: &Value) {
    let v = summary_validator();
    let errs: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errs.is_empty(), "summary vs its schema: {errs:?}\n{doc}");
}

#[test]
fn json_prints_one_summary_object_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    let o = toy_run(&out, &["--json"]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stderr: {stderr}");
    let s = one_object(&stdout);
    assert_matches_summary_schema(&s);

    assert_eq!(s["summary_version"], 1);
    assert_eq!(s["passed"], true);
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["error"], Value::Null);
    assert_eq!(s["complete"], true);
    assert_eq!(s["out"], out.display().to_string());
    assert_eq!(s["run_json"], out.join("run.json").display().to_string());
    let ts = s["transports"].as_array().unwrap();
    assert_eq!(ts.len(), 1);
    let t = &ts[0];
    assert_eq!(t["transport"], "sse");
    assert_eq!(t["verified"], true);
    assert_eq!(t["clients_connected"], 2);
    // 2 clients × 10 events/s × 1 s.
    let expected = t["expected"].as_u64().unwrap();
    assert!((18..=22).contains(&expected), "{t}");
    assert_eq!(t["delivered"], expected);
    assert_eq!(t["missing"], 0);
    let (p50, p99) = (t["p50_us"].as_u64().unwrap(), t["p99_us"].as_u64().unwrap());
    assert!(p50 > 0 && p50 <= p99, "{t}");
    assert!(t["delivered_per_s"].as_f64().unwrap() > 0.0, "{t}");
    assert!(t["bytes_down_per_event"].as_f64().unwrap() > 64.0, "{t}");
    assert!(t["server_cpu_us_per_event"].is_number(), "{t}");

    // The same figures as run.json, which the summary digests.
    let run = harness::results::io::read_run(&out).unwrap();
    assert_eq!(run.transports[0].latency.p50, p50);

    // Progress went to stderr (plain lines: stderr is not a terminal).
    assert!(stderr.contains("[sse] measuring 1s"), "{stderr}");
    assert!(stderr.contains("run ETA"), "{stderr}");
    assert!(stderr.contains("[sse] delivered"), "{stderr}");
}

#[test]
fn quiet_prints_nothing_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    let o = toy_run(&out, &["--quiet"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "", "stdout");
    assert_eq!(text(&o.stderr), "", "stderr");
    // It still measured and saved.
    let run = harness::results::io::read_run(&out).unwrap();
    assert!(run.complete && run.transports[0].verified);
    assert!(out.join("report.md").is_file());
}

#[test]
fn a_usage_error_still_gives_one_object_and_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(pushbench())
        .args(["run", "--json", "--quiet", "--clients", "0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let s = one_object(&text(&o.stdout));
    assert_matches_summary_schema(&s);
    assert_eq!(
        (&s["passed"], &s["exit_code"]),
        (&Value::Bool(false), &2.into())
    );
    assert_eq!(s["out"], Value::Null);
    assert!(s["transports"].as_array().unwrap().is_empty());
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("`clients` must be between 1 and"), "{error}");
    // --quiet keeps errors: the same reason, one line, on stderr.
    let stderr = text(&o.stderr);
    assert_eq!(stderr, format!("error: {error}\n"));
    assert!(!dir.path().join("results").exists(), "nothing is written");
}

#[test]
fn run_help_states_units_and_defaults() {
    let o = Command::new(pushbench())
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let help = text(&o.stdout);
    for needle in [
        "--quiet",
        "--json",
        "in bytes [default: 64]",
        "Events per second per topic",
        "e.g. 10s, 1m [default: 10s]",
        "[default: off]",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
}
