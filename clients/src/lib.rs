//! pushbench's subscribers: one per transport, behind one enum.
//!
//! Each simulated client holds its own connection (its own HTTP connection
//! pool of one, or its own WebSocket), as a browser tab would. A subscriber
//! knows the wire, nothing about measuring: it reports what happens to an
//! [`Observer`] (the harness's recorder), which timestamps nothing itself —
//! the subscriber passes the receive time it read right after the bytes
//! arrived.
//!
//! Layout: [`Observer`] and [`ClientConfig`] (what a subscriber reports and
//! needs), one module per transport ([`short_poll`], [`long_poll`], [`sse`],
//! [`ws`], and [`tcp`], the raw-TCP floor), `common` (the reconnect loop and
//! the helpers they share), [`backoff`] (the reconnect policy), and
//! [`Subscriber`], the enum the harness drives. [`publish`](mod@publish) is the upstream
//! path (`POST /publish`); [`chat`] makes a subscriber also send on a
//! schedule and recognise its own messages coming back.
//!
//! Reconnecting is the same for every transport: after a session ends
//! (failed, dropped, or ended by the server) the subscriber waits a backoff
//! pause (exponential with jitter, reset by an event; SSE starts from the
//! server's `retry:`) and resumes from the last event it received: SSE with
//! `Last-Event-ID`, WebSocket and polling with `after=`, raw TCP with
//! `SUB <topic> <id>`. The observer hears of every attempt
//! ([`Observer::reconnect_attempt`]) and of how long the outage lasted
//! ([`Observer::reconnected`]).
//!
//! ```no_run
//! # async fn demo(observer: &mut impl clients::Observer) -> anyhow::Result<()> {
//! use clients::{ClientConfig, Subscriber};
//! let config = ClientConfig::new(protocol::TransportKind::Sse, "http://127.0.0.1:8080");
//! let stop = tokio_util::sync::CancellationToken::new();
//! Subscriber::new(config)?.run(observer, stop).await
//! # }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::ensure;
use protocol::{Event, TransportKind};
use tokio_util::sync::CancellationToken;

pub use backoff::Backoff;
pub use behaviour::{Behaviour, HabitCounts};
pub use publish::{Publisher, publish};

pub mod backoff;
pub mod behaviour;
pub mod chat;
mod common;
pub mod long_poll;
pub mod publish;
pub mod short_poll;
pub mod sse;
pub mod tcp;
pub mod ws;

/// One simulated client of any transport. Each holds its own connection.
#[derive(Debug)]
pub enum Subscriber {
    /// Short polling on a fixed schedule.
    ShortPoll(short_poll::ShortPoll),
    /// Long polling, re-requesting as soon as each answer arrives.
    LongPoll(long_poll::LongPoll),
    /// Server-Sent Events, resuming with `Last-Event-ID`.
    Sse(sse::Sse),
    /// WebSocket, resuming with `after=`.
    Ws(ws::Ws),
    /// Raw TCP (the floor), resuming with `SUB <topic> <last id>`.
    Tcp(tcp::Tcp),
}

impl Subscriber {
    /// Builds the subscriber for `config.transport` (no I/O yet). Fails on a
    /// config that cannot work (bad base URL, zero poll interval, raw TCP
    /// without [`ClientConfig::tcp_addr`], …).
    pub fn new(config: ClientConfig) -> anyhow::Result<Self> {
        ensure!(
            (0.0..=1.0).contains(&config.backoff_jitter),
            "backoff_jitter must be a fraction from 0 to 1, got {}",
            config.backoff_jitter
        );
        Ok(match config.transport {
            TransportKind::ShortPoll => Self::ShortPoll(short_poll::ShortPoll::new(&config)?),
            TransportKind::LongPoll => Self::LongPoll(long_poll::LongPoll::new(&config)?),
            TransportKind::Sse => Self::Sse(sse::Sse::new(&config)?),
            TransportKind::Ws => Self::Ws(ws::Ws::new(&config)?),
            TransportKind::Tcp => Self::Tcp(tcp::Tcp::new(&config)?),
        })
    }

