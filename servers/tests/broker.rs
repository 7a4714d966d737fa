//! Servers behind a broker (`--broker`): two push-servers share one event
//! stream through Redis Streams. A client that reconnects to the *other*
//! server resumes with no gap and no duplicate; a server started later has
//! the history; a server that cannot reach Redis says so at start; and
//! nothing but the publisher assigns ids (`POST /publish` is refused).
//!
//! Each test starts its own `redis-server` on a free port (Debian's
//! package; scripts/test.sh installs it) and fails, never skips, without it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use protocol::{Event, Schedule};
use servers::broker::{BrokerConfig, BrokerFanout};
use servers::{HubConfig, ServerConfig};

mod common;

const WAIT: Duration = Duration::from_secs(5);

/// A throwaway redis-server on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server; scripts/test.sh does)");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(schedule: Schedule, url: &str, publish: bool) -> ServerConfig {
    config_with(schedule, url, publish, BrokerFanout::Streams)
}

fn config_with(schedule: Schedule, url: &str, publish: bool, fanout: BrokerFanout) -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            schedule,
            payload_bytes: 16,
            history: 1000,
            ..HubConfig::default()
        },
        broker: Some(BrokerConfig {
            url: url.into(),
            publish,
            fanout,
        }),
        ..ServerConfig::default()
    }
}

fn schedule() -> Schedule {
    Schedule {
        start_epoch_us: protocol::now_us(),
        rate: 50.0,
        topics: 1,
    }
}

/// `GET /poll?after=N` until it holds `want` events, each checked against
/// the schedule.
async fn poll_until(s: &common::InProcess, after: u64, want: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut got: Vec<Event> = Vec::new();
    let mut cursor = after;
    while got.len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {want} events",
            got.len()
        );
        let text = reqwest::get(s.url(&format!("/poll?after={cursor}")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        for e in body["events"].as_array().unwrap() {
            let e: Event = serde_json::from_value(e.clone()).unwrap();
            cursor = e.id;
            got.push(e);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got
}

fn contiguous_from(events: &[Event], first: u64, s: &Schedule) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, first + i as u64, "ids not contiguous: {events:?}");
        assert_eq!(
            e.emitted_at_us,
            s.scheduled_at(0, e.id),
            "stamped as scheduled"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_the_other_server_with_no_gap_and_no_duplicate() {
    let redis = Redis::start();
    let s = schedule();
    let a = common::InProcess::start(config(s, &redis.url, true), false).await;
    let b = common::InProcess::start(config(s, &redis.url, false), false).await;
    // Ten events from A, then B from where A left off.
    let from_a = poll_until(&a, 0, 10).await;
    let first = from_a[0].id;
    contiguous_from(&from_a, first, &s);
    let last = from_a.last().unwrap().id;
    let from_b = poll_until(&b, last, 10).await;
    contiguous_from(&from_b, last + 1, &s);
    // And back: A has what B served.
    let again = poll_until(&a, from_b.last().unwrap().id, 5).await;
    contiguous_from(&again, from_b.last().unwrap().id + 1, &s);
    a.stop(WAIT).await;
    b.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pubsub_fanout_a_client_resumes_on_the_other_server_and_a_late_one_has_the_history() {
    let redis = Redis::start();
    let s = schedule();
    let pubsub = |publish| config_with(s, &redis.url, publish, BrokerFanout::Pubsub);
    let a = common::InProcess::start(pubsub(true), false).await;
    let b = common::InProcess::start(pubsub(false), false).await;
    let from_a = poll_until(&a, 0, 10).await;
    let first = from_a[0].id;
    contiguous_from(&from_a, first, &s);
    let last = from_a.last().unwrap().id;
    let from_b = poll_until(&b, last, 10).await;
    contiguous_from(&from_b, last + 1, &s);
    // A server started now fills its history from the streams, then
    // follows the channel.
    let late = common::InProcess::start(pubsub(false), false).await;
    let from_late = poll_until(&late, first - 1, 30).await;
    contiguous_from(&from_late, first, &s);
    for x in [a, b, late] {
        x.stop(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_later_has_the_history_from_the_stream() {
    let redis = Redis::start();
    let s = schedule();
    let a = common::InProcess::start(config(s, &redis.url, true), false).await;
    let early = poll_until(&a, 0, 20).await;
    let late = common::InProcess::start(config(s, &redis.url, false), false).await;
    // Everything A published before B existed, then what came since.
    let from_b = poll_until(&late, early[0].id - 1, 30).await;
    contiguous_from(&from_b, early[0].id, &s);
    a.stop(WAIT).await;
    late.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_publisher_assigns_ids_and_a_missing_broker_is_named() {
    let redis = Redis::start();
    let s = schedule();
    let b = common::InProcess::start(config(s, &redis.url, false), false).await;
    let r = reqwest::Client::new()
        .post(b.url("/publish"))
        .header("content-type", "application/json")
        .body(r#"{"data":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    assert!(r.text().await.unwrap().contains("--broker"));
    b.stop(WAIT).await;
    drop(redis);

    // Nothing listens there now.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", l.local_addr().unwrap());
    drop(l);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = servers::serve(
        listener,
        config(s, &url, true),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot reach the broker"),
        "{err:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resuming_on_a_server_whose_log_lags_waits_for_it_instead_of_getting_repeats() {
    // A server behind the broker whose log lags the schedule (here: no
    // publisher yet, so nothing arrives). A client that got ids up to `due`
    // from a faster server resumes here with them: it must not be clamped
    // back to this server's edge, which would send those ids again.
    let redis = Redis::start();
    let s = schedule();
    let lagging = common::InProcess::start(config(s, &redis.url, false), false).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let due = s
        .ids_in_window(0, s.start_epoch_us, protocol::now_us())
        .map(|(_, last)| last)
        .unwrap();
    let body: serde_json::Value = reqwest::get(lagging.url(&format!("/poll?after={due}")))
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert!(body["events"].as_array().unwrap().is_empty(), "{body}");
    assert_eq!(body["next"], due, "the cursor is kept: {body}");
    // Once the publisher runs, the lagging server's log passes `due` and
    // the client gets what follows it, each id once.
    let publisher = common::InProcess::start(config(s, &redis.url, true), false).await;
    let after = poll_until(&lagging, due, 5).await;
    contiguous_from(&after, due + 1, &s);
    // An id no schedule has reached yet (an earlier run's) is still clamped.
    let far = due + 1_000_000;
    let body: serde_json::Value = reqwest::get(lagging.url(&format!("/poll?after={far}")))
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert!(body["next"].as_u64().unwrap() < far, "{body}");
    publisher.stop(WAIT).await;
    lagging.stop(WAIT).await;
}
