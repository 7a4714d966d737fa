//! The servers against clients that behave like real ones, not like the
//! fleet's polite client: WebSocket clients that ping every few hundred
//! milliseconds (PyPI `websockets` pings every 20 s by default, npm `ws`
//! whenever the page calls `ping()`), clients that stop reading for a while
//! (a backgrounded tab, a phone changing cells), and clients that send
//! frames the server does not expect. Each must still get every id once, in
//! order, in both fan-out modes: nothing a client sends may move, reset or
//! replay its delivery cursor.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use protocol::sse::SseParser;
use protocol::{Event, Fanout, Schedule};
use servers::{HubConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

mod common;

/// Events per second on the topic: fast enough that direct writes are
/// always in flight when a client speaks.
const RATE: f64 = 200.0;
/// Bound on any single wait.
const WAIT: Duration = Duration::from_secs(5);

fn config(fanout: Fanout) -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            schedule: Schedule {
                start_epoch_us: protocol::now_us(),
                rate: RATE,
                topics: 1,
            },
            payload_bytes: 16,
            history: 4096,
            event_type: None,
            groups: Vec::new(),
            fed: false,
        },
        fanout,
        ..ServerConfig::default()
    }
}

/// Asserts `ids` are `first, first + 1, …` with no gap, duplicate or reorder.
fn assert_contiguous(ids: &[u64], what: &str) {
    assert!(!ids.is_empty(), "{what}: no events");
    for pair in ids.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{what}: id {} followed by {} (of {} received)",
            pair[0],
            pair[1],
            ids.len()
        );
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn ws_connect(server: &common::InProcess) -> Ws {
    let url = format!("ws://{}/ws?topic=t0", server.addr);
    timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake within the bound")
        .expect("handshake succeeds")
        .0
}

