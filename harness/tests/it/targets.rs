//! Foreign targets through the real runner: django-eventstream at toy scale,
//! and the clear, bounded errors of a target that cannot start.
//!
//! The django-eventstream test needs the target's virtual environment:
//! `targets/django-eventstream/setup.sh` (CI runs it before the tests). It
//! fails, not skips, without it: a skipped comparison would look like a
//! passed one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::repo_root;
use harness::placement::Placement;
use harness::progress::{Mode, Progress};
use harness::results::{self, RunFile};
use harness::runner::{self, RunOptions};
use harness::scenario::{Contender, Scenario};
use protocol::TransportKind;
use tokio_util::sync::CancellationToken;

/// A scenario of one target, `[targets.NAME]` given as TOML (`command` and
/// the rest), at toy scale.
fn target_scenario(name: &str, target_toml: &str, clients: usize) -> Scenario {
    let s = Scenario::from_toml(&format!(
        r#"
        name = "targets"
        description = "Foreign target test."
        transports = ["{name}"]
        clients = {clients}
        topics = 2
        rate = 5.0
        payload_bytes = 64
        warmup = "1s"
        duration = "3s"
        connect_rate = 100.0
        faults = []

        [targets.{name}]
        {target_toml}
        "#
    ))
    .unwrap();
    s.validate().unwrap();
    s
}

fn options(out: PathBuf) -> RunOptions {
    RunOptions {
        out_dir: out,
        target: None,
        // Targets only: no push-server is started.
        server_bin: None,
        command_line: vec!["pushbench-test".into()],
        interrupt: CancellationToken::new(),
        progress: Progress::new(Mode::Quiet),
        placement: Placement::default(),
    }
}

