//! The cursor every streaming transport (SSE, WebSocket, raw TCP) runs on.
//!
//! A [`Feed`] is one connection's position in one topic's log plus its
//! wakeup. [`Feed::next`] says what the connection must do next: write
//! everything it owes (all of it, in one write), send a keep-alive after a
//! silence, or end (server shutdown, the stream reached
//! [`stream_max_age`](crate::ServerConfig::stream_max_age), or the client
//! fell further behind than the log holds). The transports
//! differ only in how they put those bytes on the wire, so the cursor, the
//! wakeup and the end conditions exist once.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::AppState;
use crate::conns::ConnHandle;
use crate::direct::{Fanout, Framing};
use crate::event::EncodedEvent;

/// Owed events beyond this keep their buffer only until the next wake-up, so
/// a connection that once caught up on a large backlog does not keep that
/// memory for the rest of its life.
const KEEP_OWED_CAPACITY: usize = 256;

/// Why a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The server is shutting down.
    Shutdown,
    /// The stream reached `stream_max_age`.
    MaxAge,
    /// The client fell further behind than the log holds: events it was
    /// owed are gone. Its connection is to be aborted (already counted as
    /// `closed_slow`).
    Slow,
}

/// What a streaming connection must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Write [`Feed::owed`] (then call [`Feed::written`]).
    Events,
    /// Nothing was written for `keepalive`: send the transport's keep-alive
    /// (then call [`Feed::written`]).
    KeepAlive,
    /// Caught up, with direct fan-out: flush the socket (through the
    /// protocol library, so its buffers are empty), which parks it for
    /// direct writes ([`crate::direct`]), then call [`Feed::next`] again.
    /// SSE needs no explicit flush: hyper flushes when the body waits.
    Flush,
    /// End the stream.
    End(End),
}

/// One connection's cursor over one topic.
///
/// The futures it waits on besides the wakeup (shutdown, keep-alive, max
/// age) live as long as the connection: creating them per wake-up would
/// register a timer and take the shutdown token's lock once per event per
/// connection, which is exactly the per-client work per event the hub is
/// built to avoid.
#[derive(Debug)]
pub(crate) struct Feed {
    state: AppState,
    topic: u32,
    /// Id of the last event handed out (or the starting cursor).
    cursor: u64,
    wake: watch::Receiver<u64>,
    /// Reused between wake-ups so a steady stream allocates nothing per event.
    owed: Vec<Arc<EncodedEvent>>,
    last_write: Instant,
    ends_at: Option<Instant>,
    /// Resolves when the server shuts down.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Armed at or before `last_write + keepalive`; re-armed lazily when it
    /// fires early (writes do not touch it).
    keepalive: Pin<Box<Sleep>>,
    /// Fires at `ends_at` (never armed when there is no max age).
    max_age: Option<Pin<Box<Sleep>>>,
    /// The live edge when the connection started. Skipping events up to it
    /// is a resume gap (a client resuming from a cursor older than the log,
    /// or than a restarted server's first event, sees the gap and counts
    /// it); skipping later ones means this connection fell behind.
    edge: u64,
    /// Direct fan-out to this connection's socket, when on.
    direct: Option<Direct>,
}

/// A feed's entry among its topic's direct-write subscribers.
#[derive(Debug)]
struct Direct {
    conn: Arc<ConnHandle>,
    key: usize,
    /// A park was requested: wait for the sink rather than the topic.
    parking: bool,
}

impl Feed {
    /// A cursor on `topic` after `after`, or at the live edge when `None`,
    /// with direct fan-out to `direct`'s socket in its framing when the
    /// server's fan-out is [`Fanout::Direct`] and the socket can take it.
    ///
    /// It subscribes (and marks the wakeup seen) before resolving the live
    /// edge, so nothing can slip between resolving the cursor and waiting;
    /// events generated from here on (e.g. while a WebSocket upgrade
    /// completes) are owed. The max-age clock starts now.
    pub(crate) fn new(
        state: &AppState,
        topic: u32,
        after: Option<u64>,
        direct: Option<(&Arc<ConnHandle>, Framing)>,
    ) -> Self {
        let direct = direct
            .filter(|_| state.config().fanout == Fanout::Direct)
            .filter(|(conn, framing)| conn.sink().start(*framing))
            .map(|(conn, _)| Direct {
                conn: conn.clone(),
                key: state.hub().attach(topic, conn.clone()),
                parking: false,
            });
        let mut wake = state.hub().subscribe(topic);
        let live_edge = *wake.borrow_and_update();
        let now = Instant::now();
        let ends_at = state.config().stream_max_age.map(|age| now + age);
        Self {
            topic,
            // Clamped or kept as [`Hub::resume_cursor`] says.
            cursor: state.hub().resume_cursor(topic, after, live_edge),
            wake,
            owed: Vec::new(),
            last_write: now,
            ends_at,
            shutdown: Box::pin(state.shutdown().clone().cancelled_owned()),
            keepalive: Box::pin(tokio::time::sleep_until(now + state.config().keepalive)),
            max_age: ends_at.map(|t| Box::pin(tokio::time::sleep_until(t))),
            edge: live_edge,
            state: state.clone(),
            direct,
        }
    }

