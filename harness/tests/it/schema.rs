//! `run.json` against its published JSON Schema (`schemas/run.schema.json`).
//!
//! The committed schemas are the ones the code generates (so they cannot
//! drift), a real toy run's `run.json` validates against the committed file,
//! and so does a synthetic run with repetitions and every optional value
//! absent; broken documents (a missing field, a wrong type, another
//! `schema_version`, an unknown key or transport) are rejected.
//!
//! The real run needs `push-server` beside the `pushbench` test binary:
//! `cargo test --workspace` builds it (`cargo test -p harness` alone does not).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::placement::Placement;
use harness::progress::{Mode, Progress};
use harness::results::{self, RunFile, SCHEMA_VERSION, TransportResult};
use harness::runner::{self, RunOptions};
use harness::scenario::Scenario;
use protocol::TransportKind;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .join(relative)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A validator built from the committed file: what users of the schema get.
fn validator() -> jsonschema::Validator {
    let schema = read_json(&repo_file(results::schema::RUN_SCHEMA_FILE));
    jsonschema::validator_for(&schema).expect("the committed schema compiles")
}

/// Every validation error of `doc`, as `path: message` lines.
fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errs = errors(v, doc);
    assert!(
        errs.is_empty(),
        "{what} does not match the schema:\n{}",
        errs.join("\n")
    );
}

/// `doc` is rejected, with an error at `path` (a JSON pointer).
fn assert_rejected_at(v: &jsonschema::Validator, doc: &Value, path: &str) {
    let errs = errors(v, doc);
    assert!(
        errs.iter().any(|e| e.starts_with(&format!("{path}: "))),
        "expected an error at {path:?}, got {errs:?}"
    );
}

#[test]
fn the_committed_schemas_are_the_generated_ones() {
    for (file, generated, command) in [
        (
            results::schema::RUN_SCHEMA_FILE,
            results::schema::run_schema(),
            "pushbench schema run",
        ),
        (
            harness::results::summary::SUMMARY_SCHEMA_FILE,
            harness::results::summary::summary_schema(),
            "pushbench schema summary",
        ),
    ] {
        let committed = read_json(&repo_file(file));
        assert!(
            committed == generated,
            "{file} is not what the code generates; regenerate it with \
             `cargo run -q -p harness --bin pushbench -- {} > {file}`",
            command.trim_start_matches("pushbench ")
        );
        assert_eq!(
            committed["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{file}"
        );
        // A valid schema by the draft's own meta-schema, not only to this crate.
        if let Err(e) = jsonschema::meta::validate(&committed) {
            panic!("{file} is not a valid JSON Schema: {e}");
        }
    }
    let run = results::schema::run_schema();
    assert_eq!(run["properties"]["schema_version"]["const"], SCHEMA_VERSION);
    assert_eq!(run["additionalProperties"], false);
    let closed = run["$defs"].as_object().unwrap();
    for (name, def) in closed.iter().filter(|(_, d)| d["type"] == "object") {
        assert_eq!(def["additionalProperties"], false, "{name} is closed");
        let props = def["properties"].as_object().unwrap();
        let required = def["required"].as_array().unwrap();
        assert_eq!(
            props.len(),
            required.len(),
            "{name}: every field is always written"
        );
    }
}

#[test]
fn pushbench_schema_prints_the_committed_schema() {
    for (which, file) in [
        ("run", results::schema::RUN_SCHEMA_FILE),
        ("summary", harness::results::summary::SUMMARY_SCHEMA_FILE),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pushbench"))
            .args(["schema", which])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            printed == read_json(&repo_file(file)),
            "`pushbench schema {which}` differs from {file}"
        );
    }
}

