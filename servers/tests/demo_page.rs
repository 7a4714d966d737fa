//! The demo page's server side: `/` is served only with `demo_page` on
//! (404 otherwise, as before), and a topic group's named event type goes on
//! its topics' SSE frames (the page's heartbeat listens for `status`, its
//! inbox for `message`), other topics keeping the server's.

use std::time::Duration;

use protocol::Schedule;
use protocol::schedule::TopicGroup;
use servers::{HubConfig, ServerConfig};

mod common;

const WAIT: Duration = Duration::from_secs(3);

fn config(demo_page: bool) -> ServerConfig {
    let group = |name: &str, rate: f64, event_type: Option<&str>| TopicGroup {
        name: name.into(),
        topics: 1,
        rate,
        event_type: event_type.map(str::to_string),
    };
    ServerConfig {
        hub: HubConfig {
            schedule: Schedule {
                start_epoch_us: protocol::now_us(),
                rate: 0.0,
                topics: 3,
            },
            groups: vec![
                group("live", 50.0, None),
                group("status", 50.0, Some("status")),
                group("inbox", 0.0, Some("message")),
            ],
            ..HubConfig::default()
        },
        demo_page,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn the_page_is_served_only_when_asked_for() {
    for on in [false, true] {
        let s = common::InProcess::start(config(on), false).await;
        let r = reqwest::get(s.url("/")).await.unwrap();
        if on {
            assert_eq!(r.status(), 200);
            let ty = r.headers()["content-type"].to_str().unwrap().to_string();
            assert!(ty.starts_with("text/html"), "{ty}");
            let body = r.text().await.unwrap();
            assert!(body.contains("four transports") && body.contains("new EventSource"));
        } else {
            assert_eq!(r.status(), 404);
        }
        s.stop(WAIT).await;
    }
}

/// The `event:` line of the first event frame of `/sse?topic=T`.
async fn first_event_type(s: &common::InProcess, topic: &str) -> Option<String> {
    let mut r = reqwest::get(s.url(&format!("/sse?topic={topic}")))
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !text.contains("\ndata: ") {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("an event within the bound")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("event: ").map(str::to_string))
}

#[tokio::test]
async fn a_group_s_event_type_goes_on_its_topics_frames_only() {
    let s = common::InProcess::start(config(false), false).await;
    assert_eq!(first_event_type(&s, "t0").await, None);
    assert_eq!(first_event_type(&s, "t1").await.as_deref(), Some("status"));
    // The idle inbox gets a published message, typed as its group says.
    let r = reqwest::Client::new()
        .post(s.url("/publish?topic=t2"))
        .header("content-type", "application/json")
        .body(r#"{"data":"hello"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut r = reqwest::get(s.url("/sse?topic=t2&after=0")).await.unwrap();
    let mut text = String::new();
    while !text.contains("\ndata: ") {
        let chunk = tokio::time::timeout(WAIT, r.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: message\n"), "{text}");
    assert!(text.contains("\"data\":\"hello\""), "{text}");
    s.stop(WAIT).await;
}
