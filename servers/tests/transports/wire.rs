//! Bytes on the wire, cursors older than the history, keep-alives, named event
//! types, one-line 400s, /healthz and /stats, shutdown and stream max age.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use protocol::{Event, PollResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::*;

#[tokio::test]
async fn bytes_on_the_wire_are_counted_with_headers_and_handshakes() {
    // No events and a short keep-alive: every byte is known to the client.
    let mut cfg = config(0.0);
    cfg.keepalive = Duration::from_millis(100);
    let s = Server::start(cfg).await;
    let mut wire = Wire::default();
    wire.stats(s.addr).await;

    // HTTP: one poll; its head counts as well as its body, both ways.
    let before = wire.stats(s.addr).await;
    let out_before = wire.received; // includes the answer `before` did not count
    let poll = b"GET /poll?topic=t0&after=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let answer = wire.exchange(s.addr, poll).await;
    let poll_body = body(&answer);
    assert_eq!(poll_body, br#"{"events":[],"next":0}"#);
    assert!(
        answer.len() > poll_body.len() + 60,
        "a head came with the body"
    );
    let after = wire.stats(s.addr).await;
    assert!(after.bytes_in - before.bytes_in >= poll.len() as u64);
    assert!(after.bytes_out - out_before >= answer.len() as u64);

    // WebSocket: the upgrade handshake both ways, then a Close each way
    // (client frames are masked: 2 header bytes, 4 mask bytes, no payload).
    let handshake = b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    let close = [0x88, 0x80, 1, 2, 3, 4];
    let answer = wire
        .exchange(s.addr, &[&handshake[..], &close].concat())
        .await;
    assert!(answer.starts_with(b"HTTP/1.1 101"), "{answer:?}");
    let after_ws = wire.stats(s.addr).await;
    assert!(after_ws.bytes_in - after.bytes_in >= (handshake.len() + close.len()) as u64);

    // Raw TCP: a subscription that gets a keep-alive and leaves, and a refusal.
    let mut tcp = TcpStream::connect(s.tcp()).await.unwrap();
    tcp.write_all(b"SUB t0 -\n").await.unwrap();
    let mut keepalive = [9u8; 4];
    timeout(WAIT, tcp.read_exact(&mut keepalive))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keepalive, [0; 4]);
    tcp.shutdown().await.unwrap();
    let mut rest = Vec::new(); // a second keep-alive may have crossed our FIN
    timeout(WAIT, tcp.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    wire.sent += 9;
    wire.received += 4 + rest.len() as u64;
    let answer = wire.exchange(s.tcp(), b"SUB nope -\n").await;
    assert!(answer.starts_with(b"ERR unknown topic"), "{answer:?}");
    let last = wire.stats(s.addr).await;
    assert!(last.bytes_in - after_ws.bytes_in >= 9 + 11);
    assert_eq!(last.connections_accepted, 9);
    s.stop().await;
}

#[tokio::test]
async fn a_cursor_older_than_the_history_resumes_at_the_oldest_event() {
    let mut cfg = config(100.0);
    cfg.hub.history = 4;
    let s = Server::start(cfg).await;
    let latest = s.wait_for_id("t0", 10).await;
    let resp = s.poll("after=0").await;
    // The client sees the gap (ids 1.. are gone) and counts it.
    assert_eq!(resp.events.len(), 4);
    assert!(resp.events[0].id >= latest - 3);
    s.check_run(0, resp.events[0].id, &resp.events);
    // A cursor beyond the latest id is clamped to the live edge (see
    // tests/hostile.rs for every transport): nothing yet, and `next` says
    // where the log really is.
    let ahead = s.poll(&format!("after={}", latest + 1000)).await;
    assert!(ahead.events.is_empty());
    assert!(
        ahead.next >= latest && ahead.next < latest + 1000,
        "{}",
        ahead.next
    );
    s.stop().await;
}

#[tokio::test]
async fn idle_streams_get_keepalives_and_long_polls_time_out() {
    let mut cfg = config(0.0); // no events at all
    cfg.keepalive = Duration::from_millis(100);
    let s = Server::start(cfg).await;

    let mut sse = SseClient::open(s.url("/sse"), None).await;
    let started = Instant::now();
    while !sse.raw.ends_with(b": keep-alive\n\n") {
        sse.chunk().await.expect("stream open");
    }
    assert!(started.elapsed() >= Duration::from_millis(90));

    let mut ws = ws_connect(s.ws_url("/ws")).await;
    let msg = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(msg, Message::Ping(_)), "{msg:?}");

    // Raw TCP: an empty frame.
    let mut tcp = TcpClient::open(s.tcp(), "SUB t0 -\n").await;
    let started = Instant::now();
    let mut byte = [0u8; 1];
    while tcp.buf.len() < 4 {
        timeout(WAIT, tcp.stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        tcp.buf.push(byte[0]);
    }
    assert_eq!(tcp.buf, [0; 4]);
    assert!(started.elapsed() >= Duration::from_millis(90));

    let started = Instant::now();
    let resp = http()
        .get(s.url("/longpoll?after=0&timeout_ms=200"))
        .send()
        .await
        .unwrap();
    let body: PollResponse = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let held = started.elapsed();
    assert!(body.events.is_empty());
    assert_eq!(body.next, 0);
    assert!(
        held >= Duration::from_millis(190) && held < Duration::from_secs(2),
        "{held:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_named_event_type_goes_on_every_sse_frame() {
    let mut cfg = config(50.0);
    cfg.hub.event_type = Some("status".into());
    let s = Server::start(cfg).await;
    let mut sse = SseClient::open(s.url("/sse"), None).await;
    let e = sse.event().await.unwrap();
    assert_eq!(e.event_type, "status");
    assert!(Event::from_json(&e.data).is_ok());
    s.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_one_line_400() {
    let s = Server::fast().await;
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "/poll?after=abc",
            None,
            "bad query: after must be a non-negative integer",
        ),
        ("/poll?topic=zzz", None, "unknown topic"),
        ("/poll?topic=t2", None, "unknown topic"),
        ("/poll?after=-1", None, "bad query: after"),
        ("/longpoll?timeout_ms=-1", None, "bad query: timeout_ms"),
        ("/longpoll?after=1.5", None, "bad query: after"),
        ("/longpoll?topic=zzz", None, "unknown topic"),
        ("/sse?after=abc", None, "bad query: after"),
        ("/sse?topic=zzz", None, "unknown topic"),
        ("/sse", Some("abc"), "bad header: Last-Event-ID"),
        ("/poll?after=1&after=2", None, "bad query:"),
    ];
    for &(path, last_event_id, reason) in cases {
        let mut req = http().get(s.url(path));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let body = resp.text().await.unwrap();
        assert!(body.starts_with(reason), "{path}: {body:?}");
        assert!(!body.trim_end().contains('\n'), "{path}: {body:?}");
    }
    for path in ["/ws?after=abc", "/ws?topic=zzz"] {
        match tokio_tungstenite::connect_async(s.ws_url(path)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 400, "{path}");
                let body = String::from_utf8(resp.body().clone().unwrap_or_default()).unwrap();
                assert!(body.starts_with("bad query") || body.starts_with("unknown topic"));
            }
            other => panic!("{path}: expected a 400, got {other:?}"),
        }
    }
    let stats = s.stats().await;
    assert_eq!(stats.requests.bad, cases.len() as u64 + 2);
    s.stop().await;
}