/// Reads `n` events from `ws`, sending what `speak` returns every `every`
/// (a Ping, a stray text, …) and pausing reading for `pause` once every
/// `pause_every` events (`pause` zero: never). Non-event text messages
/// (error replies) are collected separately.
async fn ws_read_while_speaking(
    ws: &mut Ws,
    n: usize,
    every: Duration,
    speak: impl Fn(u64) -> Message,
    pause: Duration,
) -> (Vec<u64>, Vec<String>) {
    let mut ids = Vec::new();
    let mut other = Vec::new();
    let mut tick = tokio::time::interval(every);
    // After a pause, go on speaking at the same pace (no burst of ticks).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut spoken = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids.len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} events in 30 s",
            ids.len()
        );
        tokio::select! {
            _ = tick.tick() => {
                spoken += 1;
                ws.send(speak(spoken)).await.expect("send");
                if !pause.is_zero() && spoken % 3 == 0 {
                    // Stop reading for a while: the server's writes back up.
                    tokio::time::sleep(pause).await;
                }
            }
            msg = timeout(WAIT, ws.next()) => match msg.expect("a frame within the bound") {
                Some(Ok(Message::Text(t))) => match Event::from_json(&t) {
                    Ok(e) => ids.push(e.id),
                    Err(_) => other.push(t.to_string()),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("unexpected read {other:?}"),
            },
        }
    }
    (ids, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_clients_that_ping_get_every_id_once_in_order_in_both_fanout_modes() {
    for fanout in [Fanout::Direct, Fanout::Tasks] {
        let server = common::InProcess::start(config(fanout), false).await;
        let mut ws = ws_connect(&server).await;
        // A ping every 40 ms while 200 events/s arrive: 2 s, 50 pings.
        let (ids, other) = ws_read_while_speaking(
            &mut ws,
            400,
            Duration::from_millis(40),
            |i| Message::Ping(i.to_be_bytes().to_vec().into()),
            Duration::ZERO,
        )
        .await;
        assert_contiguous(&ids, &format!("pinging client, {fanout:?}"));
        assert!(other.is_empty(), "{other:?}");
        server.stop(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_clients_that_ping_and_pause_reading_get_every_id_once_in_order() {
    for fanout in [Fanout::Direct, Fanout::Tasks] {
        let server = common::InProcess::start(config(fanout), false).await;
        let mut ws = ws_connect(&server).await;
        // Pongs, a stray pong and pauses of 150 ms (30 events back up).
        let (ids, _) = ws_read_while_speaking(
            &mut ws,
            400,
            Duration::from_millis(50),
            |i| {
                if i % 2 == 0 {
                    Message::Pong(Vec::new().into())
                } else {
                    Message::Ping(Vec::new().into())
                }
            },
            Duration::from_millis(150),
        )
        .await;
        assert_contiguous(&ids, &format!("pausing client, {fanout:?}"));
        server.stop(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_stray_messages_get_an_error_reply_and_keep_the_subscription() {
    for fanout in [Fanout::Direct, Fanout::Tasks] {
        let server = common::InProcess::start(config(fanout), false).await;
        let mut ws = ws_connect(&server).await;
        // A greeting, a bare JSON value, JSON without "data", and binary.
        let stray = [
            Message::Text("hello".into()),
            Message::Text("42".into()),
            Message::Text(r#"{"type":"hello"}"#.into()),
            Message::Binary(vec![0, 1, 2].into()),
        ];
        let (ids, errors) = ws_read_while_speaking(
            &mut ws,
            300,
            Duration::from_millis(60),
            |i| stray[(i as usize - 1) % stray.len()].clone(),
            Duration::ZERO,
        )
        .await;
        assert_contiguous(&ids, &format!("client sending stray frames, {fanout:?}"));
        assert!(
            errors.len() >= 4,
            "every stray message is answered: {errors:?}"
        );
        for e in &errors {
            let v: serde_json::Value = serde_json::from_str(e).expect("error replies are JSON");
            assert!(
                v["error"].as_str().is_some_and(|s| !s.is_empty()),
                "an error reply names its reason: {e}"
            );
            assert!(v.get("id").is_none(), "an error reply is not an event: {e}");
        }
        server.stop(WAIT).await;
    }
}

#[tokio::test]
async fn ws_protocol_violations_still_close_with_their_rfc_6455_codes() {
    let server = common::InProcess::start(config(Fanout::Direct), false).await;
    // Invalid UTF-8 in a text frame: 1007. A raw frame, masked with a zero key.
    for (frame, code) in [
        (vec![0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe], CloseCode::Invalid),
        // A reserved opcode (0x3): 1002.
        (vec![0x83, 0x80, 0, 0, 0, 0], CloseCode::Protocol),
    ] {
        let mut ws = ws_connect(&server).await;
        let stream = ws.get_mut();
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = stream else {
            panic!("plain TCP")
        };
        tcp.write_all(&frame).await.unwrap();
        let closed = timeout(WAIT, async {
            while let Some(msg) = ws.next().await {
                if let Ok(Message::Close(frame)) = msg {
                    return frame.map(|f| f.code);
                }
                if msg.is_err() {
                    return None;
                }
            }
            None
        })
        .await
        .expect("closed within the bound");
        assert_eq!(closed, Some(code));
    }
    // Too big: 1009 (the default cap is 64 KiB).
    let mut ws = ws_connect(&server).await;
    ws.send(Message::Text("x".repeat(128 * 1024).into()))
        .await
        .unwrap();
    let closed = timeout(WAIT, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Close(frame) = msg {
                return frame.map(|f| f.code);
            }
        }
        None
    })
    .await
    .expect("closed within the bound");
    assert_eq!(closed, Some(CloseCode::Size));
    server.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_clients_that_pause_reading_get_every_id_once_in_order() {
    for fanout in [Fanout::Direct, Fanout::Tasks] {
        let server = common::InProcess::start(config(fanout), false).await;
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET /sse?topic=t0 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut parser = SseParser::new();
        let mut ids = Vec::new();
        let mut buf = vec![0u8; 4096];
        let mut head_done = false;
        let mut pending = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reads = 0u32;
        while ids.len() < 400 {
            assert!(Instant::now() < deadline, "{} of 400 events", ids.len());
            let n = timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "stream ended after {} events", ids.len());
            reads += 1;
            if reads % 20 == 0 {
                // Stop reading for a while.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            pending.extend_from_slice(&buf[..n]);
            if !head_done {
                let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                pending.drain(..end + 4);
                head_done = true;
            }
            // Chunked framing: feed chunk bodies to the parser.
            while let Some(line_end) = pending.windows(2).position(|w| w == b"\r\n") {
                let size = std::str::from_utf8(&pending[..line_end]).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                if pending.len() < line_end + 2 + size + 2 {
                    break;
                }
                let body = pending[line_end + 2..line_end + 2 + size].to_vec();
                pending.drain(..line_end + 2 + size + 2);
                for ev in parser.feed(&body) {
                    ids.push(Event::from_json(&ev.data).unwrap().id);
                }
            }
        }
        assert_contiguous(&ids, &format!("pausing SSE reader, {fanout:?}"));
        server.stop(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_clients_that_pause_reading_get_every_id_once_in_order() {
    for fanout in [Fanout::Direct, Fanout::Tasks] {
        let server = common::InProcess::start(config(fanout), true).await;
        let mut tcp = TcpStream::connect(server.tcp()).await.unwrap();
        tcp.write_all(b"SUB t0 -\n").await.unwrap();
        let mut ids = Vec::new();
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 4096];
        let mut reads = 0u32;
        while ids.len() < 400 {
            let n = timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "stream ended after {} events", ids.len());
            reads += 1;
            if reads % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            pending.extend_from_slice(&buf[..n]);
            while pending.len() >= 4 {
                let len = u32::from_be_bytes(pending[..4].try_into().unwrap()) as usize;
                if pending.len() < 4 + len {
                    break;
                }
                if len > 0 {
                    let json = std::str::from_utf8(&pending[4..4 + len]).unwrap();
                    ids.push(Event::from_json(json).unwrap().id);
                }
                pending.drain(..4 + len);
            }
        }
        assert_contiguous(&ids, &format!("pausing raw-TCP reader, {fanout:?}"));
        server.stop(WAIT).await;
    }
}
