//! WebSocket: `GET /ws` upgraded, one text message per event; on reconnect
//! `after=` resumes from the last id received. A chat sender also sends its
//! messages on the same socket (full duplex), each when it is due, in the
//! same loop that reads: messages due while the connection is down go out,
//! late but with their due time, as soon as it is back.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Habit, Habits, is_error_reply, junk_message};
use crate::chat::{Outbox, SendCounts, upstream_message};
use crate::common::{IdleWatch, Target, Transport, connect, deliver, elapsed_us, pause_reading};
use crate::{Backoff, ClientConfig, Observer};

/// tungstenite's buffers default to 128 KiB each and the read buffer is
/// allocated up front: at 10,000 clients that is over a gigabyte of fleet
/// memory for messages of a few hundred bytes. 4 KiB holds typical events;
/// larger ones still arrive (the buffer is a chunk size, not a limit).
const BUFFER_BYTES: usize = 4 * 1024;

/// How long a stopping client waits for the server to answer its Close, so
/// that the server closes the TCP connection first and holds TIME_WAIT.
const CLOSE_GRACE: Duration = Duration::from_millis(300);

/// A WebSocket subscriber.
#[derive(Debug)]
pub struct Ws {
    target: Target,
    local_addr: Option<std::net::IpAddr>,
    /// Id of the last event received, asked for as `after=` on reconnect.
    after: Option<u64>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    backoff: Backoff,
    /// Chat: the messages this client sends upstream (`None`: it only listens).
    outbox: Option<Outbox>,
    /// Pings, reading pauses and unexpected messages ([`ClientConfig::behaviour`]).
    pub(crate) habits: Habits,
}

/// The next message due in `outbox`; never completes without one.
async fn next_upstream(outbox: Option<&mut Outbox>) -> (String, u64) {
    match outbox {
        Some(o) => o.next().await,
        None => std::future::pending().await,
    }
}

impl Ws {
    /// Builds the subscriber (no I/O yet).
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        Ok(Self {
            target: Target::new(config)?,
            local_addr: config.local_addr,
            after: None,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            backoff: Backoff::from_config(config),
            outbox: config.chat.clone().map(Outbox::new),
            habits: Habits::new(&config.behaviour, true),
        })
    }

    /// What this subscriber sent upstream, if it is a chat sender.
    pub fn send_counts(&self) -> Option<&SendCounts> {
        self.outbox.as_ref().map(|o| &o.counts)
    }

    /// TCP connect from the chosen source address, then the handshake.
    async fn open(&self) -> anyhow::Result<WebSocketStream<TcpStream>> {
        let mut url = self.target.stream_url("/ws", self.after);
        // http → ws keeps host, port and query; both schemes are "special",
        // so the change cannot be refused.
        let _ = url.set_scheme("ws");
        let addr = resolve(&url, self.local_addr).await?;
        let stream = connect(addr, self.local_addr).await?;
        let config = WebSocketConfig::default()
            .read_buffer_size(BUFFER_BYTES)
            .write_buffer_size(BUFFER_BYTES);
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
                .await
                .context("WebSocket handshake")?;
        Ok(ws)
    }
}

/// The socket address of `url`, preferring the family of the source address.
async fn resolve(url: &Url, local: Option<std::net::IpAddr>) -> anyhow::Result<SocketAddr> {
    let port = url.port_or_known_default().unwrap_or(80);
    let Some(host) = url.host_str() else {
        bail!("URL without host");
    };
    // IPv6 literals come bracketed (`[::1]`); literals need no lookup.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let candidates: Vec<SocketAddr> = match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .collect(),
    };
    let same_family = |a: &&SocketAddr| local.is_none_or(|l| l.is_ipv4() == a.is_ipv4());
    candidates
        .iter()
        .find(same_family)
        .or(candidates.first())
        .copied()
        .ok_or_else(|| anyhow!("{url} resolves to no address"))
}

impl Transport for Ws {
    async fn session<O: Observer>(
        &mut self,
        observer: &mut O,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut ws = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            opened = tokio::time::timeout(self.connect_timeout, self.open()) => opened
                .map_err(|_| anyhow!("no connection within {:?}", self.connect_timeout))??,
        };
        observer.connected(elapsed_us(started));
        let mut idle = IdleWatch::new(self.idle_timeout);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                silent = idle.silent() => return Err(silent),
                (data, _due) = next_upstream(self.outbox.as_mut()) => {
                    // Written and flushed before reading on: a send is a few µs.
                    if let Err(e) = ws.send(Message::text(upstream_message(&data))).await {
                        if let Some(o) = self.outbox.as_mut() {
                            o.counts.fail(format!("WebSocket send: {e}"));
                        }
                        return Err(e.into());
                    }
                    if let Some(o) = self.outbox.as_mut() {
                        o.counts.sent += 1;
                    }
                }
                habit = self.habits.next(), if self.habits.active() => {
                    let frame = match habit {
                        Habit::Pause(pause) => {
                            // The socket is not read meanwhile: the server's writes back up.
                            if !pause_reading(pause, stop).await {
                                break;
                            }
                            idle.touch();
                            continue;
                        }
                        Habit::Ping => Message::Ping(protocol::now_us().to_be_bytes().to_vec().into()),
                        Habit::Junk(n) => junk_message(n),
                    };
                    ws.send(frame).await?;
                }
                message = ws.next() => {
                    let received_at_us = protocol::now_us();
                    idle.touch();
                    match message {
                        Some(Ok(Message::Text(text))) if is_error_reply(text.as_str()) => {
                            // The server's answer to an unexpected message:
                            // expected when this client sends junk.
                            if self.habits.counts.junk > 0 {
                                self.habits.counts.error_replies += 1;
                            } else {
                                observer.error(&format!("server error reply: {:.120}", text.as_str()));
                            }
                        }
                        Some(Ok(Message::Text(text))) => {
                            if let Some(id) = deliver(observer, text.as_str(), received_at_us) {
                                self.after = Some(id);
                            }
                        }
                        Some(Ok(Message::Binary(_))) => observer.error("unexpected binary message"),
                        // tungstenite queues the Pong (or the Close reply) and
                        // flushes it at the start of the next read, which
                        // this loop makes at once; the stream then ends.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_))) => {}
                        Some(Err(err)) => return Err(err.into()),
                        None => return Ok(()), // closed by the server
                    }
                }
            }
        }
        // Stopping: say goodbye, then wait briefly for the server's Close so
        // the server side closes TCP first; bounded either way.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        Ok(())
    }

    fn fail_over(&mut self) {
        self.target.fail_over();
    }

    fn backoff(&mut self) -> &mut Backoff {
        &mut self.backoff
    }
}
