//! The userspace link emulator: a TCP relay between each client and the
//! server that gives every connection the link's delay, jitter, bandwidth
//! and loss, direction by direction. For machines whose kernel has no
//! `netem` (this project's CI machine among them).
//!
//! Each direction of a connection is a reader and a writer joined by a
//! bounded queue. The reader stamps every chunk it reads with the instant it
//! may leave:
//!
//! - **delay**: now + rtt/2 ± jitter, but never before the chunk ahead of it
//!   (TCP delivers a connection's bytes in order, so jitter delays, it never
//!   reorders);
//! - **bandwidth**: a chunk leaves when the link is free and holds it for
//!   `bytes × 8 / bandwidth` (serialisation delay, one token bucket per
//!   direction and connection);
//! - **loss**: each 1,448-byte segment is lost with probability `loss`; TCP
//!   retransmits it one retransmission timeout later ([`Link::rto`]: Linux's
//!   `srtt + 4·rttvar`, at least 200 ms), and everything behind it waits
//!   (head-of-line blocking). With streams of small events there are rarely
//!   three later segments in flight to trigger a fast retransmit, so the RTO
//!   is the common case; this model never takes the faster path.
//!
//! The queue is bounded ([`QUEUE_CHUNKS`]), so a link slower than the sender
//! pushes back on the sender's socket as a real bottleneck's buffer would.
//!
//! The client's TCP handshake completes with the relay at once; the relay
//! then waits one RTT before it forwards anything, which is what the
//! handshake costs over the link (SYN out, SYN-ACK back) before a real
//! client's first byte could leave.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::link::profile::Link;

/// Payload bytes of one TCP segment on a 1,500-byte MTU path.
pub const SEGMENT: usize = 1448;

/// Chunks queued per direction before the reader stops reading (≈ the
/// bottleneck's buffer; 64 reads of at most 16 KiB).
pub const QUEUE_CHUNKS: usize = 64;

/// Largest read of one chunk.
const READ_BUF: usize = 16 * 1024;

/// A timer thread that wakes tasks at an instant to within a fraction of a
/// millisecond. tokio's timer has millisecond granularity and fires up to
/// a millisecond or two late, which alone would add 2–3 ms to every round
/// trip through the relay (30 % of a 10 ms link); this thread sleeps on a
/// futex with microsecond resolution instead. One thread serves every
/// connection of the relay.
#[derive(Clone)]
pub struct Clock {
    tx: std::sync::mpsc::Sender<(std::time::Instant, tokio::sync::oneshot::Sender<()>)>,
}

