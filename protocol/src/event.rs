//! The event: one JSON object, identical bytes on every transport.

use serde::{Deserialize, Serialize};

/// One generated event.
///
/// Serialises as `{"id":42,"topic":"t0","emitted_at_us":1732390000123456,"data":"…"}`
/// (field order fixed by declaration order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Contiguous per topic, starting at 1: loss, duplicates and reordering
    /// are detected from ids alone.
    pub id: u64,
    /// Topic name, `t0`, `t1`, ….
    pub topic: String,
    /// When the generator was *scheduled* to emit this event, µs since the
    /// Unix epoch (not when it got round to it: no coordinated omission).
    pub emitted_at_us: u64,
    /// Payload filler of the configured size.
    pub data: String,
}

impl Event {
    /// The canonical JSON encoding (what every transport carries).
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).expect("Event serialises")
    }

    /// Parses the canonical JSON encoding.
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// The body of a `/poll` or `/longpoll` answer: `{"events":[...],"next":N}`.
///
/// `next` is the cursor for the following request (`after=next`): the id of
/// the last event included, or the request's own cursor when nothing was new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResponse {
    /// Events after the request's cursor, oldest first.
    pub events: Vec<Event>,
    /// Cursor for the next request.
    pub next: u64,
}
