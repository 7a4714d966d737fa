//! The client fleet: one tokio task per simulated client, each with its own
//! connection and its own [`Recorder`].
//!
//! Clients start on a schedule (`connect_rate` new connections per second)
//! rather than all at once, so the ramp-up measures connection set-up, not a
//! SYN flood. Each task owns its recorder outright and hands it back when it
//! ends, so nothing is shared on the hot path but the [`Window`] atomics.
//!
//! In a chat scenario clients `0 … senders-1` also send (see
//! [`clients::chat`]): a WebSocket client on its own socket, any other
//! beside its subscription with `POST /publish` over a connection of its own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use clients::chat::{ChatConfig, Outbox, SendWindow};
use clients::{ClientConfig, Observer as _, Publisher, Subscriber};
use protocol::TransportKind;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::recorder::{Presence, Recorder};

pub mod parts;
use crate::scenario::Scenario;

/// Bound on the fleet stopping after it is cancelled.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The per-client configs of a fleet of `scenario.clients` against
/// `base_url` (and `tcp_addr`, the raw-TCP floor's port, if served).
///
/// Client `i` subscribes to topic `t{i % topics}`; short-polling clients'
/// schedules are offset by `i * poll_interval / clients`, so their requests
/// are spread evenly over an interval instead of arriving together. Against
/// a loopback server, client `i` connects from [`source_addr`]`(i)`.
///
/// Chat: client `i < senders` sends as sender `i`, when `send_window`
/// says, its schedule offset by `i / senders` of an interval.
pub fn client_configs(
    transport: TransportKind,
    base_url: &str,
    tcp_addr: Option<SocketAddr>,
    scenario: &Scenario,
    send_window: &SendWindow,
) -> Vec<ClientConfig> {
    let n = scenario.clients.max(1);
    let interval = Duration::from_secs_f64(1.0 / scenario.send_rate.max(f64::MIN_POSITIVE));
    let spread = spreads_sources(base_url, tcp_addr);
    (0..scenario.clients)
        .map(|i| {
            let mut c = ClientConfig::new(transport, base_url);
            c.tcp_addr = tcp_addr;
            c.topic = protocol::schedule::topic_name(topic_of(i, scenario.topics));
            c.poll_interval = scenario.poll_interval;
            c.poll_phase = scenario.poll_interval.mul_f64(i as f64 / n as f64);
            c.longpoll_timeout = scenario.longpoll_timeout;
            c.connect_timeout = scenario.connect_timeout;
            c.backoff_initial = scenario.reconnect_delay;
            c.idle_timeout = scenario.idle_timeout;
            c.event_type.clone_from(&scenario.event_type);
            c.local_addr = spread.then(|| source_addr(i));
            c.behaviour = scenario.behaviour.for_client(i, n);
            c.chat = (i < scenario.senders).then(|| ChatConfig {
                sender: i as u32,
                interval,
                phase: interval.mul_f64(i as f64 / scenario.senders as f64),
                window: send_window.clone(),
            });
            c
        })
        .collect()
}

/// How many source addresses a loopback fleet spreads over: 127.0.1.1 to
/// 127.0.1.250.
///
/// Why: a TCP connection is told apart by (source address, source port,
/// destination address, destination port), and there are only 28,232
/// ephemeral ports (32768–60999) per source and destination pair. From one
/// source address a fleet runs out of ports after ~28k connections, fewer
/// with sockets of earlier runs still in TIME_WAIT. All of 127.0.0.0/8 is
/// local on Linux, so each of these addresses brings its own 28k ports:
/// 20 clients per address at 5,000 clients, ~7M ports in all. 127.0.1.x
/// keeps clear of 127.0.0.1, which other tools on the host use.
pub const SOURCE_ADDRS: u8 = 250;

/// The source address of client `i` of a loopback fleet, round-robin over
/// [`SOURCE_ADDRS`] addresses from 127.0.1.1.
pub fn source_addr(i: usize) -> IpAddr {
    let host = (i % usize::from(SOURCE_ADDRS)) as u8 + 1;
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, host))
}

