//! The upstream path against plain clients on 127.0.0.1: `POST /publish`
//! and WebSocket text messages append to the same log as the generator, so
//! every transport delivers a published event, ids stay contiguous while the
//! generator runs, and bad input gets a one-line 4xx (or the right close code).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::sse::SseParser;
use protocol::{Event, PollResponse, Schedule};
use servers::{HubConfig, ServerConfig, StatsSnapshot};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod common;

/// Bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(3);

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

struct Server(common::InProcess);

impl std::ops::Deref for Server {
    type Target = common::InProcess;
    fn deref(&self) -> &common::InProcess {
        &self.0
    }
}

impl Server {
    /// `rate` events/s on each of two topics (0: the generator is idle, so
    /// only published events exist and ids start at 1).
    async fn start(rate: f64) -> Self {
        let config = ServerConfig {
            hub: HubConfig {
                schedule: Schedule {
                    start_epoch_us: protocol::now_us(),
                    rate,
                    topics: 2,
                },
                payload_bytes: 8,
                history: 4096,
                event_type: None,
                groups: Vec::new(),
                fed: false,
            },
            ..ServerConfig::default()
        };
        Self(common::InProcess::start(config, false).await)
    }

    async fn ws(&self, path_and_query: &str) -> Ws {
        let url = format!("ws://{}{path_and_query}", self.addr);
        timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap()
            .0
    }

