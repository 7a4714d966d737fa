//! The reconnect policy against real sockets on 127.0.0.1: backoff timing
//! against a server that is not there, resuming without loss after the
//! real server drops connections (`POST /admin/drop`), and the outage
//! times reported to the observer, across a server that goes away and
//! comes back with the same schedule.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clients::{ClientConfig, Observer, Subscriber};
use protocol::{Event, Schedule, TransportKind, now_us};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token";
const MS: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------
// Test observer

#[derive(Debug, Default)]
struct Record {
    ids: Vec<u64>,
    connects: usize,
    disconnects: usize,
    attempts: usize,
    /// `disconnect_to_first_event_us` of every `reconnected` call.
    outages_us: Vec<u64>,
    /// When each error was reported, and what it said.
    errors: Vec<(Instant, String)>,
    /// Whether each `reconnected` came right before an event (as promised).
    reconnected_pending: bool,
}

#[derive(Debug, Clone, Default)]
struct Probe(Arc<Mutex<Record>>);

impl Probe {
    fn get<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.0.lock().unwrap())
    }

    /// Waits (bounded) until `done` holds; false on timeout.
    async fn wait_until(&self, limit: Duration, done: impl Fn(&Record) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.get(&done) {
                return true;
            }
            tokio::time::sleep(10 * MS).await;
        }
        self.get(&done)
    }
}

impl Observer for Probe {
    fn connected(&mut self, _connect_us: u64) {
        self.0.lock().unwrap().connects += 1;
    }
    fn event(&mut self, event: &Event, _received_at_us: u64) {
        let mut r = self.0.lock().unwrap();
        r.reconnected_pending = false;
        r.ids.push(event.id);
    }
    fn disconnected(&mut self) {
        self.0.lock().unwrap().disconnects += 1;
    }
    fn error(&mut self, message: &str) {
        let mut r = self.0.lock().unwrap();
        r.errors.push((Instant::now(), message.to_string()));
    }
    fn reconnect_attempt(&mut self) {
        self.0.lock().unwrap().attempts += 1;
    }
    fn reconnected(&mut self, disconnect_to_first_event_us: u64) {
        let mut r = self.0.lock().unwrap();
        assert!(!r.reconnected_pending, "reconnected twice without an event");
        r.reconnected_pending = true;
        r.outages_us.push(disconnect_to_first_event_us);
    }
}

struct Running {
    probe: Probe,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start(config: ClientConfig) -> Running {
    let probe = Probe::default();
    let stop = CancellationToken::new();
    let mut subscriber = Subscriber::new(config).expect("valid config");
    let (mut observer, token) = (probe.clone(), stop.clone());
    let task = tokio::spawn(async move { subscriber.run(&mut observer, token).await });
    Running { probe, stop, task }
}

impl Running {
    async fn stop(self) -> Probe {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), self.task)
            .await
            .expect("stops within 1 s")
            .unwrap()
            .unwrap();
        self.probe
    }
}

// ---------------------------------------------------------------------------
// The real server, with its admin routes on

#[derive(Debug, Clone, Copy)]
struct Ports {
    http: SocketAddr,
    tcp: SocketAddr,
}

