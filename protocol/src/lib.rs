//! The pushbench wire: what every transport puts on the network.
//!
//! This crate is pure (no sockets, no runtime) so that the servers, the
//! clients and the harness agree on every byte by construction:
//!
//! - [`Event`]: the one JSON object every transport carries, byte for byte.
//! - [`TransportKind`]: the closed set of transports under comparison.
//! - [`encode`]: the encoders of every transport (SSE frame, WebSocket text
//!   message, poll body, raw-TCP frame). Servers encode each event once per
//!   transport when it enters the log; fan-out only copies shared bytes.
//! - [`sse`]: a complete SSE stream parser following the WHATWG rules.
//! - [`schedule`]: the open-loop schedule (ids and *scheduled* emission times)
//!   shared by the generator and the harness, so the harness knows exactly
//!   which events a client should have seen.

pub mod encode;
pub mod event;
pub mod schedule;
pub mod sse;
pub mod stats;
pub mod transport;

pub use event::{Event, PollResponse};
pub use schedule::Schedule;
pub use transport::{Fanout, TransportKind};

/// Microseconds since the Unix epoch, from the system clock.
///
/// Both the generator's schedule and the clients' receive times use this one
/// clock, so `latency = received_at_us - emitted_at_us` on one machine.
/// (This is the only function here that reads anything outside its arguments.)
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
