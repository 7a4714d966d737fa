//! A complete `text/event-stream` parser following the WHATWG rules
//! (HTML Living Standard, "Server-sent events", *Interpreting an event stream*).
//!
//! Feed it the body's bytes as they arrive, in chunks of any size; it yields
//! each event when its terminating blank line arrives. Rules covered:
//!
//! - a leading UTF-8 byte order mark is stripped once (even split across reads);
//! - lines end at CRLF, LF or CR, and a CRLF split across two reads is one line end;
//! - lines starting with `:` are comments;
//! - `field: value` loses one leading space of the value; a line without a colon
//!   is a field with an empty value;
//! - `data` lines accumulate, joined by LF; the last LF is removed at dispatch;
//! - `event` sets the type (default `message`);
//! - `id` sets the last event ID unless the value contains NUL (then it is ignored);
//!   the last event ID persists across events until changed;
//! - `retry` sets the reconnection time only when the value is all ASCII digits;
//! - a blank line with an empty data buffer dispatches nothing;
//! - an unterminated last event is discarded at end of stream.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type (`message` unless an `event:` field named another).
    pub event_type: String,
    /// The data lines joined by LF.
    pub data: String,
    /// The last event ID at dispatch time (empty if none was ever set).
    pub last_event_id: String,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental SSE stream parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an incomplete line (or of a possible BOM at stream start).
    buf: Vec<u8>,
    /// Whether the byte before `buf` was a CR, so a leading LF ends nothing.
    after_cr: bool,
    /// Whether the stream start (and a possible BOM) has been handled.
    started: bool,
    data: String,
    event_type: String,
    last_event_id: String,
    retry_ms: Option<u64>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event ID seen so far (what a client sends as `Last-Event-ID`).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time set by the latest valid `retry:` field, in ms.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Feeds one chunk of the body and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.feed_with(chunk, |e| out.push(e));
        out
    }

    /// Feeds one chunk and calls `on_event` for each event it completes.
    pub fn feed_with(&mut self, chunk: &[u8], mut on_event: impl FnMut(SseEvent)) {
        self.buf.extend_from_slice(chunk);
        if !self.started {
            let n = self.buf.len().min(BOM.len());
            if self.buf[..n] != BOM[..n] {
                self.started = true;
            } else if n == BOM.len() {
                self.buf.drain(..BOM.len());
                self.started = true;
            } else {
                return; // a possible BOM, still incomplete
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' if self.after_cr && i == start => {
                    // Second half of a CRLF whose CR ended the previous line.
                    self.after_cr = false;
                    start = i + 1;
                }
                b'\n' | b'\r' => {
                    self.after_cr = self.buf[i] == b'\r';
                    let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                    self.process_line(&line, &mut on_event);
                    start = i + 1;
                }
                _ => self.after_cr = false,
            }
            i += 1;
        }
        self.buf.drain(..start);
    }

    /// Ends the stream: an event without its terminating blank line is discarded.
    /// The last event ID and retry time survive (a reconnecting client uses them).
    pub fn finish(&mut self) {
        self.buf.clear();
        self.data.clear();
        self.event_type.clear();
        self.after_cr = false;
        // A new connection is a new stream: a BOM may open it again.
        self.started = false;
    }

    fn process_line(&mut self, line: &str, on_event: &mut impl FnMut(SseEvent)) {
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line.starts_with(':') {
            return; // comment
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_event_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // An absurdly long digit string saturates rather than being ignored.
                self.retry_ms = Some(value.parse().unwrap_or(u64::MAX));
            }
            _ => {} // unknown fields (and rejected id/retry values) are ignored
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent)) {
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event_type = if self.event_type.is_empty() {
            "message".to_string()
        } else {
            std::mem::take(&mut self.event_type)
        };
        on_event(SseEvent {
            event_type,
            data: std::mem::take(&mut self.data),
            last_event_id: self.last_event_id.clone(),
        });
    }
}
