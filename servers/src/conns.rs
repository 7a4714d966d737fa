//! The registry of open connections, so that a fault can be injected into
//! them (`POST /admin/drop`) and a connection can be closed abruptly.
//!
//! Every accepted connection (both ports) gets a [`ConnHandle`] at accept
//! time and is entered in [`Connections`] until its socket is dropped. The
//! registry's lock is taken only then, at connect and at disconnect, and by
//! the admin routes: never per event or per request. What a connection is
//! doing right now (idle HTTP keep-alive, an SSE stream, a held long poll, a
//! WebSocket, a raw-TCP stream) is an atomic in its handle, set by the
//! transport when a stream starts and cleared when it ends.
//!
//! **Aborting** ([`ConnHandle::abort`]) is how a connection is closed
//! *abruptly*: no SSE end of body, no WebSocket Close frame. It sets a flag
//! and wakes whichever task owns the socket (the HTTP connection task, or
//! the upgraded WebSocket's, or the raw-TCP one), which then drops the
//! socket; the socket sees the flag as it is dropped and sets `SO_LINGER 0`,
//! so the kernel sends a TCP RST and frees the unsent bytes at once instead
//! of keeping them in an orphaned socket (a slow reader's few megabytes).
//! Admin drops, slow readers and stalled writes all end this way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::direct::Sink;

/// One accepted connection's control: what it streams now, and whether it
/// must be aborted. Shared by the socket, the task that owns it, and the
/// registry.
#[derive(Debug)]
pub struct ConnHandle {
    id: u64,
    /// `IDLE` or an [`Open`] as `u8` (what the connection streams now).
    kind: AtomicU8,
    aborted: AtomicBool,
    wake: Notify,
    /// Direct writes of the hub's fan-out to this connection's socket.
    sink: Sink,
}

/// [`ConnHandle::kind`] of a connection that streams nothing.
const IDLE: u8 = u8::MAX;

impl ConnHandle {
    fn new(id: u64) -> Self {
        Self {
            id,
            kind: AtomicU8::new(IDLE),
            aborted: AtomicBool::new(false),
            wake: Notify::new(),
            sink: Sink::default(),
        }
    }

    /// This connection's direct-write state ([`crate::direct`]).
    pub(crate) fn sink(&self) -> &Sink {
        &self.sink
    }

    /// A handle that belongs to no registry (connections accepted by a
    /// listener without one).
    pub(crate) fn detached() -> Arc<Self> {
        Arc::new(Self::new(0))
    }

    /// Closes the connection abruptly: its owner drops the socket, which
    /// resets it (`SO_LINGER 0`). Idempotent.
    pub fn abort(&self) {
        if !self.aborted.swap(true, Ordering::AcqRel) {
            self.wake.notify_waiters();
        }
    }

    /// Whether [`abort`](Self::abort) was called.
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// Completes once the connection is aborted. Create it once per
    /// connection (not per loop turn): registering the waiter takes the
    /// `Notify`'s lock.
    pub async fn aborted(&self) {
        let notified = self.wake.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so an abort in between still wakes us.
        notified.as_mut().enable();
        if self.is_aborted() {
            return;
        }
        notified.await;
    }

    /// What this connection streams now (`None`: nothing).
    pub(crate) fn kind(&self) -> Option<Open> {
        Open::from_u8(self.kind.load(Ordering::Relaxed))
    }

    /// Marks what this connection streams (`None`: nothing any more).
    pub(crate) fn set_kind(&self, kind: Option<Open>) {
        self.kind
            .store(kind.map_or(IDLE, |k| k as u8), Ordering::Relaxed);
    }
}

/// All open connections of one server, by id.
#[derive(Debug, Default)]
pub struct Connections {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnHandle>>>,
}

/// Removes its connection from the registry when dropped (the socket's end).
#[derive(Debug)]
pub(crate) struct Registration {
    handle: Arc<ConnHandle>,
    registry: Option<Arc<Connections>>,
}

impl Registration {
    /// A handle in no registry.
    pub(crate) fn detached() -> Self {
        Self {
            handle: ConnHandle::detached(),
            registry: None,
        }
    }

    /// This connection's handle.
    pub(crate) fn handle(&self) -> &Arc<ConnHandle> {
        &self.handle
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(registry) = &self.registry {
            registry.lock().remove(&self.handle.id);
        }
    }
}

/// Which streaming connections a drop applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every streaming connection (SSE, WebSocket, held long polls, raw TCP).
    All,
    /// One transport's.
    Only(Open),
}

impl Filter {
    fn matches(self, kind: Option<Open>) -> bool {
        match (self, kind) {
            (_, None) => false,
            (Filter::All, Some(_)) => true,
            (Filter::Only(want), Some(k)) => want == k,
        }
    }
}

/// What `POST /admin/drop` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropReport {
    /// Connections aborted.
    pub dropped: u64,
    /// Matching streaming connections open just before.
    pub open_before: u64,
}