impl Clock {
    /// Starts the timer thread (it ends when the last `Clock` is dropped).
    pub fn start() -> Clock {
        let (tx, rx) =
            std::sync::mpsc::channel::<(std::time::Instant, tokio::sync::oneshot::Sender<()>)>();
        std::thread::Builder::new()
            .name("relay-clock".into())
            .spawn(move || {
                use std::cmp::Reverse;
                use std::collections::BinaryHeap;
                // (deadline, sequence) so equal deadlines keep their order.
                let mut heap: BinaryHeap<Reverse<(std::time::Instant, u64)>> = BinaryHeap::new();
                let mut waiting = std::collections::HashMap::new();
                let mut seq = 0u64;
                loop {
                    let now = std::time::Instant::now();
                    while let Some(Reverse((at, n))) = heap.peek().copied() {
                        if at > now {
                            break;
                        }
                        heap.pop();
                        if let Some(t) = waiting.remove(&n) {
                            let _: Result<(), ()> = tokio::sync::oneshot::Sender::send(t, ());
                        }
                    }
                    let next = match heap.peek() {
                        Some(Reverse((at, _))) => {
                            rx.recv_timeout(at.saturating_duration_since(now))
                        }
                        None => rx
                            .recv()
                            .map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected),
                    };
                    match next {
                        Ok((at, t)) => {
                            seq += 1;
                            heap.push(Reverse((at, seq)));
                            waiting.insert(seq, t);
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .expect("spawning the relay's clock thread");
        Clock { tx }
    }

    /// Waits until `at` (at once if it has passed).
    pub async fn sleep_until(&self, at: Instant) {
        let at = at.into_std();
        if at <= std::time::Instant::now() {
            return;
        }
        let (t, r) = tokio::sync::oneshot::channel();
        if self.tx.send((at, t)).is_ok() {
            let _ = r.await;
        }
    }
}

/// What the relay counts (all connections, both directions).
#[derive(Debug, Default)]
pub struct RelayCounters {
    /// Connections relayed so far.
    pub connections: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Bytes relayed, both directions.
    pub bytes: AtomicU64,
    /// Segments the loss model dropped (each retransmitted one RTO later).
    pub lost_segments: AtomicU64,
}

/// One direction's shaping state: when its link is next free, and when the
/// last chunk left (to keep order).
struct Shaper {
    one_way: Duration,
    jitter: Duration,
    bps: Option<u64>,
    loss: f64,
    rto: Duration,
    link_free: Instant,
    last_release: Instant,
}

impl Shaper {
    fn new(link: &Link, bps: Option<u64>) -> Self {
        let now = Instant::now();
        Shaper {
            one_way: link.rtt / 2,
            jitter: link.jitter,
            bps,
            loss: link.loss,
            rto: link.rto(),
            link_free: now,
            last_release: now,
        }
    }

    /// The instant a chunk of `len` bytes read `now` may be written out,
    /// and how many of its segments were lost.
    fn release(&mut self, now: Instant, len: usize) -> (Instant, u64) {
        // Serialisation: the chunk occupies the link after whatever is ahead.
        let start = now.max(self.link_free);
        let on_wire = self.bps.map_or(Duration::ZERO, |bps| {
            Duration::from_secs_f64(len as f64 * 8.0 / bps as f64)
        });
        self.link_free = start + on_wire;
        // Propagation, with jitter.
        let mut delay = self.one_way;
        if !self.jitter.is_zero() {
            let j = self.jitter.as_secs_f64() * (fastrand::f64() * 2.0 - 1.0);
            delay = Duration::from_secs_f64((delay.as_secs_f64() + j).max(0.0));
        }
        // Loss: each lost segment is resent one RTO later.
        let mut lost = 0;
        if self.loss > 0.0 {
            let segments = len.div_ceil(SEGMENT);
            for _ in 0..segments {
                if fastrand::f64() < self.loss {
                    lost += 1;
                }
            }
        }
        let at = (self.link_free + delay + self.rto * lost as u32).max(self.last_release);
        self.last_release = at;
        (at, lost)
    }
}

/// Relays `from` to `to` through one direction of `link`.
async fn direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: Link,
    bps: Option<u64>,
    (counters, clock): (Arc<RelayCounters>, Clock),
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(QUEUE_CHUNKS);
    let reader_counters = counters.clone();
    let reader = async move {
        let mut shaper = Shaper::new(&link, bps);
        let mut buf = BytesMut::with_capacity(READ_BUF);
        loop {
            buf.reserve(READ_BUF);
            match from.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let (at, lost) = shaper.release(Instant::now(), n);
                    if lost > 0 {
                        reader_counters
                            .lost_segments
                            .fetch_add(lost, Ordering::Relaxed);
                    }
                    if tx.send((at, buf.split().freeze())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            clock.sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
            counters
                .bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// Relays one accepted client connection to `upstream`.
async fn relay_one(
    client: TcpStream,
    upstream: SocketAddr,
    link: Link,
    (counters, clock): (Arc<RelayCounters>, Clock),
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    counters.open.fetch_add(1, Ordering::Relaxed);
    // The TCP handshake: the client's connect completed at once (with the
    // relay), but over the link SYN and SYN-ACK take a round trip before
    // its first byte can go. Nothing is read from it until then.
    if !link.rtt.is_zero() {
        clock.sleep_until(Instant::now() + link.rtt).await;
    }
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(
        direction(cr, sw, link, link.up_bps, (counters.clone(), clock.clone())),
        direction(sr, cw, link, link.down_bps, (counters.clone(), clock)),
    );
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// Accepts on `listener` and relays every connection to `upstream` through
/// `link`, until `stop`.
pub async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    link: Link,
    counters: Arc<RelayCounters>,
    stop: CancellationToken,
) {
    let clock = Clock::start();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, _)) => {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(relay_one(
                    client,
                    upstream,
                    link,
                    (counters.clone(), clock.clone()),
                ));
            }
            // EMFILE and the like: back off a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
