//! Beyond one process: push-servers behind Redis (`servers`, `broker`) and
//! fleet agents (`agents`). Every transport through two servers sharing one
//! stream and two agents, with clients that ping, pause and send stray
//! messages, gets every id once and in order; an agent that dies fails the
//! run with its reason; a missing redis-server is named with how to install
//! it. Needs Debian's redis-server (scripts/test.sh installs it); fails,
//! never skips, without it.

use std::path::Path;
use std::time::Duration;

use crate::common::run_options;
use crate::common::{pushbench, run_bounded, server_bin};
use harness::results;
use harness::runner::{self};
use harness::scenario::Scenario;
use protocol::TransportKind;

/// The pids of this process's children whose stderr goes to a file under
/// `dir` (a run's servers, broker and agents log into its output
/// directory), so tests running side by side in one process never see
/// each other's.
fn children_logging_into(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 4, after the parenthesised name: the parent's pid.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let log = std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap_or_default();
            ppid == Some(me) && log.starts_with(dir)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_through_two_servers_behind_redis_and_two_agents_gets_every_id_once_in_order()
 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scale");
    let mut scenario = Scenario::from_toml(
        r#"
        name = "scale"
        clients = 40
        topics = 4
        rate = 20.0
        duration = "2s"
        warmup = "1s"
        poll_interval = "200ms"
        servers = 2
        broker = "redis"
        agents = 2
        [behaviour]
        ws_ping_interval = "300ms"
        pause_every = "700ms"
        pause_for = "200ms"
        junk_interval = "500ms"
        "#,
    )
    .unwrap();
    scenario.transports = harness::scenario::builtins(&TransportKind::ALL);
    scenario.validate().unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(240),
        runner::run(&scenario, &run_options(&out)),
    )
    .await
    .expect("the run ends in bounded time")
    .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());
    let run = results::io::read_run(&out).unwrap();
    assert_eq!(run.transports.len(), TransportKind::ALL.len());
    for t in &run.transports {
        let name = t.transport;
        assert!(t.verified, "{name}: {:?}", t.problems);
        // 40 clients × 20 events/s × 2 s, once each, in order.
        assert_eq!(t.counts.expected, 1600, "{name}");
        assert_eq!(t.counts.delivered, 1600, "{name}");
        assert_eq!(
            (t.counts.duplicated, t.counts.out_of_order),
            (0, 0),
            "{name}"
        );
        assert_eq!(
            t.latency.count, 1600,
            "{name}: the merged histogram holds every sample"
        );
        let s = t.scale.as_ref().expect("scale figures");
        assert_eq!((s.servers, s.agents), (2, 2), "{name}");
        assert_eq!(s.broker.as_deref(), Some("redis"));
        assert!(s.broker_cpu_s.is_some() && s.broker_rss_bytes.is_some_and(|b| b > 0));
        assert_eq!(s.agent_clocks.len(), 2);
        for c in &s.agent_clocks {
            // One host, one clock: the offset is within its bound, and the
            // bound is a pipe's round trip.
            assert!(c.offset_us.unsigned_abs() <= c.bound_us + 1_000, "{c:?}");
            assert!(c.bound_us < 50_000, "{c:?}");
        }
        // The fleet's CPU is the coordinator's and both agents'.
        assert!(t.fleet.cpu_s > 0.0, "{name}");
        if name != TransportKind::Tcp {
            assert!(t.habits.pauses > 0, "{name}: clients paused reading");
        }
        if name == TransportKind::Ws {
            assert!(t.habits.pings > 0 && t.habits.junk > 0, "{:?}", t.habits);
        }
        let log = |prefix: &str| out.join(format!("{prefix}-{name}.log"));
        for prefix in ["server1", "server2", "broker", "agent1", "agent2"] {
            assert!(log(prefix).is_file(), "{}", log(prefix).display());
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("behind redis"),
        "the report says how the run was spread:\n{md}"
    );
    // Nothing outlives the run: no server, broker or agent logs into it.
    assert!(children_logging_into(&out).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_dies_fails_the_run_with_its_reason_and_its_clients_count_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("agent-dies");
    let scenario = Scenario::from_toml(
        r#"
        name = "agent-dies"
        transports = ["sse"]
        clients = 20
        rate = 10.0
        duration = "4s"
        warmup = "1s"
        agents = 2
        "#,
    )
    .unwrap();
    scenario.validate().unwrap();
    let opts = run_options(&out);
    let logs = out.clone();
    let killer = tokio::spawn(async move {
        // Into the measured window, then SIGKILL one agent (this run's: its
        // stderr goes to agent1-sse.log in this run's directory).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let agent1 = logs.join("agent1-sse.log");
        loop {
            let agents = children_logging_into(&agent1);
            if agents.len() == 1 {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let pid = agents[0];
                let killed = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(killed.success());
                return pid;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "agents never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let outcome = tokio::time::timeout(Duration::from_secs(120), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    killer.await.unwrap();
    assert!(!outcome.passed());
    let why = outcome.failure().unwrap();
    assert!(why.contains("agent"), "{why}");
    let t = &outcome.run.transports[0];
    assert!(!t.verified && t.ended_early, "{t:?}");
    assert!(
        t.problems
            .iter()
            .any(|p| p.contains("fleet agent") && p.contains("exited")),
        "{:?}",
        t.problems
    );
    assert!(
        t.counts.missing > 0,
        "the dead agent's clients' events are missing"
    );
    // The live agent's 10 clients reported; the dead one's records died with it.
    assert_eq!(t.clients_connected, 10);
    assert_eq!(t.clients, 20);
}

#[test]
fn a_missing_redis_server_is_named_with_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let run = run_bounded(
        std::process::Command::new(pushbench())
            .args([
                "run",
                "--servers",
                "2",
                "--broker",
                "redis",
                "--clients",
                "4",
            ])
            .args(["--transports", "sse", "--duration", "1s"])
            .arg("--out")
            .arg(empty.path().join("out"))
            .env("PATH", empty.path())
            .env("PUSHBENCH_SERVER_BIN", server_bin()),
        Duration::from_secs(30),
    );
    assert!(!run.ok(), "{}", run.report());
    assert!(
        run.stderr.contains("redis-server") && run.stderr.contains("apt-get install redis-server"),
        "{}",
        run.report()
    );
}

#[test]
fn several_servers_need_a_broker_and_a_broker_refuses_what_it_cannot_do() {
    let with = |extra: &str| {
        let mut s = Scenario::from_toml(&format!("clients = 10\n{extra}")).unwrap();
        s.resolve_topics();
        s.validate().map_err(|e| format!("{e:#}"))
    };
    let err = with("servers = 3").unwrap_err();
    assert!(err.contains("broker = \"redis\""), "{err}");
    let err = with("servers = 2\nbroker = \"redis\"\nsenders = 2").unwrap_err();
    assert!(err.contains("chat"), "{err}");
    let err = with("agents = 2\nfaults = [{ at = \"1s\", kind = \"drop\", fraction = 0.5 }]")
        .unwrap_err();
    assert!(err.contains("faults"), "{err}");
    assert!(with("servers = 2\nbroker = \"redis\"\nagents = 3").is_ok());
    let err = with("agents = 65").unwrap_err();
    assert!(err.contains("between 0 and 64"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_run_loses_nothing_its_clients_resume_on_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("restart-one");
    let scenario = Scenario::from_toml(
        r#"
        name = "restart-one"
        transports = ["short-poll", "long-poll", "sse", "ws", "tcp"]
        clients = 30
        topics = 3
        rate = 20.0
        duration = "4s"
        warmup = "1s"
        poll_interval = "200ms"
        retry_ms = 200
        servers = 3
        broker = "redis"
        faults = [{ at = "1s", kind = "restart", pause = "1s" }]
        "#,
    )
    .unwrap();
    scenario.validate().unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(240),
        runner::run(&scenario, &run_options(&out)),
    )
    .await
    .expect("the run ends in bounded time")
    .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());
    for t in &outcome.run.transports {
        let name = t.transport;
        // 30 clients × 20 events/s × 4 s: all of them, once, in order,
        // though a third of the clients lost their server for a second.
        assert_eq!(t.counts.delivered, 2400, "{name}: {:?}", t.counts);
        assert_eq!((t.counts.missing, t.counts.duplicated), (0, 0), "{name}");
        let rec = &t.recovery;
        assert_eq!(
            rec.lost_outage, 0,
            "{name}: nothing went down with the server"
        );
        let fault = &rec.faults[0];
        assert!(fault.outage_us.is_some_and(|o| o >= 900_000), "{fault:?}");
        // Server 2's clients (i % 3 == 1): every one back, on another
        // server, before server 2 itself was.
        assert_eq!(fault.recovered, 10, "{name}: {fault:?}");
        let (back, outage) = (fault.all_back_us.unwrap(), fault.outage_us.unwrap());
        assert!(
            back < outage,
            "{name}: last back after {back} µs, the outage lasted {outage}"
        );
        let log = out.join(format!("server2-{name}.log"));
        assert!(log.is_file(), "the restarted server logs where it did");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_run_loses_what_was_published_meanwhile_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for broker in ["redis", "redis-pubsub"] {
        let out = dir.path().join(broker);
        let scenario = Scenario::from_toml(&format!(
            r#"
            name = "broker-restart"
            transports = ["sse", "ws"]
            clients = 20
            topics = 2
            rate = 20.0
            duration = "4s"
            warmup = "1s"
            retry_ms = 200
            servers = 2
            broker = "{broker}"
            faults = [{{ at = "1s", kind = "broker-restart", pause = "1s" }}]
            "#
        ))
        .unwrap();
        scenario.validate().unwrap();
        let outcome = tokio::time::timeout(
            Duration::from_secs(240),
            runner::run(&scenario, &run_options(&out)),
        )
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
        // Events published while Redis was down are lost to every server:
        // the fault's loss, reported apart, never a duplicate or disorder.
        assert!(outcome.passed(), "{broker}: {:?}", outcome.failure());
        for t in &outcome.run.transports {
            let (name, rec) = (t.transport, &t.recovery);
            let fault = &rec.faults[0];
            assert_eq!(fault.kind, "broker-restart");
            let outage = fault.outage_us.expect("the broker's outage");
            assert!(outage >= 1_000_000, "{fault:?}");
            // 20 clients × 20 events/s over the outage, give or take the
            // publisher's and readers' reconnects (200 ms each).
            let due = 20 * 20 * outage / 1_000_000;
            assert!(
                rec.lost_outage >= due * 8 / 10 && rec.lost_outage <= due + 20 * 20,
                "{broker} {name}: lost {} for {due} due in the outage",
                rec.lost_outage
            );
            assert_eq!(t.counts.missing, 0, "{broker} {name}: {:?}", t.counts);
            assert_eq!((t.counts.duplicated, t.counts.out_of_order), (0, 0));
            assert_eq!(t.counts.delivered + rec.lost_outage, t.counts.expected);
            assert!(out.join(format!("broker-{name}.restart1.log")).is_file());
        }
    }
}
