//! The whole pipeline at toy scale: a real `push-server` per transport, a
//! real fleet, `run.json`, the report. Plus the command line's refusals.
//!
//! `push-server` must sit beside the `pushbench` test binary: `cargo test
//! --workspace` builds it (`cargo test -p harness` alone does not).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::server_bin;
use harness::placement::{self, PinSpec, Placement};
use harness::progress::{Mode, Progress};
use harness::report;
use harness::results::{self, RunFile, SCHEMA_VERSION};
use harness::runner::{self, RunOptions};
use harness::scenario::Scenario;
use protocol::TransportKind;
use tokio_util::sync::CancellationToken;

pub(crate) fn tiny_scenario() -> Scenario {
    let mut s = Scenario::from_toml(
        r#"
        name = "tiny"
        description = "End-to-end test: every transport and the floor at toy scale."
        clients = 4
        rate = 20.0
        duration = "2s"
        warmup = "500ms"
        poll_interval = "200ms"
        "#,
    )
    .unwrap();
    s.transports = harness::scenario::builtins(&TransportKind::ALL);
    s.validate().unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_verifies_end_to_end() {
    let server_bin = server_bin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    let scenario = tiny_scenario();
    // The server is pinned as `auto` asks; the fleet (this test process) is
    // not, which the recorded placement must say.
    let placement = placement::resolve(&PinSpec::Auto, &harness::sys::allowed_cpus()).unwrap();
    let opts = RunOptions {
        out_dir: out.clone(),
        target: None,
        server_bin: Some(server_bin),
        command_line: vec!["pushbench-test".into()],
        interrupt: CancellationToken::new(),
        progress: Progress::new(Mode::Plain),
        placement: placement.clone(),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(90), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());

    // What is on disk is the contract, not what is in memory.
    let text = std::fs::read_to_string(out.join("run.json")).unwrap();
    let run: RunFile = results::io::parse_run(&text).unwrap();
    assert_eq!(run.schema_version, SCHEMA_VERSION);
    assert!(run.complete);
    assert_eq!(run.scenario["name"], "tiny");
    assert_eq!(run.provenance.command_line, vec!["pushbench-test"]);
    let kinds: Vec<_> = run.transports.iter().map(|t| t.transport).collect();
    assert_eq!(kinds, TransportKind::ALL.to_vec());
    let pl = &run.provenance.placement;
    assert_eq!(pl.spec, "auto");
    assert_eq!(pl.server_cpus, placement.server_cpus);
    assert_eq!(
        pl.fleet_cpus,
        harness::sys::allowed_cpus(),
        "observed, not asked"
    );

    let poll_interval_us = 200_000;
    for t in &run.transports {
        let c = &t.counts;
        assert!(t.verified, "{}: {:?}", t.transport, t.problems);
        assert_eq!(t.clients_connected, 4, "{}", t.transport);
        assert_eq!(c.missing, 0, "{}", t.transport);
        assert_eq!(c.duplicated + c.out_of_order, 0, "{}", t.transport);
        // 4 clients × 20 events/s × 2 s, give or take the window's edges.
        assert!((150..=170).contains(&c.expected), "{}: {c:?}", t.transport);
        assert_eq!(c.delivered, c.expected, "{}", t.transport);
        assert!((t.window_s - 2.0).abs() < 1e-6, "{}", t.transport);
        assert_eq!(t.latency.count, c.delivered, "{}", t.transport);
        assert!(t.latency.p50 > 0, "{}", t.transport);
        let hist = results::decode_histogram(&t.histograms.latency_us).unwrap();
        assert_eq!(hist.len(), c.delivered);
        match t.transport {
            TransportKind::ShortPoll => {
                assert!(t.latency.p50 < poll_interval_us, "{:?}", t.latency);
                assert!(c.requests > 0);
            }
            _ => assert!(t.latency.p50 < 50_000, "{}: {:?}", t.transport, t.latency),
        }
        assert!(out.join(format!("server-{}.log", t.transport)).is_file());
        assert_eq!(t.repetition, 1);
        check_costs(t, c.delivered);
    }

    // Ratios to the floor, which ran last and verified.
    let rows = report::rows(&run);
    for key in [
        "latency_p50_x_floor",
        "latency_p99_x_floor",
        "bytes_x_floor",
    ] {
        let m = report::metric(key).unwrap();
        for row in &rows {
            let f = row.figure(m);
            assert!(
                f.is_some_and(|f| f.median > 0.0 && f.median.is_finite()),
                "{key} of {}: {f:?}",
                row.transport
            );
        }
    }
    // The floor's CPU over a 2 s toy window may round to 0 ticks; a ratio
    // is then absent rather than infinite.
    let cpu_x = report::metric("cpu_x_floor").unwrap();
    for row in &rows {
        if let Some(f) = row.figure(cpu_x) {
            assert!(f.median.is_finite() && f.median >= 0.0, "{f:?}");
        }
    }

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for t in TransportKind::ALL {
        assert!(md.contains(t.label()), "report names {}", t.label());
    }
    assert!(md.contains("## Cost") && md.contains("### Server settings"));
    assert!(!md.contains("No raw-TCP floor"), "the floor ran");
    for p in harness::report::plot::plots_for(&run) {
        let svg = std::fs::read_to_string(out.join(p.file)).unwrap();
        assert!(
            svg.contains("<svg") && !svg.contains("no data"),
            "{}",
            p.file
        );
    }
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"));
    let lines = svg.matches("<polyline").count() + svg.matches("<path").count();
    assert!(lines >= 4, "one line per transport, found {lines}");
}

/// Every cost figure of a verified toy transport is present and plausible.
pub(crate) fn check_costs(t: &results::TransportResult, delivered: u64) {
    let name = t.transport;
    // Read from /proc at both ends of the window (whatever the counts were).
    assert!(t.kernel_tcp.is_some(), "{name}: kernel TCP events read");
    let wire = t.wire.expect("bytes counted");
    // Each event carries its whole JSON (payload of 64 B plus id, topic, time).
    let down = wire.window.bytes_out as f64 / delivered as f64;
    assert!(down > 64.0, "{name}: {down} B down per event");
    assert!(wire.total.bytes_out >= wire.window.bytes_out, "{name}");
    assert!(wire.total.connections_accepted >= 4, "{name}: {wire:?}");
    if t.transport.is_polling() {
        assert!(
            wire.window.bytes_in > 0 && wire.window.requests > 0,
            "{name}: {wire:?}"
        );
    }
    let s = t.server.expect("server usage read from /proc");
    assert!(
        s.rss_baseline_bytes > 0 && s.rss_idle_bytes > 0,
        "{name}: {s:?}"
    );
    assert!(
        s.rss_peak_bytes > 0 && s.rss_hwm_bytes >= s.rss_peak_bytes,
        "{name}: {s:?}"
    );
    assert!(s.cpu_s >= 0.0 && s.cpu_s < 10.0, "{name}: {s:?}");
    // push-server reports its own CPU clock: the figure is in nanoseconds,
    // not in 10 ms ticks (which would make it a multiple of 0.01 s).
    assert_eq!(s.cpu_resolution_s, 1e-9, "{name}: {s:?}");
    assert!(s.cpu_s > 0.0, "{name}: a serving process used some CPU");
    assert_eq!(s.idle_clients, 4, "{name}");
    assert!(s.tcp_mem_baseline_bytes.is_some(), "{name}");
    let f = &t.fleet;
    assert!(!f.cpus.is_empty() && f.cpu_s >= 0.0, "{name}: {f:?}");
    assert!(f.rss_idle_bytes > 0, "{name}");
    // ~200 wake-ups of a 10 ms timer in a 2 s window.
    assert!(f.lag.count > 100, "{name}: lag samples {}", f.lag.count);
    assert!(
        t.timeline.len() >= 8,
        "{name}: {} samples",
        t.timeline.len()
    );
    assert!(
        t.timeline.iter().all(|x| x.server_rss_bytes.is_some()),
        "{name}"
    );
    assert!(
        t.server_config["buffers"].is_object(),
        "{name}: the server states its buffers: {}",
        t.server_config
    );
}

pub(crate) fn options(out: &Path, server_bin: PathBuf, interrupt: CancellationToken) -> RunOptions {
    RunOptions {
        out_dir: out.to_path_buf(),
        target: None,
        server_bin: Some(server_bin),
        command_line: vec!["pushbench-test".into()],
        interrupt,
        progress: Progress::new(Mode::Plain),
        placement: Placement::default(),
    }
}

/// A `/bin/sh` script `name` in `dir` with `body`, standing in for push-server.
///
/// Made executable by another process, so this (multi-threaded) test
/// process never holds a write descriptor to the file it will exec: a
/// concurrent fork inheriting one would make the exec fail with ETXTBSY.
pub(crate) fn server_wrapper(dir: &Path, name: &str, body: &str) -> PathBuf {
    let text = dir.join(format!("{name}.sh"));
    std::fs::write(&text, format!("#!/bin/sh\n{body}")).unwrap();
    let wrapper = dir.join(name);
    let ok = Command::new("install")
        .args(["-m", "755"])
        .arg(&text)
        .arg(&wrapper)
        .status()
        .unwrap();
    assert!(ok.success());
    wrapper
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_saves_what_was_measured_as_incomplete() {
    let server_bin = server_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = tiny_scenario();
    scenario.transports = harness::scenario::builtins(&[TransportKind::Sse, TransportKind::Ws]);
    scenario.duration = Duration::from_secs(30);
    let interrupt = CancellationToken::new();
    let opts = options(dir.path(), server_bin, interrupt.clone());
    let started = std::time::Instant::now();
    let cancel = tokio::spawn(async move {
        // Into the measured window of the first transport (0.5 s warm-up).
        tokio::time::sleep(Duration::from_secs(2)).await;
        interrupt.cancel();
    });
    let outcome = runner::run(&scenario, &opts).await.unwrap();
    cancel.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped promptly"
    );
    assert!(!outcome.passed());

    let run = results::io::read_run(dir.path()).unwrap();
    assert!(!run.complete);
    assert_eq!(
        run.transports.len(),
        1,
        "the second transport never started"
    );
    let t = &run.transports[0];
    assert!(!t.verified);
    assert!(
        t.problems.iter().any(|p| p.contains("interrupted")),
        "{:?}",
        t.problems
    );
    assert!(
        t.window_s > 0.5 && t.window_s < 5.0,
        "window cut short: {}",
        t.window_s
    );
    assert!(t.counts.delivered > 0, "what was measured is kept");
    assert!(dir.path().join("report.md").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_is_recorded_and_the_run_goes_on() {
    let real = server_bin();
    let dir = tempfile::tempdir().unwrap();
    // A wrapper whose server is killed 2 s after it starts, in the measured window.
    let wrapper = server_wrapper(
        dir.path(),
        "dying-server",
        &format!(
            "\"{}\" \"$@\" &\npid=$!\nsleep 2\nkill -9 $pid\nwait $pid\nexit 9\n",
            real.display()
        ),
    );
    let mut scenario = tiny_scenario();
    scenario.transports =
        harness::scenario::builtins(&[TransportKind::Sse, TransportKind::LongPoll]);
    scenario.duration = Duration::from_secs(10);
    let out = dir.path().join("out");
    let opts = options(&out, wrapper, CancellationToken::new());
    let started = std::time::Instant::now();
    let outcome = runner::run(&scenario, &opts).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no waiting out the window"
    );
    assert!(!outcome.passed());

    let run = results::io::read_run(&out).unwrap();
    assert!(
        !run.complete,
        "a run whose server died is not complete, though every transport ran"
    );
    assert_eq!(
        run.transports.len(),
        2,
        "the run went on after the first server died"
    );
    for t in &run.transports {
        assert!(!t.verified, "{}", t.transport);
        assert!(t.ended_early, "{}", t.transport);
        let all = t.problems.join("; ");
        assert!(
            all.contains("push-server exited unexpectedly"),
            "{}: {all}",
            t.transport
        );
        assert!(all.contains("exit status: 9"), "{}: {all}", t.transport);
        assert!(
            t.window_s < 2.0,
            "the window ends when the server died: {}",
            t.window_s
        );
    }
}
