//! Raw TCP, the floor: one request line `SUB <topic> <after|->` on the
//! server's TCP port, then length-prefixed frames of the event JSON (an
//! empty frame is a keep-alive); on reconnect `SUB <topic> <last id>`
//! resumes where the stream broke.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use bytes::{Buf as _, BytesMut};
use protocol::encode::{TCP_PREFIX_LEN, tcp_decode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Habit, Habits};
use crate::common::{IdleWatch, Transport, connect, deliver, elapsed_us, pause_reading};
use crate::{Backoff, ClientConfig, Observer};

/// Space made free before each read; a frame larger than this still
/// arrives (the buffer grows), as with the WebSocket client's 4 KiB buffer.
const READ_CHUNK: usize = 4 * 1024;
/// A frame announcing more than this is not one of ours (events are a few
/// hundred bytes to a few hundred KiB): the stream is garbage or an `ERR`
/// line, and buffering it would only eat memory.
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The server's limit on the request line (`servers::tcp::MAX_REQUEST_LINE`).
const MAX_REQUEST_LINE: usize = 256;
/// Longest `ERR …` line waited for before giving up on reading its end.
const MAX_ERR_LINE: usize = 1024;

/// A raw-TCP subscriber.
#[derive(Debug)]
pub struct Tcp {
    addr: SocketAddr,
    /// Every server to take turns on: `tcp_addr`, then
    /// [`ClientConfig::fallback_tcp_addrs`].
    servers: Vec<SocketAddr>,
    /// Index of the current one in `servers`.
    current: usize,
    topic: String,
    local_addr: Option<IpAddr>,
    /// Id of the last event received, asked for on reconnect.
    after: Option<u64>,
    /// Received bytes not yet decoded; reused across reads and connections.
    buf: BytesMut,
    connect_timeout: Duration,
    idle_timeout: Duration,
    backoff: Backoff,
    /// Reading pauses ([`ClientConfig::behaviour`]).
    pub(crate) habits: Habits,
}

impl Tcp {
    /// Builds the subscriber (no I/O yet). Fails without
    /// [`ClientConfig::tcp_addr`] or with a topic the request line cannot carry.
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        let addr = config.tcp_addr.ok_or_else(|| {
            anyhow!(
                "the raw-TCP transport needs the server's TCP address \
                 (ClientConfig::tcp_addr; push-server serves it with --tcp-listen)"
            )
        })?;
        let topic = &config.topic;
        ensure!(
            !topic.is_empty() && !topic.chars().any(|c| c.is_whitespace() || c.is_control()),
            "topic {topic:?} cannot go on a raw-TCP request line (empty, space or control character)"
        );
        // "SUB " + topic + " " + a u64 + "\n" must fit the server's limit.
        ensure!(
            topic.len() + 26 <= MAX_REQUEST_LINE,
            "topic {topic:?} is too long for a raw-TCP request line"
        );
        Ok(Self {
            addr,
            servers: std::iter::once(addr)
                .chain(config.fallback_tcp_addrs.iter().copied())
                .collect(),
            current: 0,
            topic: topic.clone(),
            local_addr: config.local_addr,
            after: None,
            buf: BytesMut::new(),
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            backoff: Backoff::from_config(config),
            habits: Habits::new(&config.behaviour, false),
        })
    }

    /// TCP connect from the chosen source address, then the request line.
    async fn open(&self) -> anyhow::Result<TcpStream> {
        let mut stream = connect(self.addr, self.local_addr).await?;
        let line = match self.after {
            Some(id) => format!("SUB {} {id}\n", self.topic),
            None => format!("SUB {} -\n", self.topic),
        };
        stream
            .write_all(line.as_bytes())
            .await
            .context("sending the request line")?;
        Ok(stream)
    }

    /// Hands every complete frame in the buffer to the observer, keeps the
    /// incomplete rest, and fails on something that is not a frame (an
    /// `ERR` line from the server, or garbage). `eof`: nothing more comes.
    fn decode<O: Observer>(
        &mut self,
        observer: &mut O,
        received_at_us: u64,
        eof: bool,
    ) -> anyhow::Result<()> {
        let mut used = 0;
        while let Some((body, n)) = tcp_decode(&self.buf[used..]) {
            used += n;
            if body.is_empty() {
                continue; // keep-alive
            }
            match std::str::from_utf8(body) {
                Ok(json) => {
                    if let Some(id) = deliver(observer, json, received_at_us) {
                        self.after = Some(id);
                    }
                }
                Err(_) => observer.error("event frame is not UTF-8"),
            }
        }
        self.buf.advance(used);
        let Some(prefix) = self.buf.first_chunk::<TCP_PREFIX_LEN>() else {
            return Ok(());
        };
        if u32::from_be_bytes(*prefix) as usize <= MAX_FRAME {
            return Ok(());
        }
        if !self.buf.starts_with(b"ERR ") {
            bail!("not a raw-TCP frame: length prefix {prefix:02x?}");
        }
        let end = self.buf.iter().position(|&b| b == b'\n');
        if end.is_none() && !eof && self.buf.len() < MAX_ERR_LINE {
            return Ok(()); // the rest of the line is on its way
        }
        let line = &self.buf[..end.unwrap_or(self.buf.len()).min(MAX_ERR_LINE)];
        bail!(
            "server refused: {}",
            String::from_utf8_lossy(line).trim_end()
        )
    }
}

impl Transport for Tcp {
    async fn session<O: Observer>(
        &mut self,
        observer: &mut O,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut stream = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            opened = tokio::time::timeout(self.connect_timeout, self.open()) => opened
                .map_err(|_| anyhow!("no connection within {:?}", self.connect_timeout))??,
        };
        observer.connected(elapsed_us(started));
        // Bytes of a previous connection are a cut frame: the resume re-sends it.
        self.buf.clear();
        let mut idle = IdleWatch::new(self.idle_timeout);
        loop {
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                silent = idle.silent() => return Err(silent),
                habit = self.habits.next(), if self.habits.active() => if let Habit::Pause(pause) = habit {
                    if !pause_reading(pause, stop).await {
                        return Ok(());
                    }
                    idle.touch();
                },
                read = stream.read_buf(&mut self.buf) => {
                    // Read once per read: every frame completed by it arrived now.
                    let received_at_us = protocol::now_us();
                    let eof = read.context("reading the stream")? == 0;
                    idle.touch();
                    self.decode(observer, received_at_us, eof)?;
                    if eof {
                        return Ok(()); // the server ended the stream
                    }
                }
            }
        }
    }

    fn fail_over(&mut self) {
        if self.servers.len() > 1 {
            self.current = (self.current + 1) % self.servers.len();
            self.addr = self.servers[self.current];
        }
    }

    fn backoff(&mut self) -> &mut Backoff {
        &mut self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tcp_client_takes_turns_over_its_servers() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut config = ClientConfig::new(protocol::TransportKind::Tcp, "http://127.0.0.1:9");
        config.tcp_addr = Some(a);
        let mut one = Tcp::new(&config).unwrap();
        one.fail_over();
        assert_eq!(one.addr, a, "one server: no change");
        config.fallback_tcp_addrs = vec!["127.0.0.1:2".parse().unwrap()];
        let mut t = Tcp::new(&config).unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(t.addr.port());
            t.fail_over();
        }
        assert_eq!(seen, [1, 2, 1]);
    }
}