    /// Which transport this subscriber speaks.
    pub fn transport(&self) -> TransportKind {
        match self {
            Self::ShortPoll(_) => TransportKind::ShortPoll,
            Self::LongPoll(_) => TransportKind::LongPoll,
            Self::Sse(_) => TransportKind::Sse,
            Self::Ws(_) => TransportKind::Ws,
            Self::Tcp(_) => TransportKind::Tcp,
        }
    }

    /// What this subscriber sent on its own connection (a WebSocket chat
    /// sender); `None` for every other subscriber.
    pub fn send_counts(&self) -> Option<&chat::SendCounts> {
        match self {
            Self::Ws(t) => t.send_counts(),
            _ => None,
        }
    }

    /// What this subscriber's habits ([`ClientConfig::behaviour`]) did.
    pub fn habit_counts(&self) -> HabitCounts {
        match self {
            Self::ShortPoll(t) => t.habits.counts,
            Self::LongPoll(t) => t.habits.counts,
            Self::Sse(t) => t.habits.counts,
            Self::Ws(t) => t.habits.counts,
            Self::Tcp(t) => t.habits.counts,
        }
    }

    /// Subscribes, reporting to `observer`, and keeps reconnecting after
    /// failures (each reported with [`Observer::error`]) with the backoff
    /// of [`ClientConfig`], until `stop` is cancelled; then returns `Ok`
    /// promptly (well under a second).
    pub async fn run<O: Observer>(
        &mut self,
        observer: &mut O,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        match self {
            Self::ShortPoll(t) => common::drive(t, observer, stop).await,
            Self::LongPoll(t) => common::drive(t, observer, stop).await,
            Self::Sse(t) => common::drive(t, observer, stop).await,
            Self::Ws(t) => common::drive(t, observer, stop).await,
            Self::Tcp(t) => common::drive(t, observer, stop).await,
        }
    }
}

/// What happens to a subscriber, as it happens. Implemented by the harness's
/// per-client recorder; every method is called from the client's own task,
/// so implementations need no locks.
pub trait Observer: Send {
    /// A connection (or, for polling, the first successful response) was
    /// established, `connect_us` after the attempt started.
    fn connected(&mut self, connect_us: u64);
    /// An event arrived; `received_at_us` is [`protocol::now_us`] read right
    /// after the bytes carrying it were received.
    fn event(&mut self, event: &Event, received_at_us: u64);
    /// A polling request was sent (short and long polling only).
    fn request(&mut self) {}
    /// The connection was lost and the subscriber will reconnect.
    fn disconnected(&mut self) {}
    /// Something went wrong (connect refused, bad status, undecodable event…).
    /// The subscriber keeps going (reconnecting after a backoff pause).
    fn error(&mut self, message: &str) {
        let _ = message;
    }
    /// The subscriber is about to try again: called before every session
    /// but the first (after a failure, a drop or a server-ended stream, and
    /// the backoff pause), so a subscriber that needs three tries after an
    /// outage reports three.
    fn reconnect_attempt(&mut self) {}
    /// The first event since the connection was lost arrived:
    /// `disconnect_to_first_event_us` runs from detecting the loss (the end
    /// of the last session that had connected) to that event's receive
    /// time, so it includes the backoff pauses, failed attempts, connecting
    /// and waiting for the event. Called once per loss, right before that
    /// event's [`event`](Self::event).
    fn reconnected(&mut self, disconnect_to_first_event_us: u64) {
        let _ = disconnect_to_first_event_us;
    }
}