/// Whether a fleet against `base_url` (and `tcp_addr`) can spread its
/// source addresses: only when every address it connects to is an IPv4
/// loopback literal. Another host cannot be reached from 127.x, nor an IPv6
/// one, and a name such as `localhost` may resolve to `::1`: those keep the
/// OS's choice.
fn spreads_sources(base_url: &str, tcp_addr: Option<SocketAddr>) -> bool {
    let host_is_v4_loopback = reqwest::Url::parse(base_url)
        .ok()
        .and_then(|url| url.host_str()?.parse::<Ipv4Addr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    let tcp_is_v4_loopback = tcp_addr.is_none_or(|a| a.is_ipv4() && a.ip().is_loopback());
    host_is_v4_loopback && tcp_is_v4_loopback
}

/// Moves the configs of one group of a mixed fleet to its place in the
/// whole: its topics start at the server's `first_topic` (a group's
/// `t{j}` becomes `t{first_topic + j}`), and its clients at `first_client`,
/// so source addresses keep spreading over the whole fleet.
pub fn place_group(configs: &mut [ClientConfig], first_topic: u32, first_client: usize) {
    for (j, c) in configs.iter_mut().enumerate() {
        if let Some(t) = protocol::schedule::topic_index(&c.topic) {
            c.topic = protocol::schedule::topic_name(first_topic + t);
        }
        if c.local_addr.is_some() {
            c.local_addr = Some(source_addr(first_client + j));
        }
    }
}

/// The topic index of client `i`.
pub fn topic_of(i: usize, topics: u32) -> u32 {
    (i % topics.max(1) as usize) as u32
}

/// A running fleet.
#[derive(Debug)]
pub struct Fleet {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<Recorder>>,
    presence: Arc<Presence>,
}

/// What a stopped fleet hands back.
#[derive(Debug)]
pub struct FleetOutcome {
    /// One entry per client, in order; `None` for a client whose task did
    /// not stop within the bound (it was aborted and its record is lost) or
    /// panicked.
    pub recorders: Vec<Option<Recorder>>,
    /// What went wrong while stopping, in words.
    pub problems: Vec<String>,
}

impl Fleet {
    /// Starts one task per client, each owning its recorder (built by the
    /// caller on `presence`, which counts connections for the timeline and
    /// the connect wait). Client `i` connects at `i / connect_rate` seconds
    /// from now.
    pub fn start(
        clients: Vec<(ClientConfig, Recorder)>,
        connect_rate: f64,
        presence: Arc<Presence>,
    ) -> Self {
        let cancel = CancellationToken::new();
        let t0 = tokio::time::Instant::now();
        let gap = if connect_rate.is_finite() && connect_rate > 0.0 {
            1.0 / connect_rate
        } else {
            0.0
        };
        let tasks = clients
            .into_iter()
            .enumerate()
            .map(|(i, (config, recorder))| {
                let at = t0 + Duration::from_secs_f64(i as f64 * gap);
                tokio::spawn(run_client(config, recorder, at, cancel.clone()))
            })
            .collect();
        Self {
            cancel,
            tasks,
            presence,
        }
    }

    /// Clients in the fleet.
    pub fn clients(&self) -> usize {
        self.tasks.len()
    }

    /// Clients that have connected at least once.
    pub fn connected(&self) -> usize {
        self.presence.ever()
    }

    /// Client tasks that have already ended (a subscriber that gave up).
    /// Walks every task: call it now and then, not per event.
    pub fn ended(&self) -> usize {
        self.tasks.iter().filter(|t| t.is_finished()).count()
    }

    /// Cancels every client and collects the recorders, waiting at most
    /// `bound` in all. A task still running then is aborted and reported.
    pub async fn stop(self, bound: Duration) -> FleetOutcome {
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + bound;
        let mut recorders = Vec::with_capacity(self.tasks.len());
        let (mut stuck, mut panicked) = (0usize, 0usize);
        let mut first_panic = None;
        for mut task in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(rec)) => recorders.push(Some(rec)),
                Ok(Err(e)) => {
                    panicked += 1;
                    first_panic.get_or_insert_with(|| e.to_string());
                    recorders.push(None);
                }
                Err(_) => {
                    task.abort();
                    stuck += 1;
                    recorders.push(None);
                }
            }
        }
        let mut problems = Vec::new();
        if stuck > 0 {
            problems.push(format!(
                "{stuck} clients did not stop within {} of being cancelled (aborted; their events count as missing)",
                crate::scenario::check::fmt_duration(bound)
            ));
        }
        if panicked > 0 {
            problems.push(format!(
                "{panicked} client tasks failed ({}); their events count as missing",
                first_panic.unwrap_or_default()
            ));
        }
        FleetOutcome {
            recorders,
            problems,
        }
    }
}