/// 2 clients, 1 s measured after 200 ms of warm-up, SSE and the floor.
fn toy_scenario() -> Scenario {
    let mut s = Scenario::from_toml(
        r#"
        name = "schema-toy"
        clients = 2
        duration = "1s"
        warmup = "200ms"
        "#,
    )
    .unwrap();
    s.transports = harness::scenario::builtins(&[TransportKind::Sse, TransportKind::Tcp]);
    s.validate().unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_matches_the_schema() {
    let pushbench = PathBuf::from(env!("CARGO_BIN_EXE_pushbench"));
    let server_bin = harness::server_process::beside(&pushbench);
    assert!(
        server_bin.is_file(),
        "build push-server first (cargo test --workspace builds it): {} is missing",
        server_bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: dir.path().join("toy"),
        target: None,
        server_bin: Some(server_bin),
        command_line: vec!["pushbench-schema-test".into()],
        interrupt: CancellationToken::new(),
        progress: Progress::new(Mode::Quiet),
        placement: Placement::default(),
    };
    let outcome =
        tokio::time::timeout(Duration::from_secs(60), runner::run(&toy_scenario(), &opts))
            .await
            .expect("the run ends in bounded time")
            .expect("the run produced results");
    // A run that measured nothing would validate trivially; this one measured.
    assert!(outcome.passed(), "{:?}", outcome.failure());

    let doc = read_json(&opts.out_dir.join(results::io::RUN_FILE));
    let v = validator();
    assert_valid(&v, &doc, "a real run.json");
    let transports = doc["transports"].as_array().unwrap();
    assert_eq!(transports.len(), 2);
    for t in transports {
        // The optional parts are really there, so their schemas were exercised.
        assert!(t["wire"].is_object() && t["server"].is_object(), "{t}");
        assert!(!t["timeline"].as_array().unwrap().is_empty());
        assert!(t["counts"]["delivered"].as_u64().unwrap() > 0);
    }

    // Broken copies of real output are rejected.
    let mut broken = doc.clone();
    broken["transports"][0]["latency"]
        .as_object_mut()
        .unwrap()
        .remove("p99");
    assert_rejected_at(&v, &broken, "/transports/0/latency");
    let mut broken = doc.clone();
    broken["transports"][1]["counts"]["delivered"] = json!("20");
    assert_rejected_at(&v, &broken, "/transports/1/counts/delivered");
}

/// A synthetic entry: every optional value absent (`null`), as for a
/// transport whose server could not be read.
fn bare_entry(transport: TransportKind, repetition: u32) -> TransportResult {
    let empty = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    TransportResult {
        repetition,
        problems: vec!["push-server exited unexpectedly".into()],
        clients: 3,
        clients_connected: 1,
        window_s: 0.5,
        window_start_us: 1_700_000_000_000_000,
        counts: Default::default(),
        latency: Default::default(),
        connect: Default::default(),
        histograms: results::Histograms {
            latency_us: results::encode_histogram(&empty),
            connect_us: results::encode_histogram(&empty),
        },
        timeline: vec![results::Sample {
            t_us: 1_700_000_000_100_000,
            ..Default::default()
        }],
        ..TransportResult::empty(transport)
    }
}

/// A run of two transports × two repetitions (ABBA), some entries full and
/// some bare, against a `--target` (whose URL the scenario records).
fn synthetic_run() -> Value {
    let scenario = Scenario {
        repeat: 2,
        transports: harness::scenario::builtins(&[TransportKind::LongPoll, TransportKind::Ws]),
        event_type: Some("status".into()),
        ..Scenario::default()
    };
    let mut scenario = scenario.to_json();
    scenario["target"] = json!("http://127.0.0.1:8080");

    let mut full = bare_entry(TransportKind::LongPoll, 1);
    full.verified = true;
    full.problems.clear();
    full.counts.expected = 30;
    full.counts.delivered = 30;
    full.delivered_per_s = 60.0;
    full.wire = Some(results::Wire::default());
    full.server = Some(results::ServerUsage {
        tcp_mem_idle_bytes: Some(4096),
        ..Default::default()
    });
    full.chat = Some(results::ChatResult {
        senders: 2,
        send_rate: 1.5,
        upstream: "publish".into(),
        sent: 6,
        echoed: 6,
        round_trip: results::Summary::default(),
        round_trip_us: results::encode_histogram(&hdrhistogram::Histogram::<u64>::new(3).unwrap()),
        ..Default::default()
    });
    full.fleet.generator_bound = true;
    full.fleet.generator_bound_reasons = vec!["the fleet used 95%".into()];
    full.timeline[0].server_rss_bytes = Some(1 << 20);
    full.timeline[0].fleet_cpu_s = Some(0.25);
    full.server_config = json!({"buffers": {"ws_read": 4096}});
    let mut second = full.clone();
    second.transport = TransportKind::Ws;

    let run = RunFile {
        schema_version: SCHEMA_VERSION,
        provenance: Default::default(),
        scenario,
        complete: true,
        generator_bound: true,
        transports: vec![
            full,
            bare_entry(TransportKind::Ws, 1),
            {
                let mut r = second;
                r.repetition = 2;
                r
            },
            bare_entry(TransportKind::LongPoll, 2),
        ],
    };
    serde_json::to_value(&run).unwrap()
}

#[test]
fn a_synthetic_run_with_repetitions_matches_the_schema() {
    let doc = synthetic_run();
    let v = validator();
    assert_valid(&v, &doc, "a synthetic run with repetitions");
    // And pushbench itself reads it back.
    results::io::parse_run(&doc.to_string()).unwrap();
    let reps: Vec<u64> = doc["transports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["repetition"].as_u64().unwrap())
        .collect();
    assert_eq!(reps, [1, 1, 2, 2]);
}

#[test]
fn a_mixed_entry_with_its_groups_matches_the_schema() {
    let mut doc = synthetic_run();
    let group = doc["transports"][1].clone();
    doc["transports"][0]["groups"] = json!([
        { "name": "idle", "first_topic": 0, "topics": 8, "rate": 0.5, "result": group },
        { "name": "busy", "first_topic": 8, "topics": 1, "rate": 20.0, "result": group },
    ]);
    let v = validator();
    assert_valid(&v, &doc, "a run with a mixed entry");
    let run = results::io::parse_run(&doc.to_string()).unwrap();
    assert_eq!(run.transports[0].groups.len(), 2);
    doc["transports"][0]["groups"][1]["colour"] = json!("red");
    assert_rejected_at(&v, &doc, "/transports/0/groups/1");
}

#[test]
fn broken_documents_are_rejected() {
    let v = validator();
    let good = synthetic_run();
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        f(&mut doc);
        doc
    };

    let missing = broken(&|d| {
        d.as_object_mut().unwrap().remove("complete");
    });
    assert_rejected_at(&v, &missing, "");
    assert!(results::io::parse_run(&missing.to_string()).is_err());

    let missing_nested = broken(&|d| {
        d["transports"][2]["counts"]
            .as_object_mut()
            .unwrap()
            .remove("missing");
    });
    assert_rejected_at(&v, &missing_nested, "/transports/2/counts");

    let wrong_type = broken(&|d| d["transports"][0]["delivered_per_s"] = json!("60"));
    assert_rejected_at(&v, &wrong_type, "/transports/0/delivered_per_s");
    assert!(results::io::parse_run(&wrong_type.to_string()).is_err());

    let negative = broken(&|d| d["transports"][0]["counts"]["expected"] = json!(-1));
    assert_rejected_at(&v, &negative, "/transports/0/counts/expected");

    let null_required = broken(&|d| d["transports"][1]["latency"] = Value::Null);
    assert_rejected_at(&v, &null_required, "/transports/1/latency");

    for version in [json!(1), json!(6), json!("5")] {
        let other = broken(&|d| d["schema_version"] = version.clone());
        assert_rejected_at(&v, &other, "/schema_version");
        assert!(results::io::parse_run(&other.to_string()).is_err());
    }
    // Versions 2 (before sweeps), 3 (before mixed runs) and 4 (before client
    // habits and CPU resolution) are not what pushbench writes, but it
    // still reads them.
    for version in [2, 3, 4] {
        let older = broken(&|d| d["schema_version"] = json!(version));
        assert_rejected_at(&v, &older, "/schema_version");
        assert!(results::io::parse_run(&older.to_string()).is_ok());
    }

    let unknown_key = broken(&|d| d["transports"][3]["fleet"]["colour"] = json!("red"));
    assert_rejected_at(&v, &unknown_key, "/transports/3/fleet");

    let unknown_transport = broken(&|d| d["transports"][0]["transport"] = json!("pigeon"));
    assert_rejected_at(&v, &unknown_transport, "/transports/0/transport");

    // Any name may be a target's; a non-string may not.
    let bad_scenario = broken(&|d| d["scenario"]["transports"] = json!(["sse", 7]));
    assert_rejected_at(&v, &bad_scenario, "/scenario/transports/1");

    let scenario_typo = broken(&|d| d["scenario"]["warmpu"] = json!("1s"));
    assert_rejected_at(&v, &scenario_typo, "/scenario");

    let config_not_object = broken(&|d| d["transports"][0]["server_config"] = json!(42));
    assert_rejected_at(&v, &config_not_object, "/transports/0/server_config");
}
