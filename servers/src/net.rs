//! One socket setup for every transport.
//!
//! [`CountingListener`] is the only way connections enter the server. It
//! sets `TCP_NODELAY` on every accepted socket (push traffic is small writes
//! that must leave at once; Nagle would add up to 40 ms to some events and
//! not to others) and wraps each stream in a [`CountingStream`] that adds
//! every byte read and written to the server's [`ByteCounters`]. Because all
//! four transports share this listener, none of them is tuned differently and
//! bytes on the wire are counted the same way for all (WebSocket traffic is
//! counted too: an upgraded connection is still this stream underneath, and
//! so is the raw-TCP floor on its own port). [`accept_loop`] is the one
//! accept loop of both ports: it hands every connection to its own task,
//! tracked so that shutdown can wait for it.
//!
//! Every stream also carries its connection's [`ConnHandle`] (entered in
//! the server's [`Connections`] registry, when the listener has one), and
//! bounds how long a write may make no progress ([`CountingListener::with_write_timeout`]):
//! a client that stops reading gets its connection reset after that long,
//! whatever the transport, rather than holding kernel buffers for ever. A
//! stream whose connection was aborted resets the connection
//! (`SO_LINGER 0`) when it is dropped.
//!
//! Accept errors such as `EMFILE` (out of file descriptors: the machine's
//! hard limit is 20,000 per process) are counted, logged in one clear line
//! at most once a second ([`AcceptErrorLog`]) and retried with an
//! exponential back-off instead of ending the server or spinning; the
//! connections already open keep being served. Nearing the limit is
//! warned about once ([`FdBudget`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conns::{ConnHandle, Connections, Registration};
use crate::counters::ByteCounters;
use crate::limits::{AcceptErrorLog, FdBudget};

/// First pause after a failed accept; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between accept retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A TCP listener that sets `TCP_NODELAY` and counts bytes on every
/// connection it accepts (an axum [`Listener`](axum::serve::Listener)).
#[derive(Debug)]
pub struct CountingListener {
    inner: TcpListener,
    counters: Arc<ByteCounters>,
    backoff: Duration,
    registry: Option<Arc<Connections>>,
    write_timeout: Option<Duration>,
    budget: Option<Arc<FdBudget>>,
    error_log: AcceptErrorLog,
}

impl CountingListener {
    /// Wraps a bound listener; its connections feed `counters`. No
    /// registry and no write timeout until set.
    pub fn new(inner: TcpListener, counters: Arc<ByteCounters>) -> Self {
        Self {
            inner,
            counters,
            backoff: MIN_BACKOFF,
            registry: None,
            write_timeout: None,
            budget: None,
            error_log: AcceptErrorLog::default(),
        }
    }