/// One client: wait for its turn, subscribe until cancelled, hand back the record.
async fn run_client(
    config: ClientConfig,
    mut recorder: Recorder,
    start_at: tokio::time::Instant,
    cancel: CancellationToken,
) -> Recorder {
    tokio::select! {
        () = cancel.cancelled() => return recorder,
        () = tokio::time::sleep_until(start_at) => {}
    }
    // A chat sender that cannot send on its subscription publishes beside it.
    let publisher = match &config.chat {
        Some(chat) if config.transport != TransportKind::Ws => match Publisher::new(&config) {
            Ok(p) => Some((p, Outbox::new(chat.clone()), config.topic.clone())),
            Err(e) => {
                recorder.note_error(&format!("cannot build publisher: {e:#}"));
                None
            }
        },
        _ => None,
    };
    match Subscriber::new(config) {
        Ok(mut sub) => {
            let send = async {
                match publisher {
                    Some((p, mut outbox, topic)) => {
                        clients::chat::publish_loop(&p, &topic, &mut outbox, &cancel).await;
                        Some(outbox.counts)
                    }
                    None => None,
                }
            };
            let (ran, sent) = tokio::join!(sub.run(&mut recorder, cancel.clone()), send);
            if let Err(e) = ran {
                recorder.error(&format!("subscriber gave up: {e:#}"));
            }
            if let Some(counts) = sent.as_ref().or(sub.send_counts()) {
                recorder.add_sends(counts);
            }
            recorder.add_habits(sub.habit_counts());
        }
        Err(e) => recorder.note_error(&format!("cannot build subscriber: {e:#}")),
    }
    recorder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Window;

    /// A send window for fleets without senders.
    fn no_chat() -> SendWindow {
        tokio::sync::watch::channel(None).1
    }

    #[test]
    fn chat_senders_are_the_first_clients_spread_over_topics_and_phases() {
        let s = Scenario {
            clients: 6,
            topics: 2,
            senders: 4,
            send_rate: 2.0,
            ..Scenario::default()
        };
        let c = client_configs(
            TransportKind::Ws,
            "http://127.0.0.1:1",
            None,
            &s,
            &no_chat(),
        );
        let chat: Vec<Option<(u32, u128, u128)>> = c
            .iter()
            .map(|c| {
                c.chat
                    .as_ref()
                    .map(|k| (k.sender, k.interval.as_millis(), k.phase.as_millis()))
            })
            .collect();
        assert_eq!(
            chat,
            [
                Some((0, 500, 0)),
                Some((1, 500, 125)),
                Some((2, 500, 250)),
                Some((3, 500, 375)),
                None,
                None
            ]
        );
        let topics: Vec<&str> = c.iter().take(4).map(|c| c.topic.as_str()).collect();
        assert_eq!(topics, ["t0", "t1", "t0", "t1"], "two senders per room");
    }

    #[test]
    fn configs_spread_topics_and_poll_phases() {
        let s = Scenario {
            clients: 4,
            topics: 3,
            poll_interval: Duration::from_millis(200),
            ..Scenario::default()
        };
        let c = client_configs(
            TransportKind::ShortPoll,
            "http://127.0.0.1:1",
            None,
            &s,
            &no_chat(),
        );
        let topics: Vec<_> = c.iter().map(|c| c.topic.as_str()).collect();
        assert_eq!(topics, ["t0", "t1", "t2", "t0"]);
        let phases: Vec<_> = c.iter().map(|c| c.poll_phase.as_millis()).collect();
        assert_eq!(phases, [0, 50, 100, 150]);
        assert!(c.iter().all(|c| c.poll_interval == s.poll_interval));
    }

    #[test]
    fn loopback_fleets_spread_source_addresses_round_robin() {
        let s = Scenario {
            clients: 502,
            ..Scenario::default()
        };
        let tcp = Some("127.0.0.1:9".parse().unwrap());
        let c = client_configs(
            TransportKind::Tcp,
            "http://127.0.0.1:8080",
            tcp,
            &s,
            &no_chat(),
        );
        let ip = |i: usize| c[i].local_addr.map(|a| a.to_string());
        assert_eq!(ip(0).as_deref(), Some("127.0.1.1"));
        assert_eq!(ip(249).as_deref(), Some("127.0.1.250"));
        assert_eq!(ip(250).as_deref(), Some("127.0.1.1"));
        assert_eq!(ip(501).as_deref(), Some("127.0.1.2"));
        let distinct: std::collections::HashSet<_> = c.iter().map(|c| c.local_addr).collect();
        assert_eq!(distinct.len(), usize::from(SOURCE_ADDRS));

        // Not loopback over IPv4: the OS chooses.
        for (base, tcp) in [
            ("http://10.0.0.5:8080", None),
            ("http://localhost:8080", None),
            ("http://[::1]:8080", None),
            ("http://127.0.0.1:8080", Some("10.0.0.5:9".parse().unwrap())),
        ] {
            let c = client_configs(TransportKind::Sse, base, tcp, &s, &no_chat());
            assert!(c.iter().all(|c| c.local_addr.is_none()), "{base} {tcp:?}");
        }
    }

    #[test]
    fn a_group_is_moved_to_its_topics_and_its_place_in_the_fleet() {
        let s = Scenario {
            clients: 3,
            topics: 2,
            ..Scenario::default()
        };
        let mut c = client_configs(
            TransportKind::Ws,
            "http://127.0.0.1:9",
            None,
            &s,
            &no_chat(),
        );
        place_group(&mut c, 5, 250);
        let topics: Vec<&str> = c.iter().map(|c| c.topic.as_str()).collect();
        assert_eq!(topics, ["t5", "t6", "t5"], "the group's own range, from t5");
        assert_eq!(c[0].local_addr, Some(source_addr(250)));
        assert_eq!(c[2].local_addr, Some(source_addr(252)));
    }

    #[tokio::test]
    async fn a_fleet_against_nothing_stops_in_time_and_returns_every_recorder() {
        // Port 1 on loopback refuses connections: clients keep retrying until cancelled.
        let s = Scenario {
            clients: 5,
            reconnect_delay: Duration::from_millis(20),
            ..Scenario::default()
        };
        let configs = client_configs(
            TransportKind::Sse,
            "http://127.0.0.1:1",
            None,
            &s,
            &no_chat(),
        );
        let (window, presence) = (Arc::new(Window::new()), Presence::new());
        let clients = configs
            .into_iter()
            .map(|c| (c, Recorder::new(window.clone(), presence.clone(), 10)))
            .collect();
        let fleet = Fleet::start(clients, 1000.0, presence);
        assert_eq!(fleet.clients(), 5);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fleet.connected(), 0);
        let t = std::time::Instant::now();
        let out = fleet.stop(STOP_TIMEOUT).await;
        assert!(t.elapsed() < STOP_TIMEOUT);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.recorders.len(), 5);
        for r in out.recorders {
            let t = r.unwrap().finish(None);
            assert_eq!(t.clients_connected, 0);
            assert!(t.counts.errors > 0, "connection refused is reported");
        }
    }
}