/// Connections open now by what they do (`GET /admin/connections`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCounts {
    /// Every accepted connection still open (both ports).
    pub total: u64,
    /// HTTP connections between requests, or answering a short poll.
    pub idle: u64,
    /// SSE streams.
    pub sse: u64,
    /// WebSocket connections.
    pub ws: u64,
    /// Long polls being held.
    pub longpoll: u64,
    /// Raw-TCP streams.
    pub tcp: u64,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnHandle>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a new connection; it leaves when the registration is dropped.
    pub(crate) fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(ConnHandle::new(id));
        self.lock().insert(id, handle.clone());
        Registration {
            handle,
            registry: Some(self.clone()),
        }
    }

    /// Counts the open connections by what they do now.
    pub fn counts(&self) -> ConnectionCounts {
        let open = self.lock();
        let mut counts = ConnectionCounts {
            total: open.len() as u64,
            ..ConnectionCounts::default()
        };
        for handle in open.values() {
            let slot = match handle.kind() {
                None => &mut counts.idle,
                Some(Open::Sse) => &mut counts.sse,
                Some(Open::Ws) => &mut counts.ws,
                Some(Open::LongPoll) => &mut counts.longpoll,
                Some(Open::Tcp) => &mut counts.tcp,
            };
            *slot += 1;
        }
        counts
    }

    /// Aborts `fraction` (0..=1, rounded to the nearest count) of the open
    /// streaming connections that `filter` selects.
    ///
    /// The choice is deterministic and spread out: the matching connections
    /// in accept order, every k-th of them, so a drop of half hits every
    /// other connection rather than the oldest half.
    pub fn drop_fraction(&self, fraction: f64, filter: Filter) -> DropReport {
        let mut matching: Vec<Arc<ConnHandle>> = self
            .lock()
            .values()
            .filter(|h| !h.is_aborted() && filter.matches(h.kind()))
            .cloned()
            .collect();
        // Abort outside the lock: a woken task may drop its socket (and
        // take the lock to unregister) before we are done.
        matching.sort_unstable_by_key(|h| h.id);
        let chosen = pick(matching.len(), fraction);
        for &i in &chosen {
            matching[i].abort();
        }
        DropReport {
            dropped: chosen.len() as u64,
            open_before: matching.len() as u64,
        }
    }
}

/// Indices of `round(fraction × n)` of `0..n`, evenly spread.
fn pick(n: usize, fraction: f64) -> Vec<usize> {
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let k = ((n as f64) * fraction).round() as usize;
    // i·n/k for i < k: distinct because n/k >= 1, and all below n.
    (0..k.min(n)).map(|i| i * n / k).collect()
}

/// What a streaming connection streams: which open-connection gauge of
/// `/stats` it counts in, and what an admin drop may select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// An SSE stream.
    Sse,
    /// A WebSocket connection.
    Ws,
    /// A long poll being held.
    LongPoll,
    /// A raw-TCP stream.
    Tcp,
}

impl Open {
    /// Every kind, in discriminant order.
    const ALL: [Open; 4] = [Open::Sse, Open::Ws, Open::LongPoll, Open::Tcp];

    /// The kind whose discriminant is `v`, if any.
    pub(crate) fn from_u8(v: u8) -> Option<Open> {
        Self::ALL.get(usize::from(v)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_spread_distinct_and_rounded() {
        assert_eq!(pick(10, 0.5), [0, 2, 4, 6, 8]);
        assert_eq!(pick(10, 1.0), (0..10).collect::<Vec<_>>());
        assert_eq!(pick(10, 0.0), Vec::<usize>::new());
        assert_eq!(pick(3, 0.5), [0, 1]); // 1.5 rounds to 2
        assert_eq!(pick(0, 1.0), Vec::<usize>::new());
        assert_eq!(pick(4, f64::NAN), Vec::<usize>::new());
        assert_eq!(pick(4, 7.0).len(), 4);
        for n in 0..50 {
            for f in [0.1, 0.25, 0.33, 0.5, 0.9] {
                let p = pick(n, f);
                assert_eq!(p.len(), ((n as f64) * f).round() as usize);
                assert!(p.windows(2).all(|w| w[0] < w[1]) && p.iter().all(|&i| i < n));
            }
        }
    }

    #[tokio::test]
    async fn the_registry_counts_kinds_drops_a_fraction_and_forgets_closed_ones() {
        let registry = Arc::new(Connections::default());
        let regs: Vec<Registration> = (0..6).map(|_| registry.register()).collect();
        for r in &regs[..4] {
            r.handle().set_kind(Some(Open::Sse));
        }
        regs[4].handle().set_kind(Some(Open::Ws));
        let counts = registry.counts();
        assert_eq!(
            (counts.total, counts.idle, counts.sse, counts.ws),
            (6, 1, 4, 1)
        );

        let waiter = {
            let h = regs[0].handle().clone();
            tokio::spawn(async move { h.aborted().await })
        };
        let report = registry.drop_fraction(0.5, Filter::Only(Open::Sse));
        assert_eq!(
            report,
            DropReport {
                dropped: 2,
                open_before: 4
            }
        );
        let aborted: Vec<bool> = regs.iter().map(|r| r.handle().is_aborted()).collect();
        assert_eq!(aborted, [true, false, true, false, false, false]);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("an abort wakes the owner")
            .unwrap();
        // Aborted connections are not chosen twice; idle ones never.
        let report = registry.drop_fraction(1.0, Filter::All);
        assert_eq!(
            report,
            DropReport {
                dropped: 3,
                open_before: 3
            }
        );
        drop(regs);
        assert_eq!(registry.counts(), ConnectionCounts::default());
    }
}
