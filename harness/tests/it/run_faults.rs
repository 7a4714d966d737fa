//! Faults at toy scale through the whole pipeline: drops, a restart, a
//! server that never comes back.

use std::time::Duration;

use crate::common::server_bin;
use harness::placement::Placement;
use harness::progress::{Mode, Progress};
use harness::results::{self, RunFile};
use harness::runner::{self, RunOptions};
use harness::scenario::Scenario;
use protocol::TransportKind;
use tokio_util::sync::CancellationToken;

use crate::run::{options, server_wrapper, tiny_scenario};

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
