//! A fresh server's first event, and a server killed and restarted with the
//! same epoch continuing the same ids.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use protocol::sse::SseParser;
use protocol::{Event, PollResponse, Schedule};
use servers::StatsSnapshot;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

#[tokio::test]
async fn resuming_from_before_a_fresh_servers_first_event_is_a_gap_not_slowness() {
    // A schedule running for an hour whose next slot is 0.8 s away: the log
    // is empty while the clients connect with cursors far in the past, as
    // after a server restart.
    let mut cfg = config(1.0, 16);
    cfg.hub.schedule.start_epoch_us = protocol::now_us() - 3_600_000_000 + 800_000;
    let s = Server::start(cfg).await;
    let sse = reqwest::Client::new()
        .get(s.url("/sse"))
        .header("Last-Event-ID", "5")
        .send()
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?after=5", s.addr))
        .await
        .unwrap();
    let mut tcp = raw(s.tcp(), "SUB t0 5\n").await;
    let mut sse = sse.bytes_stream();
    let mut parser = SseParser::new();
    let mut sse_ids = Vec::new();
    while sse_ids.len() < 2 {
        let chunk = timeout(WAIT, sse.next())
            .await
            .expect("SSE events")
            .unwrap()
            .unwrap();
        parser.feed_with(&chunk, |e| {
            sse_ids.push(Event::from_json(&e.data).unwrap().id)
        });
    }
    let mut ws_ids = Vec::new();
    while ws_ids.len() < 2 {
        if let Message::Text(t) = timeout(WAIT, ws.next())
            .await
            .expect("WS events")
            .unwrap()
            .unwrap()
        {
            ws_ids.push(Event::from_json(&t).unwrap().id);
        }
    }
    let mut buf = Vec::new();
    let tcp_id = loop {
        if let Some((body, _)) = protocol::encode::tcp_decode(&buf) {
            break Event::from_json(std::str::from_utf8(body).unwrap())
                .unwrap()
                .id;
        }
        timeout(WAIT, tcp.read_buf(&mut buf))
            .await
            .expect("TCP events")
            .unwrap();
    };
    assert!(tcp_id > 3000, "{tcp_id}");
    for ids in [&sse_ids, &ws_ids] {
        assert!(ids[0] > 3000 && ids[1] == ids[0] + 1, "{ids:?}");
    }
    let stats = s.stats().await;
    assert_eq!(stats.closed_slow, 0);
    assert_eq!((stats.open.sse, stats.open.ws, stats.open.tcp), (1, 1, 1));
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Kill and restart

/// Starts `push-server` with `args`; returns it and its base URL.
async fn spawn_server(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_push-server"))
        .args(["--listen", "127.0.0.1:0", "--log", "error"])
        .args(args)
        .env("PUSH_SERVER_ADMIN_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = timeout(WAIT, tokio::io::BufReader::new(stdout).lines().next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .expect("a ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    (
        child,
        format!("http://{}", ready["listening"].as_str().unwrap()),
    )
}

/// Every event of `base` after `after`, polling until at least `n` arrived.
async fn poll_events(base: &str, after: u64, n: usize) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut after = after;
    let deadline = Instant::now() + WAIT;
    while events.len() < n {
        assert!(Instant::now() < deadline, "only {} events", events.len());
        let resp = http()
            .get(format!("{base}/poll?after={after}"))
            .send()
            .await
            .unwrap();
        let answer: PollResponse = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        after = answer.next;
        events.extend(answer.events);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    events
}

#[tokio::test]
async fn a_server_killed_and_restarted_with_the_same_epoch_continues_the_same_ids() {
    // An epoch in the past: the servers join a schedule already running.
    let schedule = Schedule {
        start_epoch_us: protocol::now_us() - 3_600_000_000,
        rate: 100.0,
        topics: 1,
    };
    let epoch = schedule.start_epoch_us.to_string();
    let args = [
        "--rate",
        "100",
        "--start-epoch-us",
        epoch.as_str(),
        "--write-timeout",
        "2s",
    ];
    let (mut first, base) = spawn_server(&args).await;
    // The second, started while the first runs, generates the very same events.
    let (second, base2) = spawn_server(&args).await;
    let a = poll_events(&base, 0, 30).await;
    let b = poll_events(&base2, 0, 30).await;
    let common: Vec<(&Event, &Event)> = a
        .iter()
        .filter_map(|x| b.iter().find(|y| y.id == x.id).map(|y| (x, y)))
        .collect();
    assert!(
        common.len() >= 10,
        "the two servers overlap: {} common ids",
        common.len()
    );
    for (x, y) in common {
        assert_eq!(x, y, "same id, same event");
    }
    drop(second);

    // Kill the first abruptly, restart it, resume after its last id.
    first.start_kill().unwrap();
    timeout(WAIT, first.wait()).await.unwrap().unwrap();
    let last = a.last().unwrap().id;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (restarted, base3) = spawn_server(&args).await;
    let c = poll_events(&base3, last, 20).await;
    // The events scheduled while no server ran were never generated (the
    // client sees and counts that gap); from then on, the same schedule.
    assert!(
        c[0].id > last + 10,
        "ids continue past the outage: {} after {last}",
        c[0].id
    );
    for e in a.iter().chain(&b).chain(&c) {
        assert_eq!(
            e.emitted_at_us,
            schedule.scheduled_at(0, e.id),
            "id {}",
            e.id
        );
    }
    for w in c.windows(2) {
        assert_eq!(w[1].id, w[0].id + 1);
    }
    // The flags reached the server: write timeout and admin token (from the environment).
    let stats: StatsSnapshot = serde_json::from_slice(
        &http()
            .get(format!("{base3}/stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats.config.start_epoch_us, schedule.start_epoch_us);
    assert_eq!(stats.config.write_timeout_ms, 2000);
    assert!(stats.config.admin);
    let resp = http()
        .get(format!("{base3}/admin/connections"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(restarted);
}
