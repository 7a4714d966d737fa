//! Server-wide socket counters: bytes in and out, connections accepted and
//! open, accept errors and write timeouts. Every counting stream adds to
//! them; `/stats` reads them.
use std::sync::atomic::AtomicU64;

/// Server-wide socket counters, updated by every [`CountingStream`].
#[derive(Debug, Default)]
pub struct ByteCounters {
    /// Bytes read from client sockets.
    pub bytes_in: AtomicU64,
    /// Bytes written to client sockets.
    pub bytes_out: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections open now (accepted and not yet dropped), both ports.
    pub open: AtomicU64,
    /// Accept calls that failed with something other than a dropped peer
    /// (e.g. `EMFILE`); each one cost a back-off pause.
    pub accept_errors: AtomicU64,
    /// Connections reset because a write made no progress for the write timeout.
    pub write_timeouts: AtomicU64,
}
