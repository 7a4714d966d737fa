//! The publish helper against the real server, and the source address every
//! transport binds (what lets a large fleet spread over 127.0.0.0/8), both
//! on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clients::{ClientConfig, Observer, Publisher, Subscriber};
use protocol::{Event, TransportKind, now_us};
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// Bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(3);

/// The real server with an idle generator (only published events exist);
/// returns its base URL.
async fn idle_server(stop: &CancellationToken) -> String {
    let mut config = servers::ServerConfig::default();
    config.hub.schedule = protocol::Schedule {
        start_epoch_us: now_us(),
        rate: 0.0,
        topics: 2,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(servers::serve(listener, config, stop.clone()));
    base
}

/// Keeps the events a subscriber receives, for the test to look at.
#[derive(Debug, Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Observer for Events {
    fn connected(&mut self, _connect_us: u64) {}
    fn event(&mut self, event: &Event, _received_at_us: u64) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[tokio::test]
async fn published_messages_get_ids_and_reach_a_subscriber() {
    let stop = CancellationToken::new();
    let base = idle_server(&stop).await;

    // A WebSocket subscriber on t1 at the live edge.
    let mut config = ClientConfig::new(TransportKind::Ws, base.clone());
    config.topic = "t1".into();
    let events = Events::default();
    let sub = tokio::spawn({
        let (mut observer, stop) = (events.clone(), stop.clone());
        async move { Subscriber::new(config)?.run(&mut observer, stop).await }
    });
    // Wait for the socket to be open before publishing (the subscriber
    // starts at the live edge).
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = reqwest::get(format!("{base}/stats")).await.unwrap();
        let stats: servers::StatsSnapshot =
            serde_json::from_slice(&stats.bytes().await.unwrap()).unwrap();
        if stats.open.ws == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the subscriber never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(clients::publish(&base, "t1", "one").await.unwrap(), 1);
    let publisher = Publisher::new(&ClientConfig::new(TransportKind::Sse, base.clone())).unwrap();
    assert_eq!(publisher.publish("t1", "two \"quoted\"").await.unwrap(), 2);
    assert_eq!(publisher.publish("t0", "elsewhere").await.unwrap(), 1);

    let deadline = Instant::now() + WAIT;
    while events.0.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "published events not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got: Vec<_> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.id, e.data.clone()))
        .collect();
    assert_eq!(
        got,
        [(1, "one".to_string()), (2, "two \"quoted\"".to_string())]
    );

    // The server's one-line reason comes back in the error.
    let err = clients::publish(&base, "t7", "x").await.unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("400") && err.contains("unknown topic"),
        "{err}"
    );
    assert!(clients::publish("ftp://nowhere", "t0", "x").await.is_err());

    stop.cancel();
    timeout(WAIT, sub).await.unwrap().unwrap().unwrap();
}

/// Every transport connects from `ClientConfig::local_addr`: a listener
/// that only accepts sees the chosen peer address. (The connections fail
/// right after, since it speaks no protocol; only the accept matters.)
#[tokio::test]
async fn every_transport_binds_the_configured_source_address() {
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
    for transport in TransportKind::ALL {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let mut config = ClientConfig::new(transport, format!("http://{addr}"));
        config.tcp_addr = Some(addr);
        config.local_addr = Some(source);
        config.connect_timeout = Duration::from_secs(1);
        let stop = CancellationToken::new();
        let sub = tokio::spawn({
            let stop = stop.clone();
            async move {
                Subscriber::new(config)?
                    .run(&mut Events::default(), stop)
                    .await
            }
        });
        let (_socket, peer) = timeout(WAIT, listener.accept())
            .await
            .unwrap_or_else(|_| panic!("{transport}: no connection"))
            .unwrap();
        assert_eq!(peer.ip(), source, "{transport}");
        stop.cancel();
        timeout(WAIT, sub).await.unwrap().unwrap().unwrap();
    }
}