/// Everything one subscriber needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Which transport to speak.
    pub transport: TransportKind,
    /// Base URL of the server, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub base_url: String,
    /// Other servers of the same event stream (push-servers behind one
    /// broker), tried in turn after a session ends, as a load balancer
    /// would send a reconnect to another server: the client resumes there
    /// from its last id. Empty (the default): always `base_url`.
    pub fallback_urls: Vec<String>,
    /// Raw TCP: the other servers' TCP addresses, taken in turn like
    /// [`ClientConfig::fallback_urls`].
    pub fallback_tcp_addrs: Vec<SocketAddr>,
    /// Raw TCP only: the server's TCP port (`"tcp"` in push-server's ready
    /// line); required for [`TransportKind::Tcp`], ignored otherwise.
    pub tcp_addr: Option<SocketAddr>,
    /// Topic to subscribe to (`t0`, `t1`, …).
    pub topic: String,
    /// Short polling: interval of the fixed request schedule.
    pub poll_interval: Duration,
    /// Short polling: offset of this client's schedule within one interval,
    /// so a fleet's polls are spread rather than synchronised.
    pub poll_phase: Duration,
    /// Long polling: `timeout_ms` asked of the server per request.
    pub longpoll_timeout: Duration,
    /// Source address to bind (spreads large fleets over 127.0.0.0/8); `None` = OS choice.
    pub local_addr: Option<IpAddr>,
    /// Bound on establishing a connection / receiving response headers.
    pub connect_timeout: Duration,
    /// Reconnect backoff: the pause after a first failure or disconnect
    /// (default 100 ms). SSE uses the server's `retry:` instead when it sent
    /// one. See [`Backoff`].
    pub backoff_initial: Duration,
    /// Each consecutive failure (a session that ended without an event)
    /// doubles the pause, up to this (default 5 s). An event resets it.
    pub backoff_max: Duration,
    /// Jitter, as a fraction of each pause: the pause is drawn uniformly
    /// from `pause × [1 − j, 1 + j)`, never above `backoff_max` (default
    /// 0.5; must be 0 to 1), so clients dropped together do not return in
    /// lockstep.
    pub backoff_jitter: f64,
    /// SSE, WebSocket and raw TCP: a connection that receives nothing (no event, no
    /// keep-alive, no ping) for this long is deemed dead and reconnected, so
    /// no read waits forever on a peer that vanished. Must exceed the
    /// server's keep-alive interval and, without keep-alives, the gap
    /// between events.
    pub idle_timeout: Duration,
    /// SSE and WebSocket: the path and query of one topic's stream on a
    /// server pushbench did not build (a *target*), `{topic}` standing for
    /// the topic, e.g. `/events/?channel={topic}`. `None`: push-server's
    /// `/sse?topic=…` and `/ws?topic=…`. A WebSocket subscriber still adds
    /// `after=N` when it resumes.
    pub path: Option<String>,
    /// SSE: the event type listened for, as a page's
    /// `addEventListener(type)` would (`None`: `message`, what `onmessage`
    /// sees). Events of other types, such as a foreign server's own
    /// control events (django-eventstream's `stream-open` and
    /// `keep-alive`), are ignored, as a browser ignores types nobody
    /// listens to.
    pub event_type: Option<String>,
    /// Chat: this client also sends messages on its topic (`None`, the
    /// default: it only subscribes). A WebSocket subscriber sends them on
    /// its own socket; for the other transports the caller runs
    /// [`chat::publish_loop`] beside the subscriber.
    pub chat: Option<chat::ChatConfig>,
    /// What the client does besides listening: WebSocket pings, reading
    /// pauses, unexpected messages ([`behaviour`]); the default is the
    /// polite client.
    pub behaviour: Behaviour,
}

impl ClientConfig {
    /// A config with pushbench's defaults for `transport` against `base_url`, topic `t0`.
    pub fn new(transport: TransportKind, base_url: impl Into<String>) -> Self {
        Self {
            transport,
            base_url: base_url.into(),
            tcp_addr: None,
            topic: "t0".to_string(),
            poll_interval: Duration::from_secs(1),
            poll_phase: Duration::ZERO,
            longpoll_timeout: Duration::from_secs(30),
            local_addr: None,
            connect_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            backoff_jitter: 0.5,
            idle_timeout: Duration::from_secs(60),
            path: None,
            fallback_urls: Vec::new(),
            fallback_tcp_addrs: Vec::new(),
            event_type: None,
            chat: None,
            behaviour: Behaviour::default(),
        }
    }
}
