//! Workloads beyond the default at toy scale through the whole pipeline:
//! chat, a mixed run, clients with habits, an emulated link.

use std::time::Duration;

use crate::common::server_bin;
use harness::report;
use harness::results::{self};
use harness::runner::{self};
use harness::scenario::Scenario;
use protocol::TransportKind;
use tokio_util::sync::CancellationToken;

use crate::run::options;

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