    /// Waits until the connection has something to do.
    ///
    /// Cancel-safe (a transport may race it against reading its socket):
    /// the cursor only moves when `Next::Events` is returned.
    pub(crate) async fn next(&mut self) -> Next {
        loop {
            if self.direct.as_ref().is_some_and(|d| d.parking) {
                self.wait_parked().await;
            }
            if self.state.shutdown().is_cancelled() {
                return Next::End(End::Shutdown);
            }
            if self.ends_at.is_some_and(|t| Instant::now() >= t) {
                return Next::End(End::MaxAge);
            }
            self.clear_owed();
            let before = self.cursor;
            self.cursor =
                self.state
                    .hub()
                    .read(self.topic, self.cursor, usize::MAX, &mut self.owed);
            if let Some(first) = self.owed.first() {
                // Events were skipped that this connection saw generated.
                if first.id > before.max(self.edge).saturating_add(1) {
                    // Skipping ahead would hide the loss from everyone but
                    // the client; closing makes the server's side of it
                    // visible (`closed_slow`), and the client's resume
                    // still counts the gap.
                    self.clear_owed();
                    self.state.stats().slow_backlog();
                    return Next::End(End::Slow);
                }
                return Next::Events;
            }
            if let Some(direct) = &mut self.direct {
                let keepalive = self.state.config().keepalive;
                let now = Instant::now();
                if now >= self.last_write + keepalive {
                    self.keepalive.as_mut().reset(now + keepalive);
                    return Next::KeepAlive;
                }
                direct.conn.sink().request_park(self.cursor);
                direct.parking = true;
                return Next::Flush;
            }
            tokio::select! {
                biased;
                () = self.shutdown.as_mut() => return Next::End(End::Shutdown),
                () = until(self.max_age.as_mut()) => return Next::End(End::MaxAge),
                changed = self.wake.changed() => if changed.is_err() {
                    // The hub is gone: only happens as the server stops.
                    return Next::End(End::Shutdown);
                },
                () = self.keepalive.as_mut() => {
                    let keepalive = self.state.config().keepalive;
                    let due = self.last_write + keepalive;
                    let now = Instant::now();
                    if now >= due {
                        // Re-armed for after the keep-alive the caller now writes.
                        self.keepalive.as_mut().reset(now + keepalive);
                        return Next::KeepAlive;
                    }
                    // Something was written since it was armed: wait the rest.
                    self.keepalive.as_mut().reset(due);
                }
            }
        }
    }

    /// Waits while the socket is parked for direct writes, until the task
    /// must act (an appender handed the socket back or an event came before
    /// the park took effect, a keep-alive may be due, the stream must end),
    /// then takes the socket back at the cursor the direct writes reached.
    /// Cancel-safe: nothing moves until the wait is over.
    async fn wait_parked(&mut self) {
        let Some(direct) = &self.direct else { return };
        let sink = direct.conn.sink();
        let keepalive_fired = tokio::select! {
            biased;
            () = self.shutdown.as_mut() => false,
            () = until(self.max_age.as_mut()) => false,
            () = sink.notified() => false,
            () = self.keepalive.as_mut() => true,
        };
        let (reached, wrote) = sink.take_back();
        if let Some(reached) = reached {
            self.cursor = self.cursor.max(reached);
        }
        if wrote {
            // Direct writes keep the connection alive; when exactly the
            // last one happened is not tracked, so the silence before the
            // next keep-alive counts from now (at most twice `keepalive`).
            self.last_write = Instant::now();
        }
        if keepalive_fired {
            // Due now unless something was written since it was armed;
            // `next` sends the keep-alive (and re-arms) when it is due.
            let keepalive = self.state.config().keepalive;
            self.keepalive.as_mut().reset(self.last_write + keepalive);
        }
        if let Some(direct) = &mut self.direct {
            direct.parking = false;
        }
    }

    /// The events owed after [`Next::Events`], oldest first, ids contiguous.
    pub(crate) fn owed(&self) -> &[Arc<EncodedEvent>] {
        &self.owed
    }

    /// Records that the events or keep-alive asked for were written, which
    /// restarts the keep-alive clock and releases the owed events.
    pub(crate) fn written(&mut self) {
        self.last_write = Instant::now();
        self.clear_owed();
    }

    fn clear_owed(&mut self) {
        self.owed.clear();
        if self.owed.capacity() > KEEP_OWED_CAPACITY {
            self.owed = Vec::new();
        }
    }
}

impl Drop for Feed {
    /// Leaves the topic's direct-write subscribers; the task keeps the
    /// socket for whatever it writes last (an end of body, a Close frame).
    fn drop(&mut self) {
        if let Some(direct) = &self.direct {
            direct.conn.sink().stop();
            self.state.hub().detach(self.topic, direct.key);
        }
    }
}

/// Waits for `sleep`, or forever when there is none.
async fn until(sleep: Option<&mut Pin<Box<Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
