//! What push-server (or a target) is started with: [`ServerSpec`], its
//! command-line flags, and the environment a target's command gets.

use std::net::SocketAddr;
use std::time::Duration;

use protocol::Schedule;

use crate::scenario::Scenario;
use crate::scenario::check::fmt_duration;

/// What the server generates and how it streams (its command-line flags).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// The open-loop schedule (rate, topics, start epoch).
    pub schedule: Schedule,
    /// A mixed run's topic groups (`--topic-group`), which replace the
    /// schedule's rate and topics; empty otherwise.
    pub topic_groups: Vec<protocol::schedule::TopicGroup>,
    /// Payload filler size, bytes.
    pub payload_bytes: usize,
    /// Events kept per topic.
    pub history: usize,
    /// Named SSE event type.
    pub event_type: Option<String>,
    /// SSE `retry:` value, ms.
    pub retry_ms: u64,
    /// push-server's `--fanout`.
    pub fanout: protocol::Fanout,
    /// Keep-alive interval while idle.
    pub keepalive: Duration,
    /// Longest long-poll hold the server grants.
    pub max_longpoll_timeout: Duration,
    /// Also serve the raw-TCP floor (on a second free loopback port).
    pub tcp: bool,
    /// Cores to pin the server to before it starts (empty: not pinned).
    pub cpus: Vec<usize>,
    /// Bearer token of the `/admin` fault routes (`None`: routes off).
    pub admin_token: Option<String>,
    /// Address to listen on (`None`: a free loopback port). A restarted
    /// server takes its predecessor's, so clients reconnect to it.
    pub listen: Option<SocketAddr>,
    /// Address of the raw-TCP floor when `tcp` is set (`None`: a free loopback port).
    pub tcp_listen: Option<SocketAddr>,
    /// The network namespace to run in (the kernel link emulator's; `None`:
    /// this process's own).
    pub netns: Option<String>,
    /// The broker to share events through (`redis://HOST:PORT`, push-server's
    /// `--broker`; `None`: this server generates its own events).
    pub broker: Option<String>,
    /// With `broker`: this server runs the schedule and publishes each
    /// event once (`--broker-publish`); the others read them.
    pub broker_publish: bool,
    /// With `broker`: servers learn of events by pub/sub on one channel
    /// (`--broker-fanout pubsub`) rather than by reading the streams.
    pub broker_pubsub: bool,
}

impl ServerSpec {
    /// The server a scenario asks for, with its schedule starting at `start_epoch_us`.
    pub fn from_scenario(s: &Scenario, start_epoch_us: u64) -> Self {
        Self {
            schedule: Schedule {
                start_epoch_us,
                rate: s.rate,
                topics: s.topics,
            },
            topic_groups: s.topic_groups(),
            payload_bytes: s.payload_bytes,
            history: s.history,
            event_type: s.event_type.clone(),
            retry_ms: s.retry_ms,
            fanout: s.fanout,
            keepalive: s.keepalive,
            max_longpoll_timeout: s.longpoll_timeout,
            tcp: false,
            cpus: Vec::new(),
            admin_token: None,
            listen: None,
            tcp_listen: None,
            netns: None,
            broker: None,
            broker_publish: false,
            broker_pubsub: false,
        }
    }

    /// The `push-server` flags for this spec (listening on a free loopback port).
    pub fn args(&self) -> Vec<String> {
        let listen = self
            .listen
            .map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string());
        let mut a: Vec<String> = [
            "--listen", &listen,
            // Per-request logging would cost the server CPU inside the measurement.
            "--log", "warn",
        ]
        .map(String::from)
        .to_vec();
        let mut flag = |k: &str, v: String| {
            a.push(k.to_string());
            a.push(v);
        };
        if self.topic_groups.is_empty() {
            flag("--rate", self.schedule.rate.to_string());
            flag("--topics", self.schedule.topics.to_string());
        }
        for g in &self.topic_groups {
            flag(
                "--topic-group",
                format!("{}:{}:{}", g.name, g.topics, g.rate),
            );
        }
        flag("--start-epoch-us", self.schedule.start_epoch_us.to_string());
        flag("--payload-bytes", self.payload_bytes.to_string());
        flag("--history", self.history.to_string());
        flag("--retry-ms", self.retry_ms.to_string());
        flag("--fanout", self.fanout.as_str().to_string());
        flag("--keepalive", fmt_duration(self.keepalive));
        flag(
            "--max-longpoll-timeout",
            fmt_duration(self.max_longpoll_timeout),
        );
        if let Some(ty) = &self.event_type {
            flag("--event-type", ty.clone());
        }
        if self.tcp {
            flag(
                "--tcp-listen",
                self.tcp_listen
                    .map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string()),
            );
        }
        if let Some(token) = &self.admin_token {
            flag("--admin-token", token.clone());
        }
        if let Some(url) = &self.broker {
            flag("--broker", url.clone());
            if self.broker_pubsub {
                flag("--broker-fanout", "pubsub".to_string());
            }
            if self.broker_publish {
                a.push("--broker-publish".to_string());
            }
        }
        a
    }
}

/// The environment a target's command gets: where to listen and the
/// schedule to publish (the contract of the README's "Measuring your own
/// server").
pub fn target_env(spec: &ServerSpec, listen: SocketAddr) -> Vec<(String, String)> {
    let s = &spec.schedule;
    [
        ("PUSHBENCH_LISTEN", listen.to_string()),
        ("PUSHBENCH_START_EPOCH_US", s.start_epoch_us.to_string()),
        ("PUSHBENCH_RATE", s.rate.to_string()),
        ("PUSHBENCH_TOPICS", s.topics.to_string()),
        ("PUSHBENCH_PAYLOAD_BYTES", spec.payload_bytes.to_string()),
        ("PUSHBENCH_HISTORY", spec.history.to_string()),
        ("PUSHBENCH_RETRY_MS", spec.retry_ms.to_string()),
        (
            "PUSHBENCH_EVENT_TYPE",
            spec.event_type.clone().unwrap_or_default(),
        ),
        (
            "PUSHBENCH_KEEPALIVE_MS",
            spec.keepalive.as_millis().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
