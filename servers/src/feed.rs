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
use crate::hub::EncodedEvent;

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
}

impl Feed {
    /// A cursor on `topic` after `after`, or at the live edge when `None`.
    ///
    /// It subscribes (and marks the wakeup seen) before resolving the live
    /// edge, so nothing can slip between resolving the cursor and waiting;
    /// events generated from here on (e.g. while a WebSocket upgrade
    /// completes) are owed. The max-age clock starts now.
    pub(crate) fn new(state: &AppState, topic: u32, after: Option<u64>) -> Self {
        let mut wake = state.hub().subscribe(topic);
        let live_edge = *wake.borrow_and_update();
        let now = Instant::now();
        let ends_at = state.config().stream_max_age.map(|age| now + age);
        Self {
            topic,
            cursor: after.unwrap_or(live_edge),
            wake,
            owed: Vec::new(),
            last_write: now,
            ends_at,
            shutdown: Box::pin(state.shutdown().clone().cancelled_owned()),
            keepalive: Box::pin(tokio::time::sleep_until(now + state.config().keepalive)),
            max_age: ends_at.map(|t| Box::pin(tokio::time::sleep_until(t))),
            edge: live_edge,
            state: state.clone(),
        }
    }

    /// Waits until the connection has something to do.
    ///
    /// Cancel-safe (a transport may race it against reading its socket):
    /// the cursor only moves when `Next::Events` is returned.
    pub(crate) async fn next(&mut self) -> Next {
        loop {
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

/// Waits for `sleep`, or forever when there is none.
async fn until(sleep: Option<&mut Pin<Box<Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