/// Runs `scenario` bounded by `bound`, returning what is on disk.
async fn run(scenario: &Scenario, out: &Path, bound: Duration) -> (RunFile, runner::RunOutcome) {
    let outcome = tokio::time::timeout(bound, runner::run(scenario, &options(out.to_path_buf())))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    let run = results::io::read_run(out).unwrap();
    (run, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_eventstream_verifies_with_memory_and_cpu() {
    let dir = repo_root().join("targets/django-eventstream");
    assert!(
        dir.join(".venv/bin/python").is_file(),
        "the django-eventstream target has no virtual environment: run \
         targets/django-eventstream/setup.sh first ({} is missing)",
        dir.join(".venv").display()
    );
    let run_sh = dir.join("run.sh");
    let scenario = target_scenario(
        "django-eventstream",
        &format!(
            r#"transport = "sse"
            command = ["{}"]
            path = "/events/?channel={{topic}}"
            ready_timeout = "60s""#,
            run_sh.display()
        ),
        5,
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dj");
    let (run, outcome) = run(&scenario, &out, Duration::from_secs(120)).await;
    assert!(outcome.passed(), "{:?}", outcome.failure());

    let [t] = &run.transports[..] else {
        panic!("one entry: {:?}", run.transports.len());
    };
    assert_eq!(t.target.as_deref(), Some("django-eventstream"));
    assert_eq!(t.transport, TransportKind::Sse);
    assert_eq!(t.label(), "django-eventstream (SSE)");
    // Verified: every event of the window delivered once, in order.
    assert!(t.verified, "{:?}", t.problems);
    let c = &t.counts;
    // 5 clients on 2 topics at 5 events/s each, 3 s: 15 events per client, give or take an edge.
    assert!((70..=80).contains(&c.expected), "{c:?}");
    assert_eq!(c.delivered, c.expected);
    assert_eq!(c.missing + c.duplicated + c.out_of_order, 0, "{c:?}");
    assert_eq!(t.clients_connected, 5);
    assert_eq!(t.latency.count, c.delivered);
    // Memory and CPU of the target's process (tree), from /proc.
    let s = t.server.expect("the target's memory and CPU were read");
    assert!(s.rss_baseline_bytes > 0 && s.rss_idle_bytes > 0, "{s:?}");
    assert!(
        s.cpu_s > 0.0,
        "a Python server publishing 30 events used no CPU? {s:?}"
    );
    assert!(t.timeline.iter().all(|x| x.server_rss_bytes.is_some()));
    // No /stats: bytes are not counted rather than made up.
    assert!(t.wire.is_none());
    assert!(out.join("server-django-eventstream.log").is_file());
    // The run file of a target run is what the published schema describes.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schemas/run.schema.json")).unwrap(),
    )
    .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the committed schema compiles");
    let invalid: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(invalid.is_empty(), "{invalid:?}");
    assert_eq!(doc["transports"][0]["target"], "django-eventstream");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| django-eventstream (SSE) | ✓ verified |"),
        "{md}"
    );
    assert!(md.contains("is a target"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_exits_at_once_is_a_clear_error_quoting_its_log() {
    let scenario = target_scenario(
        "crasher",
        r#"transport = "ws"
        command = ["sh", "-c", "echo 'no module named django' >&2; exit 3"]
        path = "/ws/{topic}"
        ready_timeout = "60s""#,
        2,
    );
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (run, outcome) = run(&scenario, tmp.path(), Duration::from_secs(60)).await;
    // Noticed at its exit, long before the 60 s readiness bound.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(!outcome.passed());
    let problems = run.transports[0].problems.join(" ");
    assert!(
        problems.contains("target `crasher` failed to start"),
        "{problems}"
    );
    assert!(problems.contains("exited"), "{problems}");
    assert!(problems.contains("no module named django"), "{problems}");
    assert_eq!(run.transports[0].target.as_deref(), Some("crasher"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_gets_ready_fails_at_its_bound_and_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pid");
    let scenario = target_scenario(
        "sleeper",
        &format!(
            r#"transport = "sse"
            command = ["sh", "-c", "echo $$ > {}; exec sleep 120"]
            path = "/events?channel={{topic}}"
            ready_timeout = "1s""#,
            pid_file.display()
        ),
        2,
    );
    let out = tmp.path().join("out");
    let started = Instant::now();
    let (run, outcome) = run(&scenario, &out, Duration::from_secs(60)).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(!outcome.passed());
    let problems = run.transports[0].problems.join(" ");
    assert!(problems.contains("not ready within 1s"), "{problems}");
    assert!(
        problems.contains("/healthz"),
        "names what it asked: {problems}"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the target (pid {}) was killed and reaped",
        pid.trim()
    );
}

/// The Python publisher's schedule and event JSON are the Rust originals,
/// event for event, across rates whose steps round both ways.
#[test]
fn the_python_publisher_reproduces_the_schedule_and_the_event_json() {
    let dir = repo_root().join("targets/django-eventstream");
    // Printed with `{:?}`, a Rust array of tuples is a Python list of tuples.
    // 200000 events/s on 2 topics steps 2.5 µs: halves, which Rust rounds away from zero.
    let cases: [(f64, u32); 6] = [
        (10.0, 1),
        (3.0, 7),
        (0.7, 3),
        (1000.0, 2),
        (33.3, 10),
        (200_000.0, 2),
    ];
    let start = 1_795_000_000_123_000_u64;
    let script = format!(
        "import sys\n\
         sys.path.insert(0, {dir:?})\n\
         from pbtarget.schedule import slot, event_json\n\
         for rate, topics in {cases:?}:\n\
         \x20   for seq in range(5000):\n\
         \x20       t, i, at = slot({start}, rate, topics, seq)\n\
         \x20       print(event_json(i, f't{{t}}', at, 'x' * 5))\n",
        dir = dir.display().to_string(),
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs (install Python 3.10 or newer)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    for (rate, topics) in cases {
        let schedule = protocol::Schedule {
            start_epoch_us: start,
            rate,
            topics,
        };
        for seq in 0..5000 {
            let s = schedule.slot(seq);
            let want = protocol::encode::event_json(
                s.id,
                &protocol::schedule::topic_name(s.topic),
                s.at_us,
                &protocol::encode::payload(5),
            );
            assert_eq!(
                lines.next(),
                Some(want.as_str()),
                "rate {rate}, {topics} topics, seq {seq}"
            );
        }
    }
    assert_eq!(lines.next(), None);
}

#[test]
fn a_name_in_transports_must_be_built_in_or_declared() {
    let s = Scenario {
        transports: vec![
            Contender::Builtin(TransportKind::Sse),
            Contender::Target("rails".into()),
        ],
        ..Scenario::default()
    };
    let err = s.validate().unwrap_err().to_string();
    assert!(err.contains("`rails`"), "{err}");
    assert!(err.contains("short-poll, long-poll, sse, ws, tcp"), "{err}");
    assert!(err.contains("none declared under [targets]"), "{err}");
}
