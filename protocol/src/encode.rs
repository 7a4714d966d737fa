//! Encoders of every transport.
//!
//! Each takes the event's canonical JSON (encoded once by the server when the
//! event enters its log) and wraps it in the transport's framing.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Event;

/// Encodes an SSE frame: `id: <id>`, an optional `event: <type>` line, and
/// `data: <json>`, ended by a blank line.
///
/// Events of the default type (`event_type == None`) carry no `event:` line,
/// so a browser's `EventSource.onmessage` sees them. `json` must not contain
/// a line break (compact JSON never does).
pub fn sse_frame(id: u64, event_type: Option<&str>, json: &str) -> Bytes {
    debug_assert!(!json.contains(['\n', '\r']), "SSE data must be one line");
    let mut buf = BytesMut::with_capacity(json.len() + 40);
    buf.put_slice(b"id: ");
    buf.put_slice(id.to_string().as_bytes());
    buf.put_u8(b'\n');
    if let Some(ty) = event_type {
        debug_assert!(!ty.contains(['\n', '\r']));
        buf.put_slice(b"event: ");
        buf.put_slice(ty.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_slice(b"data: ");
    buf.put_slice(json.as_bytes());
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// Encodes the `retry:` field sent once at the start of an SSE stream.
pub fn sse_retry(retry_ms: u64) -> Bytes {
    Bytes::from(format!("retry: {retry_ms}\n\n"))
}

/// Encodes an SSE comment line (used as keep-alive while idle).
pub fn sse_comment(text: &str) -> Bytes {
    debug_assert!(!text.contains(['\n', '\r']));
    Bytes::from(format!(": {text}\n\n"))
}

/// Encodes a WebSocket text message: the event JSON itself.
pub fn ws_message(json: &str) -> Bytes {
    Bytes::copy_from_slice(json.as_bytes())
}

/// Encodes a poll answer `{"events":[...],"next":N}` from already-encoded
/// event JSON objects, oldest first.
pub fn poll_body<'a>(events: impl IntoIterator<Item = &'a [u8]>, next: u64) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_slice(b"{\"events\":[");
    for (i, json) in events.into_iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(json);
    }
    buf.put_slice(b"],\"next\":");
    buf.put_slice(next.to_string().as_bytes());
    buf.put_u8(b'}');
    buf.freeze()
}

/// Length of the big-endian length prefix of a raw-TCP frame.
pub const TCP_PREFIX_LEN: usize = 4;

/// Encodes a raw-TCP frame: a 4-byte big-endian length, then the event JSON.
pub fn tcp_frame(json: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(TCP_PREFIX_LEN + json.len());
    buf.put_u32(json.len() as u32);
    buf.put_slice(json.as_bytes());
    buf.freeze()
}

/// Decodes the next complete raw-TCP frame at the start of `buf`, returning
/// the JSON bytes and the number of bytes consumed, or `None` if incomplete.
pub fn tcp_decode(buf: &[u8]) -> Option<(&[u8], usize)> {
    let prefix: [u8; TCP_PREFIX_LEN] = buf.get(..TCP_PREFIX_LEN)?.try_into().ok()?;
    let len = u32::from_be_bytes(prefix) as usize;
    let body = buf.get(TCP_PREFIX_LEN..TCP_PREFIX_LEN + len)?;
    Some((body, TCP_PREFIX_LEN + len))
}

/// Makes the payload filler of `bytes` bytes for an event (ASCII, no escaping needed).
pub fn payload(bytes: usize) -> String {
    "x".repeat(bytes)
}

/// Convenience: the canonical JSON of a freshly built event.
pub fn event_json(id: u64, topic: &str, emitted_at_us: u64, data: &str) -> String {
    Event {
        id,
        topic: topic.to_string(),
        emitted_at_us,
        data: data.to_string(),
    }
    .to_json()
}
