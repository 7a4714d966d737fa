//! The whole pipeline at toy scale: a real `push-server` per transport, a
//! real fleet, `run.json`, the report. Plus the command line's refusals.
//!
//! `push-server` must sit beside the `pushbench` test binary: `cargo test
//! --workspace` builds it (`cargo test -p harness` alone does not).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::pushbench;
use crate::common::server_bin;
use harness::placement::{self, PinSpec, Placement};
use harness::progress::{Mode, Progress};
use harness::report;
use harness::results::{self, RunFile, SCHEMA_VERSION};
use harness::runner::{self, RunOptions};
use harness::scenario::Scenario;
use protocol::TransportKind;
use tokio_util::sync::CancellationToken;

fn tiny_scenario() -> Scenario {
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
fn check_costs(t: &results::TransportResult, delivered: u64) {
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

fn options(out: &Path, server_bin: PathBuf, interrupt: CancellationToken) -> RunOptions {
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
fn server_wrapper(dir: &Path, name: &str, body: &str) -> PathBuf {
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

/// Runs the binary with `args`; returns (exit code, stderr).
fn run_cli(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(pushbench())
        .args(args)
        .current_dir(cwd)
        // No server is needed to refuse a bad command line; make sure none is found either way.
        .env("PUSHBENCH_SERVER_BIN", "/nonexistent/push-server")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error(stderr: &str) {
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
}

#[test]
fn zero_clients_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["run", "--clients", "0"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("`clients` must be between 1 and"),
        "{stderr}"
    );
    assert!(!dir.path().join("results").exists(), "nothing is written");
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["run", "--duration", "abc"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("--duration") && stderr.contains("abc"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_scenario_key_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    std::fs::write(&file, "clients = 5\nwarmpu = \"1s\"\n").unwrap();
    let (code, stderr) = run_cli(&["run", "--scenario", "typo.toml"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(stderr.contains("typo.toml"), "names the file: {stderr}");
    assert!(stderr.contains("warmpu"), "names the key: {stderr}");
    assert!(stderr.contains("line 2"), "says where: {stderr}");
}

#[test]
fn a_bad_value_in_a_scenario_file_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "clients = 5\nrate = -1\n").unwrap();
    std::fs::write(
        dir.path().join("habits.toml"),
        "clients = 5\n\n[behaviour]\npause_every = \"1s\"\npause_for = \"2s\"\n",
    )
    .unwrap();
    let (code, stderr) = run_cli(&["run", "--scenario", "bad.toml"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("scenario file bad.toml: line 2: `rate`") && stderr.contains("got -1"),
        "{stderr}"
    );
    // Overridden on the command line, the file's value no longer matters.
    let (code, stderr) = run_cli(
        &["run", "--scenario", "bad.toml", "--rate", "5"],
        dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("push-server not found"),
        "validated: {stderr}"
    );
    // A key in a table.
    let (code, stderr) = run_cli(&["run", "--scenario", "habits.toml"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("habits.toml: line 5: `behaviour.pause_for` must be more than 0"),
        "{stderr}"
    );
    // A negative number on the command line is a value, not a flag.
    let (code, stderr) = run_cli(&["run", "--rate", "-1"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("`rate`") && stderr.contains("got -1"),
        "{stderr}"
    );
}

#[test]
fn a_missing_server_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["run", "--clients", "1"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("push-server not found at /nonexistent/push-server"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cargo build --release -p servers"),
        "{stderr}"
    );
}

#[test]
fn report_of_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["report", "nope"], dir.path());
    assert_eq!(code, 2, "bad input, as for compare: {stderr}");
    assert_one_line_error(&stderr);
    assert!(stderr.contains("nope"), "{stderr}");
}

/// Faults at toy scale: every connection dropped, then the server killed
/// and restarted; SSE and WebSocket must resume without a transport loss,
/// and what the restart lost is counted apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_injected_and_recovered_from() {
    let server_bin = server_bin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faults");
    let mut scenario = Scenario::from_toml(
        r#"
        name = "faults"
        description = "End-to-end test: a drop and a restart."
        transports = ["sse", "ws"]
        clients = 4
        rate = 20.0
        history = 1000
        duration = "3s"
        warmup = "300ms"
        reconnect_delay = "50ms"
        # SSE clients come back within 100 ms of the storm, long before the kill.
        retry_ms = 100
        faults = [{ at = "800ms", kind = "storm" }, { at = "1800ms", kind = "restart", pause = "600ms" }]
        "#,
    )
    .unwrap();
    scenario.pin = "none".into();
    scenario.validate().unwrap();
    let opts = RunOptions {
        out_dir: out.clone(),
        target: None,
        server_bin: Some(server_bin),
        command_line: vec!["pushbench-test".into()],
        interrupt: CancellationToken::new(),
        progress: Progress::new(Mode::Plain),
        placement: Placement::default(),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());
    let text = std::fs::read_to_string(out.join("run.json")).unwrap();
    let run: RunFile = results::io::parse_run(&text).unwrap();
    assert!(run.complete);
    for t in &run.transports {
        let r = &t.recovery;
        assert_eq!(r.faults.len(), 2, "{}: {:?}", t.transport, r.faults);
        assert!(r.faults.iter().all(|f| f.error.is_none()), "{:?}", r.faults);
        assert_eq!(r.faults[0].kind, "storm");
        assert_eq!(
            r.faults[0].dropped,
            Some(4),
            "{}: every client dropped",
            t.transport
        );
        assert!(
            r.faults[1].outage_us.unwrap() >= 600_000,
            "{:?}",
            r.faults[1]
        );
        for f in &r.faults {
            assert!(
                f.recovered >= 4,
                "{}: every client recovered: {f:?}",
                t.transport
            );
            assert!(f.all_back_us.is_some(), "{f:?}");
        }
        assert!(r.faults[0].server_cpu_s.is_some(), "{:?}", r.faults[0]);
        assert_eq!(t.counts.missing, 0, "{}: drops lose nothing", t.transport);
        // Every client recovered from both faults.
        assert!(r.reconnect.count >= 8, "{}: {:?}", t.transport, r.reconnect);
        assert!(r.reconnect_attempts >= 8, "{}", t.transport);
        // About 6 events per topic were due while the server was down.
        assert!(r.lost_outage > 0, "{}: the outage lost events", t.transport);
        assert_eq!(
            t.counts.delivered + r.lost_outage,
            t.counts.expected,
            "{}",
            t.transport
        );
        // Connected clients over time: all 4 before the kill, fewer while
        // the server is down (0.6 s: at least two 250 ms samples), all 4 again at the end.
        let kill_us = r.faults[1].at_us;
        let connected = |s: &results::Sample| s.clients_connected.unwrap();
        let before: Vec<u64> = t
            .timeline
            .iter()
            .filter(|s| s.t_us < r.faults[0].at_us && s.t_us > t.window_start_us)
            .map(connected)
            .collect();
        assert!(
            !before.is_empty() && before.iter().all(|&n| n == 4),
            "{before:?}"
        );
        let outage = kill_us + 30_000..kill_us + 550_000;
        let down: Vec<u64> = t
            .timeline
            .iter()
            .filter(|s| outage.contains(&s.t_us))
            .map(connected)
            .collect();
        assert!(down.iter().any(|&n| n < 4), "{}: {down:?}", t.transport);
        assert_eq!(t.timeline.last().map(connected), Some(4), "{}", t.transport);
        let timeline: u64 = r.delivered_per_s.iter().sum();
        assert!(
            timeline <= t.counts.delivered && timeline > 0,
            "{}",
            t.transport
        );
    }
    assert!(out.join("server-sse.restart2.log").is_file());
}

/// A restarted server that never comes back ends the run within the restart
/// bound, with the partial results saved and marked incomplete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_comes_back_ends_the_run_as_incomplete() {
    let real = server_bin();
    let dir = tempfile::tempdir().unwrap();
    // The first start runs the real server; every later one (the restart) fails.
    let marker = dir.path().join("started-once");
    let wrapper = server_wrapper(
        dir.path(),
        "once-server",
        &format!(
            "if [ -e \"{m}\" ]; then echo 'this server will not start again' >&2; exit 3; fi\n\
             touch \"{m}\"\nexec \"{s}\" \"$@\"\n",
            m = marker.display(),
            s = real.display()
        ),
    );
    let mut scenario = tiny_scenario();
    scenario.transports = vec![TransportKind::Sse.into(), TransportKind::Ws.into()];
    scenario.duration = Duration::from_secs(30);
    scenario.faults = vec![harness::scenario::Fault::parse_spec("restart@800ms:200ms").unwrap()];
    scenario.validate().unwrap();
    let out = dir.path().join("out");
    let opts = options(&out, wrapper, CancellationToken::new());
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(60), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    // Warm-up 0.5 s + 0.8 s + 0.2 s pause + the 15 s restart bound, not the 30 s window.
    assert!(
        started.elapsed() < Duration::from_secs(28),
        "ended at the restart bound: {:?}",
        started.elapsed()
    );
    assert!(!outcome.passed());

    let run = results::io::read_run(&out).unwrap();
    assert!(!run.complete, "saved as incomplete");
    assert_eq!(
        run.transports.len(),
        1,
        "the run ended with the first transport"
    );
    let t = &run.transports[0];
    assert!(!t.verified);
    let all = t.problems.join("; ");
    assert!(all.contains("did not come back within"), "{all}");
    assert!(
        all.contains("will not start again"),
        "the server's own words: {all}"
    );
    let fault = &t.recovery.faults[0];
    assert_eq!(fault.kind, "restart");
    assert!(fault.error.is_some(), "{fault:?}");
    assert!(
        t.counts.delivered > 0,
        "what was measured before the kill is kept"
    );
    assert!(
        t.window_s < 3.0,
        "the window ends at the loss: {}",
        t.window_s
    );
    assert!(out.join("report.md").is_file());
}

/// Chat at toy scale: 10 clients in 2 rooms, 3 of them sending 2 messages/s
/// for 2 s, over WebSocket (sending on their own socket) and SSE (sending
/// with `POST /publish`). Sender `i`'s messages are due at `start + i/3 ×
/// 500 ms + k × 500 ms`, so exactly 4 each fall in the 2 s window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_come_back_to_every_member_of_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("chat");
    let scenario = Scenario::from_toml(
        r#"
        name = "tiny-chat"
        transports = ["ws", "sse"]
        clients = 10
        topics = 2
        rate = 0.0
        senders = 3
        send_rate = 2.0
        duration = "2s"
        warmup = "500ms"
        "#,
    )
    .unwrap();
    scenario.validate().unwrap();
    let opts = options(&out, server_bin(), CancellationToken::new());
    let outcome = tokio::time::timeout(Duration::from_secs(60), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());

    let run = results::io::read_run(&out).unwrap();
    let kinds: Vec<_> = run.transports.iter().map(|t| t.transport).collect();
    assert_eq!(kinds, [TransportKind::Ws, TransportKind::Sse]);
    for t in &run.transports {
        assert!(t.verified, "{}: {:?}", t.transport, t.problems);
        // Room t0 holds senders 0 and 2 (8 messages), t1 sender 1 (4), five
        // members each: every member got every message of its room.
        assert_eq!(t.counts.expected, 5 * 8 + 5 * 4, "{}", t.transport);
        assert_eq!(t.counts.delivered, t.counts.expected, "{}", t.transport);
        assert_eq!(t.counts.duplicated + t.counts.out_of_order, 0);
        let chat = t.chat.as_ref().expect("a chat block");
        assert_eq!(
            (
                chat.senders,
                chat.sent,
                chat.echoed,
                chat.lost,
                chat.send_errors
            ),
            (3, 12, 12, 0, 0),
            "{}",
            t.transport
        );
        let upstream = match t.transport {
            TransportKind::Ws => "websocket",
            _ => "publish",
        };
        assert_eq!(chat.upstream, upstream);
        assert_eq!(chat.round_trip.count, 12, "{}", t.transport);
        // Loopback: a round trip takes more than nothing and far less than a second.
        assert!(
            chat.round_trip.min > 0 && chat.round_trip.max < 1_000_000,
            "{}: {:?}",
            t.transport,
            chat.round_trip
        );
        let hist = results::decode_histogram(&chat.round_trip_us).unwrap();
        assert_eq!(hist.len(), 12);
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Chat round trip"), "{md}");
    assert!(
        md.contains("3 chat senders sending 2 messages/s each"),
        "{md}"
    );
    assert!(out.join("chat_round_trip.svg").is_file());
}

/// A mixed run at toy scale: idle SSE clients on a topic each, busy
/// WebSocket clients on one hot topic, and a WebSocket chat, all at once
/// against one push-server, each group verified against its own schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_run_verifies_every_group_against_one_server() {
    let server_bin = server_bin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny-mixed");
    let mut scenario = Scenario::from_toml(
        r#"
        name = "tiny-mixed"
        description = "End-to-end test: three client groups against one server."
        duration = "3s"
        warmup = "500ms"
        keepalive = "1s"
        idle_timeout = "5s"

        [[group]]
        name = "idle"
        transport = "sse"
        clients = 8
        topics = 0
        rate = 0.5

        [[group]]
        name = "busy"
        transport = "ws"
        clients = 4
        rate = 20.0

        [[group]]
        name = "chat"
        transport = "ws"
        clients = 2
        rate = 0.0
        senders = 2
        send_rate = 5.0
        "#,
    )
    .unwrap();
    scenario.resolve_topics();
    scenario.validate().unwrap();
    let opts = options(&out, server_bin, CancellationToken::new());
    let outcome = tokio::time::timeout(Duration::from_secs(90), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());

    let run = results::io::read_run(&out).unwrap();
    assert_eq!(
        run.transports.len(),
        1,
        "one entry: one server for every group"
    );
    let entry = &run.transports[0];
    assert!(entry.verified, "{:?}", entry.problems);
    let names: Vec<&str> = entry.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["idle", "busy", "chat"]);
    let [idle, busy, chat] = [&entry.groups[0], &entry.groups[1], &entry.groups[2]];
    assert_eq!(
        (idle.first_topic, busy.first_topic, chat.first_topic),
        (0, 8, 9),
        "disjoint topic ranges"
    );
    for g in &entry.groups {
        let r = &g.result;
        assert!(r.verified, "group {}: {:?}", g.name, r.problems);
        assert_eq!(r.clients_connected, r.clients, "group {}", g.name);
        assert!(r.counts.expected > 0, "group {}: nothing was due", g.name);
        assert_eq!(r.counts.delivered, r.counts.expected, "group {}", g.name);
        assert_eq!(r.latency.count, r.counts.delivered, "group {}", g.name);
    }
    assert_eq!(idle.result.transport, TransportKind::Sse);
    assert_eq!(busy.result.transport, TransportKind::Ws);
    // Each group's own rate: 8 topics at 0.5/s are a slot every 250 ms in
    // all, 12 in 3 s; one topic at 20/s is 60 in 3 s, for each of 4 clients.
    assert_eq!(idle.result.counts.expected, 12);
    assert_eq!(busy.result.counts.expected, 4 * 60);
    // Two senders at 5/s for 3 s: 30 messages, each back to both members.
    let c = chat
        .result
        .chat
        .as_ref()
        .expect("the chat group's chat block");
    assert_eq!((c.sent, c.echoed, c.lost), (30, 30, 0));
    assert_eq!(chat.result.counts.expected, 2 * 30);
    assert!(idle.result.chat.is_none() && busy.result.chat.is_none());
    // The entry: every group's clients together, the one server's cost.
    let sum: u64 = entry.groups.iter().map(|g| g.result.counts.expected).sum();
    assert_eq!(entry.counts.expected, sum);
    assert_eq!(entry.clients, 14);
    assert!(entry.server.is_some() && entry.wire.is_some());

    // The report re-renders from run.json alone, with a row per group and no winner.
    std::fs::remove_file(out.join("report.md")).unwrap();
    report::render_dir(&out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Groups"), "{md}");
    for row in [
        "| idle | SSE | ✓ verified | 8 of 8 |",
        "| busy | WebSocket | ✓ verified | 4 of 4 |",
    ] {
        assert!(md.contains(row), "{row} missing:\n{md}");
    }
    assert!(
        md.contains("**What this run shows:** every group received"),
        "{md}"
    );
    assert!(
        !md.contains("**Headline:**"),
        "a mixed run names no winner:\n{md}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("What this run shows"));
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    assert!(
        svg.contains("idle SSE") && svg.contains("busy WebSocket"),
        "one line per group"
    );
    // compare refuses mixed runs rather than diffing sums of different work.
    let err = harness::compare::compare(&run, &run, Default::default()).unwrap_err();
    assert!(err.to_string().contains("mixed run"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_ping_pause_and_send_junk_still_verify_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("habits");
    let mut scenario = Scenario::from_toml(
        r#"
        name = "habits"
        clients = 4
        rate = 50.0
        duration = "2s"
        warmup = "500ms"
        poll_interval = "200ms"
        [behaviour]
        ws_ping_interval = "100ms"
        pause_every = "700ms"
        pause_for = "200ms"
        junk_interval = "300ms"
        "#,
    )
    .unwrap();
    scenario.transports = harness::scenario::builtins(&[
        TransportKind::LongPoll,
        TransportKind::Sse,
        TransportKind::Ws,
        TransportKind::Tcp,
    ]);
    scenario.validate().unwrap();
    let opts = options(&out, server_bin(), CancellationToken::new());
    let outcome = tokio::time::timeout(Duration::from_secs(90), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());
    let run = results::io::read_run(&out).unwrap();
    for t in &run.transports {
        let (name, h) = (t.transport, t.habits);
        assert!(t.verified, "{name}: {:?}", t.problems);
        // 4 clients × a pause every 700 ms over ≥ 2.5 s.
        assert!(h.pauses >= 8, "{name}: {h:?}");
        assert_eq!(h.paused_us, h.pauses * 200_000, "{name}");
        if name == TransportKind::Ws {
            assert!(h.pings >= 60 && h.junk >= 20, "{name}: {h:?}");
            assert!(
                h.error_replies + 4 >= h.junk,
                "{name}: every junk message answered: {h:?}"
            );
        } else {
            assert_eq!((h.pings, h.junk), (0, 0), "{name}: cannot send");
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Client habits"), "{md}");
    assert!(md.contains("WebSocket ping every 100ms"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_delays_every_transport_by_its_one_way_delay_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, link, p50_ms, p99_min_ms) in [
        // 40 ms round trip: an event reaches a streaming client 20 ms after it is sent.
        ("rtt", "loopback,rtt=40ms", 20.0, 0.0),
        // 5 % of segments lost, each resent one RTO (200 ms) later: the tail pays it.
        ("lossy", "loopback,rtt=40ms,loss=5%", 20.0, 200.0),
    ] {
        let out = dir.path().join(name);
        let mut scenario = Scenario::from_toml(&format!(
            r#"
            name = "{name}"
            clients = 4
            rate = 20.0
            duration = "2s"
            warmup = "500ms"
            link = "{link}"
            link_emulator = "relay"
            "#
        ))
        .unwrap();
        scenario.transports = harness::scenario::builtins(&[
            TransportKind::LongPoll,
            TransportKind::Sse,
            TransportKind::Ws,
            TransportKind::Tcp,
        ]);
        scenario.validate().unwrap();
        let opts = options(&out, server_bin(), CancellationToken::new());
        let outcome = tokio::time::timeout(Duration::from_secs(90), runner::run(&scenario, &opts))
            .await
            .expect("the run ends in bounded time")
            .expect("the run produced results");
        assert!(outcome.passed(), "{name}: {:?}", outcome.failure());
        let run = results::io::read_run(&out).unwrap();
        for t in &run.transports {
            let p50 = t.latency.p50 as f64 / 1000.0;
            let p99 = t.latency.p99 as f64 / 1000.0;
            assert!(t.verified, "{name} {}: {:?}", t.transport, t.problems);
            // Under loss, long polling's median also pays the requests' and
            // answers' lost segments (each one RTO, and events pile up behind
            // it): only its floor is one way.
            let lossy_long_poll = p99_min_ms > 0.0 && t.transport == TransportKind::LongPoll;
            assert!(
                p50 >= p50_ms * 0.9 && (lossy_long_poll || p50 <= p50_ms + 15.0),
                "{name} {}: p50 {p50} ms, want ≈ {p50_ms} ms",
                t.transport
            );
            if p99_min_ms > 0.0 && t.transport != TransportKind::LongPoll {
                assert!(p99 >= p99_min_ms, "{name} {}: p99 {p99} ms", t.transport);
            }
            assert!(
                t.fleet.relay_cpu_s.is_some(),
                "{name}: the relay's CPU is recorded"
            );
        }
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            md.contains(&format!("link `{link}`")),
            "{name}: the report names the link"
        );
    }
}