    /// Sends a raw publish request; returns the status and body.
    async fn post(&self, query: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
        let resp = http()
            .post(self.url(&format!("/publish?{query}")))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// Publishes `data` on `topic`; returns the id the server gave it.
    async fn publish(&self, topic: &str, data: &str) -> u64 {
        let body = serde_json::to_vec(&serde_json::json!({ "data": data })).unwrap();
        let (status, answer) = self
            .post(&format!("topic={topic}"), "application/json", body)
            .await;
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        answer["id"].as_u64().expect("{\"id\":N}")
    }

    async fn poll(&self, query: &str) -> PollResponse {
        let resp = http()
            .get(self.url(&format!("/poll?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    async fn stats(&self) -> StatsSnapshot {
        let resp = http().get(self.url("/stats")).send().await.unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    async fn stop(self) {
        self.0.stop(WAIT).await;
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Next text message as an event (skipping pings), `Err(code)` on Close.
async fn ws_event(ws: &mut Ws) -> Result<Event, Option<CloseCode>> {
    loop {
        match timeout(WAIT, ws.next())
            .await
            .expect("WS message within 3 s")
        {
            Some(Ok(Message::Text(t))) => return Ok(Event::from_json(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            other => panic!("unexpected WS read {other:?}"),
        }
    }
}

/// Next text message, as it is (skipping pings).
async fn ws_text(ws: &mut Ws) -> String {
    loop {
        match timeout(WAIT, ws.next())
            .await
            .expect("WS message within 3 s")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("unexpected WS read {other:?}"),
        }
    }
}

/// Next event of an SSE response.
async fn sse_event(resp: &mut reqwest::Response, parser: &mut SseParser) -> Event {
    loop {
        let chunk = timeout(WAIT, resp.chunk())
            .await
            .expect("SSE chunk within 3 s")
            .unwrap()
            .expect("stream still open");
        if let Some(e) = parser.feed(&chunk).into_iter().next() {
            let event = Event::from_json(&e.data).unwrap();
            assert_eq!(e.last_event_id, event.id.to_string());
            return event;
        }
    }
}

#[tokio::test]
async fn a_published_event_reaches_poll_sse_and_ws_subscribers() {
    let s = Server::start(0.0).await;
    let mut ws = s.ws("/ws?topic=t1").await;
    let mut sse = http().get(s.url("/sse?topic=t1")).send().await.unwrap();
    assert_eq!(sse.status(), 200);
    let mut parser = SseParser::new();
    // Both streams are at the live edge before the publish.
    assert_eq!(s.stats().await.open.sse, 1);

    let data = "hello \"world\"\nsecond line ✓";
    let before = protocol::now_us();
    let id = s.publish("t1", data).await;
    let after = protocol::now_us();
    assert_eq!(id, 1, "an idle generator: the first event of t1");

    let check = |e: &Event| {
        assert_eq!((e.id, e.topic.as_str(), e.data.as_str()), (1, "t1", data));
        // Stamped at receipt: between sending and reading the answer.
        assert!((before..=after).contains(&e.emitted_at_us), "{e:?}");
    };
    let polled = s.poll("topic=t1&after=0").await;
    assert_eq!(polled.next, 1);
    assert_eq!(polled.events.len(), 1);
    check(&polled.events[0]);
    check(&ws_event(&mut ws).await.unwrap());
    check(&sse_event(&mut sse, &mut parser).await);
    // The other topic is untouched.
    assert_eq!(s.poll("topic=t0&after=0").await.events, vec![]);

    let stats = s.stats().await;
    assert_eq!(stats.published, 1);
    assert_eq!(stats.requests.publish, 1);
    assert_eq!(stats.events_generated, 0);
    drop(sse);
    ws.close(None).await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn ids_stay_contiguous_while_the_generator_and_publishers_append() {
    // 200 events/s per topic, while two publishers append as fast as they can.
    let s = Server::start(200.0).await;
    let start = s.poll("topic=t0").await.next;
    let publisher = |tag: &'static str| {
        let s = &s;
        async move {
            let mut ids = Vec::new();
            for i in 0..40 {
                ids.push((
                    s.publish("t0", &format!("{tag}{i}")).await,
                    format!("{tag}{i}"),
                ));
            }
            ids
        }
    };
    let (a, b) = tokio::join!(publisher("a"), publisher("b"));
    // The generator keeps appending, so read once and check that answer
    // against its own `next` (a second poll could see a newer edge).
    let answer = s.poll(&format!("topic=t0&after={start}")).await;
    let events = answer.events;

    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (start + 1..=answer.next).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    for (id, data) in a.iter().chain(&b) {
        let e = &events[(id - start - 1) as usize];
        assert_eq!(&e.data, data, "event {id} is the one published");
    }
    let generated = events.iter().filter(|e| e.data == "x".repeat(8)).count();
    assert_eq!(generated + 80, events.len());
    assert!(generated > 0, "the generator ran meanwhile");
    assert_eq!(s.stats().await.published, 80);
    s.stop().await;
}

#[tokio::test]
async fn bad_publish_requests_get_one_line_client_errors() {
    let s = Server::start(0.0).await;
    let json = "application/json";
    let too_big = format!(
        "{{\"data\":\"{}\"}}",
        "y".repeat(servers::publish::MAX_BODY)
    );
    let cases: [(&str, &str, Vec<u8>, u16, &str); 8] = [
        ("topic=t0", json, b"not json".to_vec(), 400, "bad body"),
        (
            "topic=t0",
            json,
            br#"{"hello":1}"#.to_vec(),
            400,
            "bad body",
        ),
        ("topic=t0", json, br#"{"data":1}"#.to_vec(), 400, "bad body"),
        ("topic=t0", json, Vec::new(), 400, "bad body"),
        (
            "topic=t9",
            json,
            br#"{"data":"x"}"#.to_vec(),
            400,
            "unknown topic",
        ),
        (
            "after=-1",
            json,
            br#"{"data":"x"}"#.to_vec(),
            400,
            "bad query",
        ),
        (
            "topic=t0",
            "text/plain",
            br#"{"data":"x"}"#.to_vec(),
            415,
            "Content-Type",
        ),
        (
            "topic=t0",
            json,
            too_big.into_bytes(),
            413,
            "body too large",
        ),
    ];
    for (query, content_type, body, status, reason) in cases {
        let (got, answer) = s.post(query, content_type, body).await;
        assert_eq!(got, status, "{query} {content_type}: {answer}");
        assert!(answer.starts_with(reason), "{answer}");
        assert!(!answer.contains('\n'), "one line: {answer:?}");
    }
    // A GET is not a publish.
    let resp = http().get(s.url("/publish")).send().await.unwrap();
    assert_eq!(resp.status(), 405);

    let stats = s.stats().await;
    assert_eq!(stats.published, 0);
    assert_eq!(stats.requests.bad, 8);
    assert_eq!(s.poll("topic=t0&after=0").await.events, vec![]);
    s.stop().await;
}

#[tokio::test]
async fn a_ws_message_is_broadcast_to_the_topics_subscribers_and_bad_ones_get_an_error_reply() {
    let s = Server::start(0.0).await;
    let mut a = s.ws("/ws?topic=t0").await;
    let mut b = s.ws("/ws?topic=t0").await;
    let mut other = s.ws("/ws?topic=t1").await;

    a.send(Message::text(r#"{"data":"from a"}"#)).await.unwrap();
    for ws in [&mut b, &mut a] {
        let e = ws_event(ws).await.unwrap();
        assert_eq!(
            (e.id, e.topic.as_str(), e.data.as_str()),
            (1, "t0", "from a")
        );
    }
    // Published on the socket's topic only.
    assert_eq!(s.poll("topic=t1&after=0").await.events, vec![]);

    // A text message that is not `{"data":"…"}` is answered with an error
    // message, and its sender stays subscribed …
    a.send(Message::text("hello")).await.unwrap();
    let reply = ws_text(&mut a).await;
    assert!(
        reply.starts_with("{\"error\":\"bad body: expected"),
        "{reply}"
    );
    // … so is a binary one, and neither is published.
    other.send(Message::binary(&b"{}"[..])).await.unwrap();
    let reply = ws_text(&mut other).await;
    assert!(reply.starts_with("{\"error\":\"binary messages"), "{reply}");

    // b is unaffected and still receives what the HTTP path publishes.
    assert_eq!(s.publish("t0", "by post").await, 2);
    assert_eq!(ws_event(&mut b).await.unwrap().data, "by post");
    // The senders of stray messages still get what is published.
    assert_eq!(ws_event(&mut a).await.unwrap().data, "by post");
    let stats = s.stats().await;
    assert_eq!(stats.published, 2);
    assert_eq!(stats.ws_messages_in, 3);
    assert_eq!(stats.ws_messages_refused, 2);
    b.close(None).await.unwrap();
    s.stop().await;
}
