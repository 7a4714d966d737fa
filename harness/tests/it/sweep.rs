//! Sweeps and the capacity search at toy scale, through the real runner
//! against real `push-server` processes.

use std::path::Path;
use std::process::Command;

use crate::common::pushbench;
use crate::common::server_bin;
use harness::capacity::{self, CapacityFile, Verdict};
use harness::results;
use harness::runner::{self};
use harness::scenario::Scenario;
use protocol::TransportKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_sweep_runs_every_point_and_draws_the_sweep_charts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let scenario = Scenario::from_toml(
        r#"
        name = "toy-sweep"
        transports = ["sse", "ws"]
        rate = 20.0
        duration = "1s"
        warmup = "300ms"
        pin = "none"
        [sweep]
        clients = [2, 4]
        "#,
    )
    .unwrap();
    scenario.validate().unwrap();
    let opts = crate::common::run_options(&out);
    let outcome = runner::run(&scenario, &opts).await.unwrap();
    assert!(outcome.passed(), "{:?}", outcome.failure());

    // One entry per (point, transport), each carrying its point, in grid order.
    let run = results::io::read_run(&out).unwrap();
    assert_eq!(run.schema_version, results::SCHEMA_VERSION);
    let got: Vec<(usize, usize, TransportKind)> = run
        .transports
        .iter()
        .map(|t| {
            let p = t.point.expect("every entry of a sweep has its point");
            assert_eq!(t.clients, p.clients, "the entry ran at its point");
            assert!(t.verified && t.counts.delivered > 0, "{:?}", t.problems);
            (p.index, p.clients, t.transport)
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, 2, TransportKind::Sse),
            (1, 2, TransportKind::Ws),
            (2, 4, TransportKind::Sse),
            (2, 4, TransportKind::Ws),
        ]
    );
    // The sweep's run.json follows the committed schema.
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(results::schema::RUN_SCHEMA_FILE);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // Each point's server kept its own log.
    assert!(out.join("server-sse-p1.log").is_file());
    assert!(out.join("server-ws-p2.log").is_file());

    // The sweep charts: a line per transport (one dot per point), and the
    // single-run charts, which would mix points, are not drawn.
    for file in ["sweep-p50.svg", "sweep-p99.svg", "sweep-throughput.svg"] {
        let svg = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(!svg.contains("no data"), "{file} has data");
        for t in [TransportKind::Sse, TransportKind::Ws] {
            assert!(
                svg.contains(&harness::report::plot::style::colour_hex(t)),
                "{file} draws {t}"
            );
        }
        // A dot per valid entry (a cross for the others).
        let valid = run
            .transports
            .iter()
            .filter(|t| t.verified && !t.fleet.generator_bound)
            .count();
        assert_eq!(svg.matches("<circle").count(), valid, "{file}");
    }
    assert!(!out.join("latency.svg").exists());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("### Point 1: `clients=2"), "{md}");
    assert!(md.contains("### Point 2: `clients=4"), "{md}");
    assert!(md.contains("![p99 latency against clients](sweep-p99.svg)"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Delivered against offered"));

    // The report re-renders from run.json alone, identically.
    std::fs::remove_file(out.join("report.md")).unwrap();
    harness::report::render_dir(&out).unwrap();
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), md);

    // A sweep compares with itself point by point: every figure the same.
    let c = harness::compare::compare(&run, &run, Default::default()).unwrap();
    assert!(!c.has_regression());
    assert!(!c.diffs.is_empty());
    assert!(c.diffs.iter().all(|d| d.point.is_some()));
}

