//! Subscribers with real clients' habits (WebSocket pings, reading pauses,
//! unexpected messages) against the real push-server on 127.0.0.1: each
//! habit happens, and every transport still gets every id once, in order.

use std::time::Duration;

use clients::{Behaviour, ClientConfig, HabitCounts, Observer, Subscriber};
use protocol::{Event, Schedule, TransportKind};
use servers::{HubConfig, ServerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
struct Ids {
    ids: Vec<u64>,
    errors: Vec<String>,
}

impl Observer for Ids {
    fn connected(&mut self, _: u64) {}
    fn event(&mut self, event: &Event, _: u64) {
        self.ids.push(event.id);
    }
    fn error(&mut self, message: &str) {
        self.errors.push(message.to_string());
    }
}

/// Runs one subscriber with `behaviour` for `run`, then stops it.
async fn run_with(
    transport: TransportKind,
    behaviour: Behaviour,
    run: Duration,
) -> (Ids, HabitCounts) {
    let listeners = servers::Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tcp: Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
    };
    let http = listeners.http.local_addr().unwrap();
    let tcp = listeners.tcp.as_ref().unwrap().local_addr().unwrap();
    let config = ServerConfig {
        hub: HubConfig {
            schedule: Schedule {
                start_epoch_us: protocol::now_us(),
                rate: 100.0,
                topics: 1,
            },
            payload_bytes: 16,
            history: 4096,
            event_type: None,
            groups: Vec::new(),
            fed: false,
        },
        ..ServerConfig::default()
    };
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(servers::serve(listeners, config, server_stop.clone()));
    let mut c = ClientConfig::new(transport, format!("http://{http}"));
    c.tcp_addr = Some(tcp);
    c.poll_interval = Duration::from_millis(50);
    c.behaviour = behaviour;
    let mut subscriber = Subscriber::new(c).unwrap();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let mut ids = Ids::default();
        subscriber.run(&mut ids, token).await.unwrap();
        (ids, subscriber.habit_counts())
    });
    tokio::time::sleep(run).await;
    stop.cancel();
    let out = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops within 2 s")
        .unwrap();
    server_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
    out
}

fn assert_contiguous(ids: &[u64], what: &str) {
    assert!(ids.len() > 10, "{what}: only {} events", ids.len());
    for w in ids.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{what}: {} then {}", w[0], w[1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_with_every_habit_gets_every_id_once_in_order() {
    let habits = Behaviour {
        ws_ping_interval: Some(Duration::from_millis(100)),
        pause_every: Some(Duration::from_millis(400)),
        pause_for: Duration::from_millis(150),
        junk_interval: Some(Duration::from_millis(250)),
        phase: 0.5,
    };
    for transport in TransportKind::ALL {
        let (ids, counts) = run_with(transport, habits.clone(), Duration::from_millis(1500)).await;
        let what = format!("{transport:?}");
        assert_contiguous(&ids.ids, &what);
        assert!(ids.errors.is_empty(), "{what}: {:?}", ids.errors);
        assert!(counts.pauses >= 2, "{what}: {counts:?}");
        assert_eq!(counts.paused_us, counts.pauses * 150_000, "{what}");
        if transport == TransportKind::Ws {
            assert!(counts.pings >= 8, "{what}: {counts:?}");
            assert!(counts.junk >= 4, "{what}: {counts:?}");
            assert!(
                counts.error_replies + 1 >= counts.junk,
                "{what}: every unexpected message is answered: {counts:?}"
            );
        } else {
            assert_eq!((counts.pings, counts.junk), (0, 0), "{what}: cannot send");
        }
    }
}