struct Server {
    ports: Ports,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// A server on `ports` (`None`: free ones), 1 topic at `rate` from `epoch_us`.
    async fn start(ports: Option<Ports>, rate: f64, epoch_us: u64) -> Self {
        let bind = |addr: Option<SocketAddr>| async move {
            TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
                .await
                .unwrap()
        };
        let listeners = servers::Listeners {
            http: bind(ports.map(|p| p.http)).await,
            tcp: Some(bind(ports.map(|p| p.tcp)).await),
        };
        let ports = Ports {
            http: listeners.http.local_addr().unwrap(),
            tcp: listeners.tcp.as_ref().unwrap().local_addr().unwrap(),
        };
        let mut config = servers::ServerConfig {
            admin_token: Some(TOKEN.to_string()),
            // SSE's initial pause, as the other transports' backoff_initial below.
            retry_ms: 100,
            ..servers::ServerConfig::default()
        };
        config.hub.schedule = Schedule {
            start_epoch_us: epoch_us,
            rate,
            topics: 1,
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(servers::serve(listeners, config, stop.clone()));
        Self { ports, stop, task }
    }

    /// `POST /admin/drop?{query}`: (dropped, open_before).
    async fn drop_fraction(&self, query: &str) -> (u64, u64) {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/admin/drop?{query}", self.ports.http))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let report: servers::conns::DropReport =
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        (report.dropped, report.open_before)
    }

    /// Every stream reset, then the listeners closed: as far as clients can
    /// tell, the process died.
    async fn kill(self) {
        self.drop_fraction("fraction=1").await;
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

fn config(transport: TransportKind, ports: Ports) -> ClientConfig {
    let mut c = ClientConfig::new(transport, format!("http://{}", ports.http));
    c.tcp_addr = Some(ports.tcp);
    c.poll_interval = 50 * MS;
    c.connect_timeout = Duration::from_secs(2);
    c.backoff_initial = 100 * MS;
    c.backoff_max = Duration::from_secs(1);
    c
}

fn assert_contiguous(what: &str, ids: &[u64]) {
    for pair in ids.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{what}: lost, duplicated or reordered: {ids:?}"
        );
    }
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn pauses_double_from_backoff_initial_up_to_backoff_max() {
    // A port that was just free: every attempt is refused at once, so the
    // time between two errors is the pause between them.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let ports = Ports {
        http: addr,
        tcp: addr,
    };
    let expected = [50, 100, 200, 400, 400];
    let running: Vec<_> = [
        TransportKind::Sse,
        TransportKind::Ws,
        TransportKind::Tcp,
        TransportKind::LongPoll,
    ]
    .into_iter()
    .map(|t| {
        let mut c = config(t, ports);
        c.backoff_initial = 50 * MS;
        c.backoff_max = 400 * MS;
        c.backoff_jitter = 0.0;
        (t, start(c))
    })
    .collect();
    for (transport, run) in running {
        let enough = run
            .probe
            .wait_until(Duration::from_secs(4), |r| r.errors.len() > expected.len())
            .await;
        let probe = run.stop().await;
        probe.get(|r| {
            assert!(enough, "{transport}: {:?}", r.errors);
            let gaps: Vec<Duration> = r.errors.windows(2).map(|w| w[1].0 - w[0].0).collect();
            for (gap, want) in gaps.iter().zip(expected) {
                let want = want * MS;
                // Never early; late by at most what two busy cores add.
                assert!(
                    *gap >= want && *gap < want + 150 * MS,
                    "{transport}: gaps {gaps:?}, expected {expected:?} ms"
                );
            }
            // One attempt before each session but the first; never connected.
            assert!(
                r.attempts == r.errors.len() || r.attempts + 1 == r.errors.len(),
                "{transport}: {} attempts, {} errors",
                r.attempts,
                r.errors.len()
            );
            assert_eq!((r.connects, r.disconnects, r.outages_us.len()), (0, 0, 0));
        });
    }
}

#[tokio::test]
async fn half_of_ten_sse_subscribers_dropped_resume_without_loss() {
    let server = Server::start(None, 50.0, now_us()).await;
    let running: Vec<Running> = (0..10)
        .map(|_| start(config(TransportKind::Sse, server.ports)))
        .collect();
    for run in &running {
        assert!(
            run.probe
                .wait_until(Duration::from_secs(3), |r| r.ids.len() >= 5)
                .await
        );
    }
    let dropped_at = now_us();
    assert_eq!(
        server.drop_fraction("fraction=0.5&transport=sse").await,
        (5, 10)
    );
    // The dropped ones notice, come back (retry: 100 ms ± 50 %) and carry on.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (lost, back) = running.iter().fold((0, 0), |(lost, back), run| {
            run.probe
                .get(|r| (lost + r.disconnects, back + r.outages_us.len()))
        });
        if (lost, back) == (5, 5) {
            break;
        }
        assert!(Instant::now() < deadline, "{lost} lost, {back} back");
        tokio::time::sleep(10 * MS).await;
    }
    tokio::time::sleep(200 * MS).await;
    let mut dropped = 0;
    for run in running {
        let probe = run.stop().await;
        probe.get(|r| {
            assert_contiguous("sse", &r.ids);
            assert!(r.ids.len() >= 10, "{} events", r.ids.len());
            match r.disconnects {
                0 => assert_eq!((r.attempts, r.outages_us.len(), r.connects), (0, 0, 1)),
                1 => {
                    dropped += 1;
                    assert_eq!(
                        (r.attempts, r.connects, r.outages_us.len()),
                        (1, 2, 1),
                        "{r:?}"
                    );
                    // At least the pause (retry 100 ms − 50 %), and not absurdly more.
                    let outage = r.outages_us[0];
                    assert!((50_000..1_000_000).contains(&outage), "outage {outage} µs");
                    assert!(outage <= now_us() - dropped_at);
                    assert_eq!(r.errors.len(), 1, "the reset is reported: {:?}", r.errors);
                }
                n => panic!("{n} disconnects"),
            }
        });
    }
    assert_eq!(dropped, 5);
    server.kill().await;
}

