//! Every transport delivers the schedule's events in order from the live edge,
//! resumes exactly after a cursor, and the raw-TCP floor's frames and request
//! lines.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use protocol::PollResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

#[tokio::test]
async fn short_poll_delivers_every_event_from_the_live_edge() {
    let s = Server::fast().await;
    for (topic, name) in [(0, "t0"), (1, "t1")] {
        let first = s.poll(&format!("topic={name}")).await;
        assert!(first.events.is_empty(), "no cursor starts at the live edge");
        let mut next = first.next;
        let mut events = Vec::new();
        let deadline = Instant::now() + WAIT;
        while events.len() < 8 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(30)).await;
            let resp = s.poll(&format!("topic={name}&after={next}")).await;
            if let Some(last) = resp.events.last() {
                assert_eq!(resp.next, last.id);
            } else {
                assert_eq!(resp.next, next);
            }
            next = resp.next;
            events.extend(resp.events);
        }
        s.check_run(topic, first.next + 1, &events);
    }
    s.stop().await;
}

#[tokio::test]
async fn long_poll_delivers_every_event_and_holds_until_one_exists() {
    let s = Server::fast().await;
    let mut next = s.poll("").await.next;
    let start = next + 1;
    let mut events = Vec::new();
    while events.len() < 8 {
        let resp = http()
            .get(s.url(&format!("/longpoll?after={next}&timeout_ms=2000")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body: PollResponse = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        // At 50/s an event always comes well within the 2 s hold.
        assert!(!body.events.is_empty());
        next = body.next;
        events.extend(body.events);
    }
    s.check_run(0, start, &events);
    s.stop().await;
}

#[tokio::test]
async fn sse_sends_headers_retry_then_every_event() {
    let s = Server::fast().await;
    let mut sse = SseClient::open(s.url("/sse?topic=t1"), None).await;
    let h = sse.resp.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    assert_eq!(h["access-control-allow-origin"], "*");
    let first = sse.chunk().await.unwrap();
    assert_eq!(&first[..], b"retry: 1000\n\n");
    assert_eq!(sse.parser.retry_ms(), Some(1000));
    let events = sse.events(10).await;
    let start = events[0].id;
    s.check_run(1, start, &events);
    s.stop().await;
}

#[tokio::test]
async fn ws_delivers_every_event_as_one_text_message() {
    let s = Server::fast().await;
    let mut ws = ws_connect(s.ws_url("/ws?topic=t0")).await;
    let events = ws_events(&mut ws, 10).await;
    s.check_run(0, events[0].id, &events);
    // Upstream messages are published (and counted) without disturbing the stream.
    ws.send(Message::text("{\"data\":\"hello\"}"))
        .await
        .unwrap();
    let more = ws_events(&mut ws, 2).await;
    assert_eq!(more[0].id, events[9].id + 1);
    ws.close(None).await.unwrap();
    assert_eq!(s.stats().await.ws_messages_in, 1);
    s.stop().await;
}

#[tokio::test]
async fn every_transport_resumes_exactly_after_k() {
    let s = Server::fast().await;
    let latest = s.wait_for_id("t0", 6).await;
    let k = latest - 3;

    let poll = s.poll(&format!("after={k}")).await;
    let ids: Vec<u64> = poll.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (k + 1..=poll.next).collect::<Vec<_>>());
    s.check_run(0, k + 1, &poll.events);

    let k_str = k.to_string();
    for (url, header) in [
        (s.url("/sse"), Some(k_str.as_str())),
        (s.url(&format!("/sse?after={k}")), None),
        // The header wins over the query (it is what a browser sends on reconnect).
        (s.url("/sse?after=1"), Some(k_str.as_str())),
    ] {
        let mut sse = SseClient::open(url.clone(), header).await;
        let events = sse.events(5).await;
        assert_eq!(events[0].id, k + 1, "{url} {header:?}");
        s.check_run(0, k + 1, &events);
    }

    let mut ws = ws_connect(s.ws_url(&format!("/ws?after={k}"))).await;
    let events = ws_events(&mut ws, 5).await;
    s.check_run(0, k + 1, &events);

    let mut tcp = TcpClient::open(s.tcp(), &format!("SUB t0 {k}\n")).await;
    let events = tcp.events(5).await;
    s.check_run(0, k + 1, &events);
    s.stop().await;
}

#[tokio::test]
async fn tcp_delivers_every_event_as_one_frame() {
    let s = Server::fast().await;
    // `\r\n` is accepted too (a person typing into netcat or telnet).
    let mut tcp = TcpClient::open(s.tcp(), "SUB t1 -\r\n").await;
    let events = tcp.events(10).await;
    s.check_run(1, events[0].id, &events);
    let stats = s.stats().await;
    assert_eq!(stats.open.tcp, 1);
    assert_eq!(stats.requests.tcp, 1);
    drop(tcp);
    let deadline = Instant::now() + WAIT;
    while s.stats().await.open.tcp != 0 {
        assert!(Instant::now() < deadline, "a departed client is noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn a_tcp_client_far_behind_gets_its_backlog_in_order() {
    // 1000 events/s: after 300 ms the backlog is far more than one vectored
    // write carries (64 frames), so the catch-up spans several writes.
    let s = Server::start(config(1000.0)).await;
    let latest = s.wait_for_id("t0", 300).await;
    let mut tcp = TcpClient::open(s.tcp(), "SUB t0 0\n").await;
    let events = tcp.events(latest as usize).await;
    // From the first event the server generated (slots already past when it
    // started are absent), all of them, in order.
    assert!(events[0].id <= 2, "first id {}", events[0].id);
    s.check_run(0, events[0].id, &events);
    s.stop().await;
}

#[tokio::test]
async fn bad_tcp_request_lines_get_one_err_line_and_are_closed() {
    let s = Server::fast().await;
    let long = format!("SUB t0 {}\n", "1".repeat(300));
    let cases: &[(&[u8], &str)] = &[
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "ERR unexpected bytes after the request line",
        ),
        (b"GET / HTTP/1.1\n", "ERR expected `SUB <topic> <after|->`"),
        (b"SUB zzz -\n", "ERR unknown topic \"zzz\""),
        (b"SUB t2 -\n", "ERR unknown topic"),
        (
            b"SUB t0 abc\n",
            "ERR after must be `-` or a non-negative integer",
        ),
        (b"SUB t0 -1\n", "ERR after must be"),
        (b"SUB t0\n", "ERR expected `SUB"),
        (b"SUB t0 - \n", "ERR expected `SUB"),
        (b"SUB \xff -\n", "ERR request line is not UTF-8"),
        (long.as_bytes(), "ERR request line longer than 256 bytes"),
    ];
    for &(line, reason) in cases {
        let answer = exchange(s.tcp(), line).await;
        let answer = String::from_utf8(answer).unwrap();
        let line = String::from_utf8_lossy(line);
        assert!(answer.starts_with(reason), "{line:?}: {answer:?}");
        assert!(
            answer.ends_with('\n') && answer.matches('\n').count() == 1,
            "{answer:?}"
        );
    }
    let stats = s.stats().await;
    assert_eq!(stats.requests.bad, cases.len() as u64);
    assert_eq!(stats.requests.tcp, cases.len() as u64);
    assert_eq!(stats.open.tcp, 0);
    s.stop().await;
}

#[tokio::test]
async fn a_silent_tcp_client_is_refused_after_the_request_timeout() {
    // Paused time: the 5 s bound passes at once, and nothing else waits on
    // wall time (rate 0, no generator events).
    tokio::time::pause();
    let s = Server::start(config(0.0)).await;
    let mut stream = TcpStream::connect(s.tcp()).await.unwrap();
    stream.write_all(b"SUB t0").await.unwrap(); // no newline, ever
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "ERR no request line within 5s\n");
    s.stop().await;
}