    /// Warns once when the open connections near `budget`'s limit, and
    /// names the limit in accept-error lines.
    pub fn with_budget(mut self, budget: Arc<FdBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Enters every accepted connection in `registry` while it is open.
    pub fn with_registry(mut self, registry: Arc<Connections>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Resets a connection whose write makes no progress for `timeout`
    /// (the client stopped reading), counting it in
    /// [`ByteCounters::write_timeouts`].
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    /// The next connection, with `TCP_NODELAY` set and its bytes counted.
    /// Never fails: accept errors are counted, logged and retried after a
    /// back-off (see the module documentation).
    pub async fn accept(&mut self) -> (CountingStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    self.backoff = MIN_BACKOFF;
                    if let Err(e) = stream.set_nodelay(true) {
                        // The peer may already be gone; the connection fails on its own.
                        tracing::debug!(%addr, "set TCP_NODELAY failed: {e}");
                    }
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let open = self.counters.open.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(budget) = &self.budget {
                        budget.check_open(open);
                    }
                    let registration = match &self.registry {
                        Some(registry) => registry.register(),
                        None => Registration::detached(),
                    };
                    registration
                        .handle()
                        .sink()
                        .bind(stream.as_raw_fd(), self.counters.clone());
                    return (
                        CountingStream {
                            inner: stream,
                            counters: self.counters.clone(),
                            registration,
                            stall: WriteStall::new(self.write_timeout),
                        },
                        addr,
                    );
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Typically EMFILE/ENFILE: retrying at once would spin; waiting
                    // lets open connections close and free descriptors.
                    self.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                    let open = self.counters.open.load(Ordering::Relaxed);
                    let limit = self.budget.as_ref().and_then(|b| b.limit());
                    if let Some(line) =
                        self.error_log
                            .failed(&e, open, limit, self.backoff, Instant::now())
                    {
                        tracing::error!("{line}");
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Accepts connections on `listener` until `shutdown` fires, running
/// `serve(stream)` for each on its own task, spawned on `tracker` so that
/// shutdown can wait for the connections to finish.
pub async fn accept_loop<F, Fut>(
    mut listener: CountingListener,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    mut serve: F,
) where
    F: FnMut(CountingStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, _addr) = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        tracker.spawn(serve(stream));
    }
}

/// Errors that concern one connection that died before we accepted it, not
/// the listener: retry at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Lets axum drive the listener too ([`axum::serve()`]), for callers that
/// serve [`app`](crate::app) themselves.
impl axum::serve::Listener for CountingListener {
    type Io = CountingStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        CountingListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        CountingListener::local_addr(self)
    }
}

/// A TCP stream that adds the bytes it reads and writes to [`ByteCounters`],
/// bounds how long a write may stall, and resets the connection when
/// dropped after an abort.
#[derive(Debug)]
pub struct CountingStream {
    inner: TcpStream,
    counters: Arc<ByteCounters>,
    /// Unregisters the connection when the stream is dropped.
    registration: Registration,
    stall: WriteStall,
}

impl CountingStream {
    /// This connection's handle (to abort it, or mark what it streams).
    pub fn conn(&self) -> &Arc<ConnHandle> {
        self.registration.handle()
    }

    /// Applies the write-stall bound to a write's result: a write that
    /// made progress disarms it, one that is pending arms it (at the first
    /// pending write since the last progress) and fails with `TimedOut`
    /// once it has been armed for the write timeout.
    fn stall_check(
        &mut self,
        res: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match res {
            Poll::Ready(Ok(n)) => {
                self.counters
                    .bytes_out
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.stall.progress();
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.stall.expired(cx) {
                    self.counters.write_timeouts.fetch_add(1, Ordering::Relaxed);
                    // Reset, not close: the kernel drops the unsent backlog now.
                    self.conn().abort();
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client accepted no bytes for the write timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for CountingStream {
    fn drop(&mut self) {
        // Before the descriptor closes (the fields drop after this body):
        // no direct write may reach it, or a later socket that reuses it.
        self.conn().sink().close();
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
        if self.conn().is_aborted() {
            // An RST rather than a FIN: the abrupt close the admin drop
            // promises, and no orphaned socket holding unsent bytes. Zero
            // linger never blocks the close.
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
        }
    }
}

/// The write-stall bound of one stream. Costs nothing while writes
/// complete: the timer is allocated at the first stall and only re-armed
/// when a write is refused after progress.
#[derive(Debug)]
struct WriteStall {
    timeout: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl WriteStall {
    fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            timer: None,
            armed: false,
        }
    }

    fn progress(&mut self) {
        self.armed = false;
    }

    /// Called when a write is pending: arms the timer if needed and says
    /// whether it has run out (registering `cx` to be woken when it does).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.timeout else {
            return false;
        };
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + timeout;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        self.timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
    }
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.counters
                .bytes_in
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }
}

impl CountingStream {
    /// Before any write or flush: the rest of a half-written direct frame
    /// goes first, so the stream stays well-formed ([`crate::direct`]); a
    /// write (`taking`) also takes a parked socket back from direct writes.
    /// Stalls count towards the write timeout like any write.
    fn write_pending(&mut self, cx: &mut Context<'_>, taking: bool) -> Poll<io::Result<()>> {
        let Self {
            inner,
            registration,
            ..
        } = self;
        let (written, res) = registration
            .handle()
            .sink()
            .write_pending(taking, |buf| Pin::new(&mut *inner).poll_write(cx, buf));
        if written > 0 {
            // Counted and disarming the stall bound like any write.
            let _ = self.stall_check(Poll::Ready(Ok(written)), cx);
        }
        match res {
            Poll::Pending => self.stall_check(Poll::Pending, cx).map_ok(|_| ()),
            ready => ready,
        }
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.write_pending(cx, true))?;
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.stall_check(res, cx)
    }

    // Forwarded so hyper keeps writing headers and body chunks with one
    // `writev` instead of flattening them into a copy.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.write_pending(cx, true))?;
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.stall_check(res, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// A completed flush is also where a parked direct-write socket takes
    /// effect: the protocol library above holds no bytes now.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.write_pending(cx, false))?;
        std::task::ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.conn().sink().flushed();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.write_pending(cx, true))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn accepted_streams_have_nodelay_and_count_both_ways() {
        let counters = Arc::new(ByteCounters::default());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut listener = CountingListener::new(tcp, counters.clone());
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = tokio::time::timeout(Duration::from_secs(2), listener.accept())
            .await
            .unwrap();
        assert!(server.inner.nodelay().unwrap());
        client.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        server.write_all(b"0123456789").await.unwrap();
        let mut buf = [0u8; 10];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(counters.bytes_in.load(Ordering::Relaxed), 5);
        assert_eq!(counters.bytes_out.load(Ordering::Relaxed), 10);
        assert_eq!(counters.accepted.load(Ordering::Relaxed), 1);
        assert_eq!(counters.open.load(Ordering::Relaxed), 1);
        drop(server);
        assert_eq!(counters.open.load(Ordering::Relaxed), 0);
    }
}