#[tokio::test]
async fn every_streaming_transport_resumes_after_a_drop_and_times_the_outage() {
    // 10 events/s: a long poll is held about 100 ms at a time, so a drop finds it held.
    let server = Server::start(None, 10.0, now_us()).await;
    let kinds = [
        TransportKind::Ws,
        TransportKind::Tcp,
        TransportKind::LongPoll,
    ];
    let running: Vec<_> = kinds
        .into_iter()
        .map(|t| (t, start(config(t, server.ports))))
        .collect();
    for (_, run) in &running {
        assert!(
            run.probe
                .wait_until(Duration::from_secs(3), |r| r.ids.len() >= 3)
                .await
        );
    }
    for (transport, run) in &running {
        let name = match transport {
            TransportKind::LongPoll => "longpoll",
            t => t.as_str(),
        };
        // A long poll is between two requests for a few µs now and then: try again then.
        let mut tries = 0;
        while server
            .drop_fraction(&format!("fraction=1&transport={name}"))
            .await
            .0
            != 1
        {
            tries += 1;
            assert!(tries < 20, "{transport} never found open");
            tokio::time::sleep(5 * MS).await;
        }
        let back = run
            .probe
            .wait_until(Duration::from_secs(3), |r| {
                r.outages_us.len() == 1 && !r.reconnected_pending
            })
            .await;
        assert!(
            back,
            "{transport}: {:?}",
            run.probe.get(|r| format!("{r:?}"))
        );
    }
    for (transport, run) in running {
        let probe = run.stop().await;
        probe.get(|r| {
            assert_contiguous(transport.as_str(), &r.ids);
            assert_eq!((r.disconnects, r.attempts), (1, 1), "{transport}: {r:?}");
            // The pause (100 ms ± 50 %), reconnecting, and up to one event interval.
            let outage = r.outages_us[0];
            assert!(
                (50_000..1_000_000).contains(&outage),
                "{transport}: outage {outage} µs"
            );
        });
    }
    server.kill().await;
}