#[tokio::test]
async fn healthz_stats_and_unknown_routes() {
    let s = Server::fast().await;
    let resp = http().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(
        http().get(s.url("/nope")).send().await.unwrap().status(),
        404
    );
    // Some traffic on every transport, then the counters.
    s.wait_for_id("t0", 2).await;
    let mut sse = SseClient::open(s.url("/sse"), None).await;
    sse.events(1).await;
    let mut ws = ws_connect(s.ws_url("/ws")).await;
    ws_events(&mut ws, 1).await;
    let mut tcp = TcpClient::open(s.tcp(), "SUB t0 -\n").await;
    tcp.events(1).await;
    let stats = s.stats().await;
    assert_eq!(stats.open.sse, 1);
    assert_eq!(stats.open.ws, 1);
    assert_eq!(stats.open.tcp, 1);
    assert_eq!(stats.requests.tcp, 1);
    assert!(stats.requests.poll >= 1);
    assert_eq!(stats.requests.sse, 1);
    assert_eq!(stats.requests.ws, 1);
    assert!(stats.events_generated >= 2);
    assert!(stats.bytes_in > 0 && stats.bytes_out > 0, "{stats:?}");
    assert!(stats.connections_accepted >= 4);
    assert_eq!(stats.config.rate, 50.0);
    assert_eq!(stats.config.topics, 2);
    assert_eq!(stats.config.payload_bytes, PAYLOAD);
    assert_eq!(stats.config.history, 1024);
    assert_eq!(stats.config.start_epoch_us, s.schedule.start_epoch_us);
    let buffers = &stats.config.buffers;
    assert_eq!((buffers.ws_read, buffers.ws_write), (4096, 4096));
    assert_eq!(buffers.http_max_buf, 8192);
    assert!(buffers.tcp_write.contains("no user-space buffer"));
    drop(sse);
    drop(ws);
    drop(tcp);
    let deadline = Instant::now() + WAIT;
    while s.stats().await.open
        != (servers::stats::OpenCounts {
            sse: 0,
            ws: 0,
            longpoll: 0,
            tcp: 0,
        })
    {
        assert!(Instant::now() < deadline, "open gauges return to 0");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn shutdown_ends_streams_and_serve_returns() {
    let s = Server::fast().await;
    let mut sse = SseClient::open(s.url("/sse"), None).await;
    sse.events(1).await;
    let mut ws = ws_connect(s.ws_url("/ws")).await;
    ws_events(&mut ws, 1).await;
    let mut tcp = TcpClient::open(s.tcp(), "SUB t0 -\n").await;
    tcp.events(1).await;
    let longpoll = tokio::spawn(
        http()
            .get(s.url("/longpoll?after=999999&timeout_ms=60000"))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    s.shut_down();
    while sse.chunk().await.is_some() {}
    let close = loop {
        match ws_event(&mut ws).await {
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert_eq!(close, Some(CloseCode::Away));
    while tcp.event().await.is_some() {}
    let resp = timeout(WAIT, longpoll).await.unwrap().unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    s.stop().await; // serve returned, without an error, within WAIT
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
}

#[tokio::test]
async fn streams_end_at_max_age_and_resume_without_loss() {
    let mut cfg = config(50.0);
    cfg.stream_max_age = Some(Duration::from_millis(400));
    let s = Server::start(cfg).await;

    let opened = Instant::now();
    let mut sse = SseClient::open(s.url("/sse"), None).await;
    let mut seen = Vec::new();
    while let Some(e) = sse.event().await {
        seen.push(Event::from_json(&e.data).unwrap());
    }
    let age = opened.elapsed();
    assert!(
        age >= Duration::from_millis(380) && age < Duration::from_secs(2),
        "{age:?}"
    );
    assert!(seen.len() >= 5, "{seen:?}");
    let last = sse.parser.last_event_id().to_string();
    let mut resumed = SseClient::open(s.url("/sse"), Some(&last)).await;
    seen.extend(resumed.events(3).await);
    s.check_run(0, seen[0].id, &seen);

    let mut ws = ws_connect(s.ws_url("/ws")).await;
    let mut seen = Vec::new();
    let close = loop {
        match ws_event(&mut ws).await {
            Ok(e) => seen.push(e),
            Err(code) => break code,
        }
    };
    assert_eq!(close, Some(CloseCode::Away));
    let last = seen.last().unwrap().id;
    let mut ws = ws_connect(s.ws_url(&format!("/ws?after={last}"))).await;
    seen.extend(ws_events(&mut ws, 3).await);
    s.check_run(0, seen[0].id, &seen);

    let opened = Instant::now();
    let mut tcp = TcpClient::open(s.tcp(), "SUB t0 -\n").await;
    let mut seen = Vec::new();
    while let Some(e) = tcp.event().await {
        seen.push(e);
    }
    let age = opened.elapsed();
    assert!(
        age >= Duration::from_millis(380) && age < Duration::from_secs(2),
        "{age:?}"
    );
    let last = seen.last().unwrap().id;
    let mut tcp = TcpClient::open(s.tcp(), &format!("SUB t0 {last}\n")).await;
    seen.extend(tcp.events(3).await);
    s.check_run(0, seen[0].id, &seen);
    s.stop().await;
}