#[test]
fn a_toy_capacity_search_ends_at_its_bound_and_writes_capacity_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cap");
    let status = Command::new(pushbench())
        .args([
            "capacity",
            "--transports",
            "sse",
            "--start",
            "2",
            "--max-clients",
            "3",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--warmup",
            "300ms",
            "--slo-p99",
            "2s",
            "--repeat",
            "2",
            "--pin",
            "none",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("PUSHBENCH_SERVER_BIN", server_bin())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{stderr}");
    assert!(stderr.contains("capacity: SSE at 2 clients"), "{stderr}");

    let text = std::fs::read_to_string(out.join(capacity::CAPACITY_JSON)).unwrap();
    let file: CapacityFile = serde_json::from_str(&text).unwrap();
    assert!(file.complete);
    assert_eq!(file.transports.len(), 1);
    let sse = &file.transports[0];
    assert_eq!(sse.transport, TransportKind::Sse);
    // Start 2, ×2 bounded by 3: at most the two probes 2 and 3.
    let values: Vec<f64> = sse.probes.iter().map(|p| p.value).collect();
    assert!(values == [2.0, 3.0] || values == [2.0], "{values:?}");
    for p in &sse.probes {
        assert!(out.join(&p.dir).join("run.json").is_file(), "{}", p.dir);
        assert_eq!(p.clients as f64, p.value);
        assert_eq!(p.verdict == Verdict::Pass, p.reasons.is_empty(), "{p:?}");
        // --repeat 2: each probe ran twice, its p99 spread is kept.
        assert_eq!(p.repetitions, 2, "{p:?}");
        let (lo, hi) = p.p99_range_us.expect("a spread over two repetitions");
        assert!(lo <= p.p99_us.unwrap() && p.p99_us.unwrap() <= hi, "{p:?}");
        let probe_run = harness::results::io::read_run(&out.join(&p.dir)).unwrap();
        assert_eq!(probe_run.transports.len(), 2, "two repetitions ran");
    }
    // The highest passing value is the largest probe that passed.
    let best = sse
        .probes
        .iter()
        .filter(|p| p.verdict == Verdict::Pass)
        .map(|p| p.value)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    assert_eq!(sse.highest_passing, best);
    assert!(!sse.stopped_because.is_empty());

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Highest passing clients per transport"),
        "{md}"
    );
    assert!(md.contains("(median of 2; "), "{md}");
    let svg = std::fs::read_to_string(out.join(capacity::CAPACITY_SVG)).unwrap();
    assert!(svg.contains("SLO"), "the SLO line is in the legend");
}

/// Runs the binary with `args`; returns (exit code, stderr).
fn run_cli(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(pushbench())
        .args(args)
        .current_dir(dir.path())
        .env("PUSHBENCH_SERVER_BIN", "/nonexistent/push-server")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_sweeps_and_searches_are_one_line_usage_errors() {
    for (args, needle) in [
        (&["run", "--sweep", "clients="][..], "`sweep.clients`"),
        (
            &["run", "--sweep", "rate=1,2,1"][..],
            "`sweep.rate` lists 1 twice",
        ),
        (&["run", "--sweep", "users=1"][..], "unknown key \"users\""),
        (
            &["run", "--sweep", "clients=10,100000"][..],
            "sweep point 2 of 2 (clients=100000",
        ),
        (&["capacity", "--factor", "1"][..], "--factor"),
        (
            &["capacity", "--repeat", "10"][..],
            "--repeat must be from 1 to 9",
        ),
        (&["capacity", "--max-clients", "0"][..], "--max-clients"),
        (
            &["capacity", "--start", "500", "--max-clients", "100"][..],
            "--start",
        ),
        (
            &["capacity", "--axis", "rate", "--max-clients", "5"][..],
            "--max-clients",
        ),
    ] {
        let (code, stderr) = run_cli(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let lines: Vec<_> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {stderr:?}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(needle),
            "{args:?}: expected {needle}: {stderr}"
        );
    }
}

#[test]
fn capacity_help_states_the_defaults_it_uses() {
    let out = Command::new(pushbench())
        .args(["capacity", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let d = |d: std::time::Duration| harness::scenario::check::fmt_duration(d);
    assert!(
        help.contains(&format!(
            "[default: {}, shorter than a run's]",
            d(capacity::PROBE_DURATION)
        )),
        "{help}"
    );
    assert!(
        help.contains(&format!("[default: {}]", d(capacity::PROBE_WARMUP))),
        "{help}"
    );
    assert!(
        help.contains("the repetition with the median p99 decides"),
        "{help}"
    );
    assert!(
        !help.contains("[default: 10s]"),
        "run's window is not capacity's: {help}"
    );
}