#[tokio::test]
async fn a_server_that_dies_and_returns_is_waited_for_with_growing_pauses() {
    let epoch = now_us();
    let server = Server::start(None, 20.0, epoch).await;
    let ports = server.ports;
    let running: Vec<_> = TransportKind::ALL
        .into_iter()
        .map(|t| (t, start(config(t, ports))))
        .collect();
    for (_, run) in &running {
        assert!(
            run.probe
                .wait_until(Duration::from_secs(3), |r| r.ids.len() >= 3)
                .await
        );
    }
    let killing_at = now_us();
    server.kill().await;
    let killed_at = now_us();
    // Pauses of 100, 200, 400, 800, 1000 ms (± 50 %, at most 1 s): three
    // to five refused attempts while the server is away for 1.5 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restarted_at = now_us();
    let server = Server::start(Some(ports), 20.0, epoch).await;
    for (transport, run) in &running {
        let back = run
            .probe
            .wait_until(Duration::from_secs(3), |r| r.outages_us.len() == 1)
            .await;
        assert!(
            back,
            "{transport}: {:?}",
            run.probe.get(|r| format!("{r:?}"))
        );
    }
    // After events the backoff starts over: a second drop is short again
    // (without the reset the pause would be at least 500 ms).
    tokio::time::sleep(200 * MS).await;
    server.drop_fraction("fraction=1&transport=sse").await;
    server.drop_fraction("fraction=1&transport=ws").await;
    server.drop_fraction("fraction=1&transport=tcp").await;
    for (transport, run) in &running {
        if !transport.is_polling() {
            let back = run
                .probe
                .wait_until(Duration::from_secs(3), |r| r.outages_us.len() == 2)
                .await;
            assert!(
                back,
                "{transport}: {:?}",
                run.probe.get(|r| format!("{r:?}"))
            );
        }
    }
    for (transport, run) in running {
        let probe = run.stop().await;
        probe.get(|r| {
            let first = r.outages_us[0];
            // From noticing the death (short polling: at its next poll) to an
            // event of the new server: the time away, give or take the
            // detection and the last pause.
            let away_min = restarted_at - killed_at - 100_000;
            let away_max = restarted_at - killing_at + 1_500_000;
            assert!(
                (away_min..away_max).contains(&first),
                "{transport}: outage {first} µs, not within {away_min}..{away_max}"
            );
            let refusals: Vec<Instant> = r
                .errors
                .iter()
                .filter(|(_, e)| e.to_lowercase().contains("refused"))
                .map(|(t, _)| *t)
                .collect();
            assert!(
                (3..=6).contains(&refusals.len()),
                "{transport}: {} refusals: {:?}",
                refusals.len(),
                r.errors
            );
            // The pauses grew. Jitter spans a factor of 3 and doubling a
            // factor of 2, so compare pauses two apart.
            let gaps: Vec<Duration> = refusals.windows(2).map(|w| w[1] - w[0]).collect();
            if transport != TransportKind::ShortPoll {
                for w in gaps.windows(3) {
                    assert!(w[2] > w[0], "{transport}: pauses did not grow: {gaps:?}");
                }
            }
            // Every session but the first is an attempt: each refused one,
            // the one that got back, and (streams) the one after the second
            // drop. Short polling noticed the death by a refusal itself.
            let attempts = match transport {
                TransportKind::ShortPoll => refusals.len(),
                TransportKind::LongPoll => refusals.len() + 1,
                _ => refusals.len() + 2,
            };
            assert_eq!(r.attempts, attempts, "{transport}: {:?}", r.errors);
            // Ids: contiguous before the death and after the return; the
            // events scheduled while no server ran were never generated.
            let cut = r.ids.windows(2).position(|w| w[1] != w[0] + 1);
            let cut = cut.expect("a gap where the server was away");
            assert_contiguous(transport.as_str(), &r.ids[..=cut]);
            assert_contiguous(transport.as_str(), &r.ids[cut + 1..]);
            assert!(
                r.ids[cut + 1] > r.ids[cut] + 20,
                "{transport}: 1.5 s at 20/s skipped"
            );
            if !transport.is_polling() {
                let second = r.outages_us[1];
                assert!(second < 400_000, "{transport}: second outage {second} µs");
            }
        });
    }
    server.kill().await;
}
