//! Direct fan-out: whoever appends an event writes it to every caught-up
//! subscriber's socket itself, in one loop, instead of waking one task per
//! subscriber.
//!
//! Why: on one core, a broadcast to 10,000 sockets that wakes 10,000 tasks
//! spends about a third of its time in the runtime (wakers, the run queue,
//! polling each connection's futures, hyper's or tungstenite's per-frame
//! machinery) before any byte moves. A C broadcast loop is one `send` per
//! socket (`../shared/PERFORMANCE.md`: 129k deliveries/s at 10,000
//! connections). This module gives the streaming transports (SSE, WebSocket,
//! raw TCP) that loop, while their tasks keep everything else: reading,
//! keep-alives, catching up after a stall, slow clients, the end of a stream.
//!
//! Each connection has one [`Sink`] (in its [`ConnHandle`](crate::conns::ConnHandle)):
//! the socket's descriptor and a small state machine under a mutex.
//!
//! - **Busy**: the connection's task owns the socket's write side (it is
//!   catching up, writing a keep-alive, or its protocol library is writing).
//!   An appended event only notifies the task ([`Sink::notified`]).
//! - **Park requested at cursor C**: the task is caught up to C and waits.
//!   Bytes its protocol library still buffers (hyper's chunk, tungstenite's
//!   frame) are not on the socket yet, so no direct write may happen yet.
//! - **Parked at C**: set by the socket itself when the library *flushes*
//!   ([`Sink::flushed`]): hyper and tungstenite flush the socket only once
//!   their own buffers are empty, so from here the socket is between two
//!   frames of the protocol. The next event, C + 1, is written by the
//!   appender with one non-blocking `send` of its pre-encoded frame (the
//!   HTTP/1.1 chunk of the SSE frame, the WebSocket text frame, the raw-TCP
//!   frame: one allocation per event, shared by every connection), and the
//!   sink stays parked at C + 1. Anything else hands the socket back to the
//!   task (**handed back**, notified; the task resumes after the id the
//!   direct writes reached): an id that is not C + 1 (two appenders raced),
//!   a full socket buffer (`EAGAIN`: the task writes, under the write
//!   timeout), a partial write (the rest of the frame is written first by
//!   the socket's next write or flush, [`Sink::write_pending`], so the
//!   stream stays well-formed), or an error (the task's own write finds it).
//! - **Off**: the stream ended or the socket is closing; nothing is written.
//!
//! Any write through the socket (a tungstenite pong to a client's ping, a
//! Close or error reply, the end of the body) takes a parked sink back
//! first, so direct writes never interleave with a protocol library's. It
//! is handed back *at the cursor the direct writes reached*, and the task
//! is woken to take it: nothing a client sends (and the server answers)
//! can move, reset or replay a connection's cursor. The descriptor is only written
//! under the sink's lock, and the socket switches the sink Off under that
//! lock before the descriptor is closed, so a direct write can never reach
//! a closed (or reused) descriptor.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::Notify;

use crate::counters::ByteCounters;
use crate::event::EncodedEvent;

pub use protocol::Fanout;

/// Which pre-encoded frame of an event a connection's socket takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// An SSE frame as one HTTP/1.1 chunk ([`EncodedEvent::sse_chunk`]).
    SseChunked,
    /// A WebSocket text frame ([`EncodedEvent::ws_frame`]).
    Ws,
    /// A raw-TCP frame ([`EncodedEvent::tcp`]).
    Tcp,
}

