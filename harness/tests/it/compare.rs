//! `pushbench compare BASE NEW` end to end: synthetic runs are written with
//! `write_run`, and the real binary compares them. Exit statuses are part of
//! the contract (CI fails on them): 0 no regression, 1 regression, 2 bad input.

use std::path::Path;
use std::process::{Command, Output};

use harness::compare::{self, Change, Options};
use harness::results::{self, RunFile};
use protocol::TransportKind;
use serde_json::{Value, json};

/// One transport's entry of `run.json` (as JSON, so fields added to the
/// layout later with a default do not break this test). Latencies and CPU
/// are multiplied by `slow`: a slower machine, or slower code.
fn entry(kind: TransportKind, slow: f64, verified: bool) -> Value {
    // Typical figures of this machine class, µs.
    let (p50, p99): (f64, f64) = match kind {
        TransportKind::ShortPoll => (125_000.0, 249_000.0),
        TransportKind::LongPoll => (4_500.0, 14_800.0),
        TransportKind::Sse => (1_600.0, 6_960.0),
        TransportKind::Ws => (1_290.0, 5_440.0),
        TransportKind::Tcp => (900.0, 1_540.0),
    };
    let us = |v: f64| (v * slow).round() as u64;
    let summary = |p50: u64, p99: u64| {
        json!({ "count": 1200, "min": p50 / 2, "mean": p50 as f64, "p50": p50,
                "p90": (p50 + p99) / 2, "p99": p99, "p999": p99, "max": p99 })
    };
    let delivered = 1200u64;
    json!({
        "transport": kind,
        "repetition": 1,
        "verified": verified,
        "problems": if verified { vec![] } else { vec!["client 3: 40 events missing (ids 7..46)"] },
        "clients": 20,
        "clients_connected": 20,
        "window_s": 3.0,
        "window_start_us": 1_732_390_000_000_000u64,
        "counts": {
            "expected": delivered, "delivered": if verified { delivered } else { delivered - 40 },
            "missing": if verified { 0 } else { 40 }, "duplicated": 0, "out_of_order": 0,
            "requests": if kind.is_polling() { delivered / 2 } else { 0 }, "reconnects": 0, "errors": 0,
        },
        "delivered_per_s": 400.0,
        "latency": summary(us(p50), us(p99)),
        "connect": summary(us(700.0), us(1_800.0)),
        "histograms": { "latency_us": "", "connect_us": "" },
        "server": {
            "cpu_s": delivered as f64 * 50e-6 * slow,
            "rss_baseline_bytes": 8u64 << 20, "rss_idle_bytes": (8u64 << 20) + 20 * 16_384,
            "idle_clients": 20, "rss_peak_bytes": 10u64 << 20, "rss_hwm_bytes": 10u64 << 20,
        },
        "fleet": {
            "cpu_s": 0.5, "cpus": [1], "rss_idle_bytes": 30u64 << 20, "rss_peak_bytes": 30u64 << 20,
            "lag": { "count": 0, "min": 0, "mean": 0.0, "p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0 },
            "generator_bound": false, "generator_bound_reasons": [],
        },
        "timeline": [],
        "server_config": null,
    })
}

/// A run of `transports`, each with its slowness factor and verification.
fn run(commit: &str, transports: &[(TransportKind, f64, bool)]) -> RunFile {
    let v = json!({
        "schema_version": results::SCHEMA_VERSION,
        "provenance": {
            "pushbench_version": "0.1.0", "git_commit": commit, "host": "ci", "cpu_model": "x",
            "cores": 2, "kernel": "6", "rustc": "rustc", "command_line": ["pushbench", "run"],
            "started_at": "2026-01-01T00:00:00Z",
            "placement": { "spec": "none", "server_cpus": [], "fleet_cpus": [], "note": "" },
        },
        "scenario": { "name": "ci-smoke" },
        "complete": true,
        "generator_bound": false,
        "transports": transports
            .iter()
            .map(|&(k, slow, ok)| entry(k, slow, ok))
            .collect::<Vec<_>>(),
    });
    serde_json::from_value(v).expect("the synthetic run matches the run.json layout")
}

use TransportKind::{LongPoll, ShortPoll, Sse, Tcp, Ws};

/// Every transport and the floor, at `slow`, all verified.
fn all_at(commit: &str, slow: f64) -> RunFile {
    run(
        commit,
        &[
            (ShortPoll, slow, true),
            (LongPoll, slow, true),
            (Sse, slow, true),
            (Ws, slow, true),
            (Tcp, slow, true),
        ],
    )
}

fn write(dir: &Path, name: &str, run: &RunFile) -> String {
    let d = dir.join(name);
    results::io::write_run(&d, run).unwrap();
    d.to_str().unwrap().to_string()
}

fn pushbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .args(args)
        .output()
        .expect("pushbench runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The table row for a transport and metric label, split into cells.
fn row(md: &str, transport: &str, metric: &str) -> Option<Vec<String>> {
    let prefix = format!("| {transport} | {metric} |");
    md.lines().find(|l| l.starts_with(&prefix)).map(|l| {
        l.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    })
}

#[test]
fn identical_runs_have_no_regression() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &all_at("aaa", 1.0));
    let new = write(dir.path(), "new", &all_at("bbb", 1.0));
    let o = pushbench(&["compare", &base, &new]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{out}\n{err}");
    assert!(out.starts_with("# pushbench compare\n"), "{out}");
    assert!(
        out.contains("commit aaa") && out.contains("commit bbb"),
        "{out}"
    );
    assert!(out.contains("**✓ No regression beyond ±10 %**"), "{out}");
    assert!(
        out.contains("Every compared figure is within ±10 %."),
        "{out}"
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_slower_transport_and_an_unverified_one_are_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &all_at("aaa", 1.0));
    let new_run = run(
        "bbb",
        &[
            (ShortPoll, 1.0, true),
            (LongPoll, 1.0, false), // lost events
            (Sse, 1.5, true),       // 50 % slower
            (Ws, 0.5, true),        // twice as fast
            (Tcp, 1.0, true),
        ],
    );
    let new = write(dir.path(), "new", &new_run);
    let out_file = dir.path().join("compare.md");
    let o = pushbench(&["compare", &base, &new, "--out", out_file.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 1, "{out}\n{err}");
    assert!(err.contains("regression"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        out,
        "--out holds what was printed"
    );

    // SSE: every latency figure 50 % worse, flagged.
    let p99 = row(&out, "SSE", "p99").unwrap_or_else(|| panic!("no SSE p99 row:\n{out}"));
    assert_eq!(p99[2], "lower");
    assert_eq!(p99[3], "6.96 ms");
    assert_eq!(p99[4], "10.4 ms");
    assert_eq!(p99[5], "1.500");
    assert_eq!(p99[6], "+50.0 %");
    assert_eq!(p99[7], "**✗ worse: regression**");
    // WebSocket got faster: better, not a regression.
    let ws = row(&out, "WebSocket", "p50").unwrap();
    assert_eq!(ws[6], "−50.0 %");
    assert_eq!(ws[7], "✓ better");
    // Unchanged figures are not listed without --all.
    assert!(row(&out, "short polling", "p50").is_none(), "{out}");
    // Long polling did not verify: a regression, with its problem; its speed
    // figures are not compared, but its lost events are.
    assert!(
        out.contains("| long polling | ✓ | ✗ | **✗ regression: not verified** client 3: 40 events missing (ids 7..46) |"),
        "{out}"
    );
    assert!(out.contains("long polling's speed figures not compared: not verified in NEW"));
    assert!(row(&out, "long polling", "p50").is_none(), "{out}");
    let missing = row(&out, "long polling", "missing").unwrap();
    assert_eq!((missing[3].as_str(), missing[4].as_str()), ("0", "40"));
    assert_eq!(missing[6], "from 0");

    // The same through the library: every regression counted once.
    let c = compare::compare(
        &results::io::read_run(Path::new(&base)).unwrap(),
        &new_run,
        Options::default(),
    )
    .unwrap();
    let worse: Vec<(TransportKind, &str)> = c
        .diffs
        .iter()
        .filter(|d| d.change == Change::Worse)
        .map(|d| (d.transport, d.metric.key))
        .collect();
    assert!(worse.contains(&(Sse, "latency_p50")) && worse.contains(&(Sse, "latency_p99")));
    assert!(worse.contains(&(LongPoll, "missing")));
    assert!(
        worse.iter().all(|&(t, _)| t == Sse || t == LongPoll),
        "{worse:?}"
    );
    assert_eq!(c.verification.len(), 1);
    assert_eq!(c.regressions(), worse.len() + 1);

    // A looser tolerance forgives SSE's 50 %, never an unverified transport.
    let o = pushbench(&["compare", &base, &new, "--tolerance", "0.6"]);
    let (out, _) = text(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(row(&out, "SSE", "p99").is_none(), "{out}");
    assert!(out.contains("**✗ regression: not verified**"));

    // --metrics judges only the named figures (verification always).
    let o = pushbench(&["compare", &base, &new, "--metrics", "latency_p50"]);
    let (out, _) = text(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(row(&out, "SSE", "p50").is_some(), "{out}");
    assert!(row(&out, "SSE", "p99").is_none(), "{out}");
    let o = pushbench(&["compare", &base, &new, "--metrics", "latency_p5O"]);
    let (_, err) = text(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("unknown metric") && err.contains("latency_p50"),
        "{err}"
    );
}

#[test]
fn relative_mode_cancels_the_machine_s_speed() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &all_at("aaa", 1.0));
    // Everything twice as slow: a slower CI machine, same code.
    let slower_machine = write(dir.path(), "slow", &all_at("bbb", 2.0));
    let o = pushbench(&["compare", &base, &slower_machine]);
    assert_eq!(code(&o), 1, "absolute figures see a regression everywhere");
    for flag in [
        &["--relative-to", "ws"][..],
        &["--relative"],
        &["--relative-to", "tcp"],
    ] {
        let mut args = vec!["compare", &base, &slower_machine];
        args.extend_from_slice(flag);
        let o = pushbench(&args);
        let (out, err) = text(&o);
        assert_eq!(code(&o), 0, "{flag:?}:\n{out}\n{err}");
        assert!(
            out.contains("- mode: relative: each speed figure as a multiple of"),
            "{out}"
        );
    }

    // Only SSE slower, on a machine twice as slow: relative mode still sees it.
    let mut sse_slower = all_at("ccc", 2.0);
    let sse_slow = run("ccc", &[(Sse, 3.0, true)]).transports.remove(0);
    sse_slower.transports[2] = sse_slow;
    let new = write(dir.path(), "sse", &sse_slower);
    let o = pushbench(&["compare", "--relative-to", "ws", "--all", &base, &new]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 1, "{out}\n{err}");
    let p50 = row(&out, "SSE", "p50").unwrap();
    // SSE's p50 was 1.240× WebSocket's (1600/1290) and is now 1.5 times that.
    assert_eq!((p50[3].as_str(), p50[4].as_str()), ("1.240×", "1.860×"));
    assert_eq!(p50[7], "**✗ worse: regression**");
    // --all lists unchanged figures too; the reference itself has no relative rows.
    assert_eq!(row(&out, "long polling", "p50").unwrap()[7], "same");
    assert!(row(&out, "WebSocket", "p50").is_none(), "{out}");
    assert!(
        row(&out, "WebSocket", "missing").is_some(),
        "counts stay absolute"
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &all_at("aaa", 1.0));
    let no_floor = write(
        dir.path(),
        "nofloor",
        &run("bbb", &[(Sse, 1.0, true), (Ws, 1.0, true)]),
    );
    let only_tcp = write(dir.path(), "tcp", &run("ccc", &[(Tcp, 1.0, true)]));
    let ws_broken = write(
        dir.path(),
        "wsbroken",
        &run("ddd", &[(Sse, 1.0, true), (Ws, 1.0, false)]),
    );
    let missing = dir.path().join("absent");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["compare", &base, missing.to_str().unwrap()],
            "cannot read",
        ),
        (
            vec!["compare", &base, &no_floor, "--relative-to", "tcp"],
            "not in both runs",
        ),
        (
            vec!["compare", &no_floor, &only_tcp],
            "no transport in common",
        ),
        (
            vec!["compare", &ws_broken, &base, "--relative-to", "ws"],
            "is not verified in BASE",
        ),
        (
            vec!["compare", &base, &base, "--tolerance", "abc"],
            "--tolerance",
        ),
        (
            vec!["compare", &base, &base, "--relative-to", "pigeon"],
            "pigeon",
        ),
        (vec!["compare", &base], "required arguments"),
    ];
    for (args, expected) in cases {
        let o = pushbench(&args);
        let (out, err) = text(&o);
        assert_eq!(code(&o), 2, "{args:?}:\n{out}\n{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line expected: {err}"
        );
        assert!(out.is_empty(), "{args:?}: {out}");
    }

    // A reference that breaks in NEW is a regression (exit 1), not bad input.
    let o = pushbench(&["compare", &no_floor, &ws_broken, "--relative-to", "ws"]);
    let (out, _) = text(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("WebSocket (the reference) is not verified in NEW"),
        "{out}"
    );
}

#[test]
fn different_workloads_are_refused_unless_allowed_and_then_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = all_at("aaa", 1.0);
    a.scenario = json!({ "name": "x", "clients": 100, "rate": 10.0, "poll_interval": "1s" });
    let mut b = all_at("bbb", 1.0);
    b.scenario = json!({ "name": "x", "clients": 1000, "rate": 10.0, "poll_interval": "500ms" });
    let (base, new) = (write(dir.path(), "a", &a), write(dir.path(), "b", &b));
    let o = pushbench(&["compare", &base, &new]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 2, "{out}\n{err}");
    assert!(
        err.contains("different workloads")
            && err.contains("clients: 100 → 1000")
            && err.contains("poll_interval: \"1s\" → \"500ms\"")
            && err.contains("--allow-different-workload"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let o = pushbench(&["compare", &base, &new, "--allow-different-workload"]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{out}\n{err}");
    assert!(out.contains("⚠ different workloads"), "{out}");

    // A key an older file lacks equals its empty value.
    b.scenario = json!({ "name": "x", "clients": 100, "rate": 10.0, "poll_interval": "1s",
                         "behaviour": {}, "group": [] });
    let new = write(dir.path(), "c", &b);
    assert_eq!(code(&pushbench(&["compare", &base, &new])), 0);
}

#[test]
fn a_speed_figure_from_zero_is_not_judged_but_a_count_from_zero_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = all_at("aaa", 1.0);
    // CPU below its resolution in BASE (a tick-quantised short run).
    for t in &mut a.transports {
        t.server.as_mut().unwrap().cpu_s = 0.0;
    }
    let (base, new) = (
        write(dir.path(), "a", &a),
        write(dir.path(), "b", &all_at("bbb", 1.0)),
    );
    let o = pushbench(&["compare", &base, &new]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{out}\n{err}");
    assert!(
        out.contains("was 0 in BASE (below its resolution)"),
        "{out}"
    );
    assert!(!out.contains('∞'), "{out}");
}