impl Framing {
    fn bytes(self, event: &EncodedEvent) -> &Bytes {
        match self {
            Framing::SseChunked => &event.sse_chunk,
            Framing::Ws => &event.ws_frame,
            Framing::Tcp => &event.tcp,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Events fanned out together: contiguous ids of one topic, oldest first.
/// Each framing's bytes of the whole batch are built once, when the first
/// socket needs them, and shared by every socket.
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    events: &'a [Arc<EncodedEvent>],
    joined: [OnceLock<Bytes>; 3],
}

impl<'a> Batch<'a> {
    /// A batch of `events` (not empty; contiguous ids).
    pub(crate) fn new(events: &'a [Arc<EncodedEvent>]) -> Self {
        Self {
            events,
            joined: Default::default(),
        }
    }

    fn first_id(&self) -> u64 {
        self.events.first().map_or(0, |e| e.id)
    }

    fn last_id(&self) -> u64 {
        self.events.last().map_or(0, |e| e.id)
    }

    /// The batch in `framing`: one event's own bytes, or all of them joined.
    fn bytes(&self, framing: Framing) -> Bytes {
        if let [one] = self.events {
            return framing.bytes(one).clone();
        }
        self.joined[framing.index()]
            .get_or_init(|| {
                let mut out = BytesMut::new();
                for e in self.events {
                    out.extend_from_slice(framing.bytes(e));
                }
                out.freeze()
            })
            .clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Busy,
    ParkRequested(u64),
    Parked(u64),
    /// An appender gave the socket back to the task, which resumes after
    /// this id (direct writes reached it).
    Handed(u64),
}

#[derive(Debug)]
struct State {
    fd: RawFd,
    counters: Option<Arc<ByteCounters>>,
    framing: Framing,
    mode: Mode,
    /// The rest of a frame a direct write left half-written.
    pending: Bytes,
    /// Direct writes since the task last took the socket back.
    written: u64,
}

/// One connection's direct-write state (see the module documentation).
#[derive(Debug)]
pub struct Sink {
    /// Set once a stream starts on this connection: until then (plain HTTP
    /// requests, long polls) the socket's writes skip the lock.
    engaged: AtomicBool,
    state: Mutex<State>,
    wake: Notify,
}

impl Default for Sink {
    fn default() -> Self {
        Self {
            engaged: AtomicBool::new(false),
            state: Mutex::new(State {
                fd: -1,
                counters: None,
                framing: Framing::Tcp,
                mode: Mode::Off,
                pending: Bytes::new(),
                written: 0,
            }),
            wake: Notify::new(),
        }
    }
}

/// Server-wide direct fan-out counters (`/stats` `direct_writes`, `direct_handoffs`).
#[derive(Debug, Default)]
pub struct FanoutCounters {
    /// Events written by an appender straight to a parked socket (an event
    /// per socket; a catching-up batch counts each of its events).
    pub direct_writes: AtomicU64,
    /// Times an appender handed a socket back to its task (a gap, a full
    /// socket buffer, a partial write or an error).
    pub handoffs: AtomicU64,
}

impl Sink {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ties the sink to its socket: called once, when the connection is accepted.
    pub(crate) fn bind(&self, fd: RawFd, counters: Arc<ByteCounters>) {
        let mut st = self.lock();
        st.fd = fd;
        st.counters = Some(counters);
    }

    /// The socket is closing: no direct write may happen from here on.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.mode = Mode::Off;
        st.fd = -1;
    }

    /// A stream starts on this connection: its task owns the socket until
    /// it asks to park. False when the socket cannot take direct writes.
    pub(crate) fn start(&self, framing: Framing) -> bool {
        let mut st = self.lock();
        if st.fd < 0 {
            return false;
        }
        st.framing = framing;
        st.mode = Mode::Busy;
        st.pending = Bytes::new();
        st.written = 0;
        self.engaged.store(true, Ordering::Release);
        true
    }

    /// The stream ended: the task keeps the socket for whatever it writes last.
    pub(crate) fn stop(&self) {
        let mut st = self.lock();
        if st.mode != Mode::Off {
            st.mode = Mode::Busy;
        }
    }

    /// Takes the socket back from direct writes: returns the cursor direct
    /// writes reached (if the sink was parked or asked to park) and whether
    /// any were made since the last take-back.
    pub(crate) fn take_back(&self) -> (Option<u64>, bool) {
        let mut st = self.lock();
        let cursor = match st.mode {
            Mode::Parked(c) | Mode::ParkRequested(c) | Mode::Handed(c) => {
                st.mode = Mode::Busy;
                Some(c)
            }
            Mode::Busy | Mode::Off => None,
        };
        let wrote = std::mem::take(&mut st.written) > 0;
        (cursor, wrote)
    }

    /// The task is caught up to `cursor`: park at the socket's next flush.
    pub(crate) fn request_park(&self, cursor: u64) {
        let mut st = self.lock();
        if st.mode == Mode::Busy {
            st.mode = Mode::ParkRequested(cursor);
        }
    }

    /// Wakes the task when an appender hands the socket back (or an event
    /// arrives while it is not parked). A notification is kept until
    /// awaited, so none is lost between checking and waiting.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Called by the socket after a flush completed: the protocol library
    /// above it holds no bytes, so a requested park takes effect.
    pub(crate) fn flushed(&self) {
        if !self.engaged.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.lock();
        if let Mode::ParkRequested(c) = st.mode
            && st.pending.is_empty()
        {
            st.mode = Mode::Parked(c);
        }
    }

    /// Called by the socket before it writes (`taking` = a write, not a
    /// flush): a parked sink goes Busy (a protocol library writes now), and
    /// the rest of a half-written direct frame is written first through
    /// `write`. Returns the bytes written now, and `Ready` once nothing of
    /// that rest is owed any more (`Pending` while it does not fit).
    pub(crate) fn write_pending(
        &self,
        taking: bool,
        mut write: impl FnMut(&[u8]) -> Poll<io::Result<usize>>,
    ) -> (usize, Poll<io::Result<()>>) {
        if !self.engaged.load(Ordering::Acquire) {
            return (0, Poll::Ready(Ok(())));
        }
        let mut st = self.lock();
        if taking && let Mode::Parked(c) = st.mode {
            // The cursor direct writes reached is the task's to resume
            // from: a protocol library writing (a pong to a client's ping,
            // a Close reply, an error reply) must not lose it, or the task
            // would replay every event written directly since it parked.
            st.mode = Mode::Handed(c);
            self.wake.notify_one();
        }
        let mut total = 0;
        while !st.pending.is_empty() {
            match write(&st.pending) {
                Poll::Ready(Ok(0)) => {
                    return (total, Poll::Ready(Err(io::ErrorKind::WriteZero.into())));
                }
                Poll::Ready(Ok(n)) => {
                    st.pending.advance(n);
                    total += n;
                }
                Poll::Ready(Err(e)) => return (total, Poll::Ready(Err(e))),
                Poll::Pending => return (total, Poll::Pending),
            }
        }
        (total, Poll::Ready(Ok(())))
    }

    /// Offers `batch` to this connection (called by the appender, for
    /// every subscriber of the batch's topic).
    pub(crate) fn offer(&self, batch: &Batch<'_>, counters: &FanoutCounters) {
        let mut st = self.lock();
        let reached = match st.mode {
            Mode::Off => return,
            Mode::Busy | Mode::ParkRequested(_) | Mode::Handed(_) => {
                drop(st);
                self.wake.notify_one();
                return;
            }
            Mode::Parked(c) if c + 1 == batch.first_id() => {
                let frame = batch.bytes(st.framing);
                match send_nonblocking(st.fd, &frame) {
                    Ok(n) if n > 0 => {
                        if let Some(bytes) = &st.counters {
                            bytes.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        st.written += 1;
                        counters
                            .direct_writes
                            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
                        if n == frame.len() {
                            st.mode = Mode::Parked(batch.last_id());
                            return;
                        }
                        // The events count as written: the socket writes
                        // their rest before anything else.
                        st.pending = frame.slice(n..);
                        batch.last_id()
                    }
                    // A full buffer or a failure: the task writes (or finds
                    // the error) itself.
                    _ => c,
                }
            }
            // Not the next id: another appender's event is in between.
            Mode::Parked(c) => c,
        };
        st.mode = Mode::Handed(reached);
        counters.handoffs.fetch_add(1, Ordering::Relaxed);
        drop(st);
        self.wake.notify_one();
    }
}

/// One non-blocking `send` (no `SIGPIPE`): the bytes the kernel took.
fn send_nonblocking(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    #[allow(unsafe_code)]
    // SAFETY: `buf` is valid for `buf.len()` bytes; `fd` is the open socket
    // of this sink (it is closed only after `Sink::close`, under the same lock).
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    fn event(id: u64, len: usize) -> EncodedEvent {
        EncodedEvent {
            id,
            json: Bytes::new(),
            ws: Default::default(),
            sse: Bytes::new(),
            tcp: Bytes::from(vec![id as u8; len]),
            sse_chunk: Bytes::new(),
            ws_frame: Bytes::new(),
        }
    }

    /// Everything readable from `b` now.
    fn drain(b: &mut UnixStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match b.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn offer(sink: &Sink, events: &[EncodedEvent], fan: &FanoutCounters) {
        let events: Vec<Arc<EncodedEvent>> = events
            .iter()
            .map(|e| Arc::new(event(e.id, e.tcp.len())))
            .collect();
        sink.offer(&Batch::new(&events), fan);
    }

    fn park(sink: &Sink, at: u64) {
        sink.request_park(at);
        sink.flushed();
    }

    #[test]
    fn a_parked_sink_takes_only_the_next_id_and_hands_everything_else_back() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let bytes = Arc::new(ByteCounters::default());
        let fan = FanoutCounters::default();
        let sink = Sink::default();
        sink.bind(a.as_raw_fd(), bytes.clone());
        assert!(sink.start(Framing::Tcp));

        // Busy: the task writes; the appender only notifies.
        offer(&sink, &[event(1, 3)], &fan);
        assert!(drain(&mut b).is_empty());
        // A park takes effect only at the flush.
        sink.request_park(1);
        offer(&sink, &[event(2, 3)], &fan);
        assert!(drain(&mut b).is_empty());
        assert_eq!(sink.take_back(), (Some(1), false));
        park(&sink, 2);
        offer(&sink, &[event(3, 3)], &fan);
        offer(&sink, &[event(4, 3)], &fan);
        assert_eq!(drain(&mut b), [3, 3, 3, 4, 4, 4]);
        assert_eq!(fan.direct_writes.load(Ordering::Relaxed), 2);
        assert_eq!(bytes.bytes_out.load(Ordering::Relaxed), 6);
        // A batch (a generator catching up) goes in one write.
        offer(&sink, &[event(5, 2), event(6, 1)], &fan);
        assert_eq!(drain(&mut b), [5, 5, 6]);
        assert_eq!(fan.direct_writes.load(Ordering::Relaxed), 4);
        // A gap (7 is missing) hands the socket back at the last id written.
        offer(&sink, &[event(8, 3)], &fan);
        assert!(drain(&mut b).is_empty());
        assert_eq!(sink.take_back(), (Some(6), true));
        assert_eq!(fan.handoffs.load(Ordering::Relaxed), 1);
        // A write by the protocol library takes a parked socket back too.
        park(&sink, 8);
        offer(&sink, &[event(9, 3)], &fan);
        assert_eq!(drain(&mut b), [9, 9, 9]);
        assert!(matches!(
            sink.write_pending(true, |_| unreachable!("nothing pending")),
            (0, Poll::Ready(Ok(())))
        ));
        offer(&sink, &[event(10, 3)], &fan);
        assert!(drain(&mut b).is_empty());
        // …at the cursor the direct writes reached (a pong to a client's
        // ping once lost it, and the task replayed from where it parked).
        assert_eq!(sink.take_back(), (Some(9), true));
        // Closed: never written again.
        sink.close();
        park(&sink, 10);
        offer(&sink, &[event(11, 3)], &fan);
        assert!(drain(&mut b).is_empty());
        assert_eq!(sink.take_back(), (None, false));
    }

    #[test]
    fn a_partial_direct_write_is_finished_before_anything_else() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let fan = FanoutCounters::default();
        let sink = Sink::default();
        sink.bind(a.as_raw_fd(), Arc::new(ByteCounters::default()));
        assert!(sink.start(Framing::Tcp));
        park(&sink, 1);
        // Far larger than a socket buffer: the kernel takes part of it.
        offer(&sink, &[event(2, 4 << 20)], &fan);
        assert_eq!(fan.handoffs.load(Ordering::Relaxed), 1);
        // The task resumes after 2 (it counts as written)…
        assert_eq!(sink.take_back(), (Some(2), true));
        // …and the socket's next write first finishes its frame.
        let mut received = drain(&mut b);
        let mut rounds = 0;
        loop {
            let (_, res) = sink.write_pending(true, |buf| match a.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                other => Poll::Ready(other),
            });
            received.extend(drain(&mut b));
            match res {
                Poll::Ready(result) => break result.unwrap(),
                Poll::Pending => rounds += 1,
            }
        }
        assert!(rounds > 0, "the rest did not fit at once");
        a.write_all(&[9, 9]).unwrap();
        received.extend(drain(&mut b));
        assert_eq!(received.len(), (4 << 20) + 2);
        assert!(received[..4 << 20].iter().all(|&x| x == 2));
        assert_eq!(received[4 << 20..], [9, 9]);
    }
}
