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
//! - `id` sets the last event ID buffer unless the value contains NUL (then it is
//!   ignored); the buffer persists across events until changed;
//! - the last event ID (what a reconnecting client sends as `Last-Event-ID`) takes
//!   the buffer's value only when an event is dispatched (a blank line), so an id
//!   of an event cut off by a disconnect is never claimed as received;
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

/// A dispatched event, borrowed from the parser (see [`SseParser::feed_ref`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    /// The event type (`message` unless an `event:` field named another).
    pub event_type: &'a str,
    /// The data lines joined by LF.
    pub data: &'a str,
    /// The last event ID at dispatch time (empty if none was ever set).
    pub last_event_id: &'a str,
}

impl SseEventRef<'_> {
    /// An owned copy.
    pub fn to_owned(self) -> SseEvent {
        SseEvent {
            event_type: self.event_type.to_string(),
            data: self.data.to_string(),
            last_event_id: self.last_event_id.to_string(),
        }
    }
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
    /// The WHATWG "last event ID buffer": set by `id:` lines as they arrive.
    id_buffer: String,
    /// The WHATWG "last event ID string": `id_buffer` as of the latest dispatch.
    last_event_id: String,
    retry_ms: Option<u64>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event ID as of the latest complete event (what a client sends as
    /// `Last-Event-ID` when it reconnects).
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
        self.feed_ref(chunk, |e| on_event(e.to_owned()));
    }

    /// Feeds one chunk and calls `on_event` with a view of each event it
    /// completes: the client's hot path, which allocates nothing per event.
    ///
    /// Complete lines are parsed where they lie in `chunk`; only the bytes
    /// of a line still incomplete at the end of the chunk are copied (into
    /// the parser, until its end arrives). Lines are checked as UTF-8 and
    /// borrowed; only a line with invalid bytes is copied (lossily).
    pub fn feed_ref(&mut self, chunk: &[u8], mut on_event: impl FnMut(SseEventRef<'_>)) {
        if self.started {
            self.feed_lines(chunk, &mut on_event);
            return;
        }
        // Stream start: gather bytes until a BOM is ruled in or out.
        self.buf.extend_from_slice(chunk);
        let n = self.buf.len().min(BOM.len());
        let skip = if self.buf[..n] != BOM[..n] {
            0
        } else if n == BOM.len() {
            BOM.len()
        } else {
            return; // a possible BOM, still incomplete
        };
        self.started = true;
        let pending = std::mem::take(&mut self.buf);
        self.feed_lines(&pending[skip..], &mut on_event);
    }

    /// Splits `rest` into lines (CRLF, LF or CR), joining the first one with
    /// the incomplete line kept from the previous chunk.
    fn feed_lines(&mut self, mut rest: &[u8], on_event: &mut impl FnMut(SseEventRef<'_>)) {
        loop {
            if self.after_cr && !rest.is_empty() {
                // The LF of a CRLF whose CR ended the previous line ends nothing.
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                }
                self.after_cr = false;
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.buf.extend_from_slice(rest);
                return;
            };
            self.after_cr = rest[end] == b'\r';
            if self.buf.is_empty() {
                self.line(&rest[..end], on_event);
            } else {
                self.buf.extend_from_slice(&rest[..end]);
                // Taken out so the line can borrow it while `line` borrows
                // `self`; put back (emptied) to keep its allocation.
                let mut line = std::mem::take(&mut self.buf);
                self.line(&line, on_event);
                line.clear();
                self.buf = line;
            }
            rest = &rest[end + 1..];
        }
    }

    fn line(&mut self, bytes: &[u8], on_event: &mut impl FnMut(SseEventRef<'_>)) {
        match std::str::from_utf8(bytes) {
            Ok(line) => self.process_line(line, on_event),
            // Invalid bytes become U+FFFD, as a browser's decoder does.
            Err(_) => self.process_line(&String::from_utf8_lossy(bytes), on_event),
        }
    }

    /// Ends the stream: an event without its terminating blank line is discarded.
    /// The last event ID and retry time survive (a reconnecting client uses them).
    pub fn finish(&mut self) {
        self.buf.clear();
        self.data.clear();
        self.event_type.clear();
        // An `id:` of the discarded event must not leak into the next stream (the
        // client never got that event); like browsers, the next stream's buffer
        // starts from the last ID actually dispatched.
        self.id_buffer.clone_from(&self.last_event_id);
        self.after_cr = false;
        // A new connection is a new stream: a BOM may open it again.
        self.started = false;
    }

    fn process_line(&mut self, line: &str, on_event: &mut impl FnMut(SseEventRef<'_>)) {
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
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.id_buffer.clear();
                self.id_buffer.push_str(value);
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // An absurdly long digit string saturates rather than being ignored.
                self.retry_ms = Some(value.parse().unwrap_or(u64::MAX));
            }
            _ => {} // unknown fields (and rejected id/retry values) are ignored
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEventRef<'_>)) {
        // WHATWG step 1 happens even when no event follows (`id: 5` + blank line).
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if !self.data.is_empty() {
            let data = self.data.strip_suffix('\n').unwrap_or(&self.data);
            let event_type = if self.event_type.is_empty() {
                "message"
            } else {
                &self.event_type
            };
            on_event(SseEventRef {
                event_type,
                data,
                last_event_id: &self.last_event_id,
            });
        }
        // Cleared, not dropped: the next event reuses the allocations.
        self.data.clear();
        self.event_type.clear();
    }
}

#[cfg(test)]
mod tests {
    //! One test per rule of WHATWG "Interpreting an event stream".

    use super::*;

    /// Feeds every chunk into a fresh parser and returns all dispatched events.
    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        chunks.iter().flat_map(|c| p.feed(c)).collect()
    }

    fn parse(stream: &str) -> Vec<SseEvent> {
        parse_chunks(&[stream.as_bytes()])
    }

    fn datas(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn leading_bom_is_stripped() {
        let events = parse_chunks(&[b"\xEF\xBB\xBFdata: a\n\n"]);
        assert_eq!(datas(&events), ["a"]);
    }

    #[test]
    fn leading_bom_split_across_reads_is_stripped() {
        let events = parse_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]);
        assert_eq!(datas(&events), ["a"]);
        // Split after two bytes, with the field in the same read as the last one.
        let events = parse_chunks(&[b"\xEF\xBB", b"\xBFdata: b\n", b"\n"]);
        assert_eq!(datas(&events), ["b"]);
    }

    #[test]
    fn bom_is_stripped_only_at_stream_start() {
        // A second BOM is part of the next line's field name ("\u{FEFF}data"),
        // an unknown field, so that event has no data and is not dispatched.
        let events = parse_chunks(&[b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n"]);
        assert_eq!(datas(&events), ["a"]);
        // Same when the stray BOM comes in a later read.
        let events = parse_chunks(&[b"data: a\n\n", b"\xEF\xBB\xBFdata: b\n\ndata: c\n\n"]);
        assert_eq!(datas(&events), ["a", "c"]);
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines() {
        for (stream, name) in [
            ("data: a\n\ndata: b\n\n", "LF"),
            ("data: a\r\rdata: b\r\r", "CR"),
            ("data: a\r\n\r\ndata: b\r\n\r\n", "CRLF"),
            ("data: a\r\n\rdata: b\n\r\n", "mixed"),
        ] {
            assert_eq!(datas(&parse(stream)), ["a", "b"], "{name}");
        }
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_end() {
        // If the LF of "data: a\r" + "\n..." were a second line end, it would be
        // a blank line and dispatch "a" before "data: b" joined it.
        let events = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(datas(&events), ["a\nb"]);
        // A CR then a separate CR is two line ends: dispatch.
        let events = parse_chunks(&[b"data: a\r", b"\rdata: b\r\r"]);
        assert_eq!(datas(&events), ["a", "b"]);
    }

    #[test]
    fn comment_lines_are_ignored() {
        let events = parse(": keep-alive\n\n:\ndata: a\n: inside an event\ndata: b\n\n");
        assert_eq!(datas(&events), ["a\nb"]);
        assert_eq!(events[0].event_type, "message");
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        // "data" alone appends an empty line; "event" alone resets to the default type.
        let events = parse("data\ndata\n\nevent\ndata: x\n\n");
        assert_eq!(datas(&events), ["\n", "x"]);
        assert_eq!(events[1].event_type, "message");
    }

    #[test]
    fn only_one_leading_space_is_stripped() {
        let events = parse("data:a\n\ndata: b\n\ndata:  c \n\ndata:\tt\n\n");
        assert_eq!(datas(&events), ["a", "b", " c ", "\tt"]);
    }

    #[test]
    fn multi_line_data_is_joined_by_lf() {
        let events = parse("data: one\ndata: two\ndata:\ndata: four\n\n");
        assert_eq!(datas(&events), ["one\ntwo\n\nfour"]);
        // A lone empty data line is an event with empty data (not "no event").
        let events = parse("data:\n\n");
        assert_eq!(datas(&events), [""]);
    }

    #[test]
    fn event_type_defaults_to_message_and_can_be_named() {
        let events = parse("data: a\n\nevent: status\ndata: b\n\ndata: c\n\n");
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        // The named type applies to its own event only.
        assert_eq!(types, ["message", "status", "message"]);
        assert_eq!(datas(&events), ["a", "b", "c"]);
    }

    #[test]
    fn id_containing_nul_is_ignored() {
        let mut p = SseParser::new();
        let events = p.feed(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n");
        let ids: Vec<&str> = events.iter().map(|e| e.last_event_id.as_str()).collect();
        assert_eq!(ids, ["1", "1"]);
        assert_eq!(p.last_event_id(), "1");
    }

    #[test]
    fn id_persists_across_events_and_empty_id_resets_it() {
        let mut p = SseParser::new();
        let events = p.feed(
            b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 9\ndata: d\n\nid:\ndata: e\n\n",
        );
        let ids: Vec<&str> = events.iter().map(|e| e.last_event_id.as_str()).collect();
        assert_eq!(ids, ["7", "7", "", "9", ""]);
        assert_eq!(p.last_event_id(), "");
        // An id with no data still updates the last event ID at the blank line.
        p.feed(b"id: 12\n\n");
        assert_eq!(p.last_event_id(), "12");
    }

    #[test]
    fn retry_accepts_only_ascii_digits() {
        let mut p = SseParser::new();
        assert_eq!(p.retry_ms(), None);
        p.feed(b"retry: 1500\n\n");
        assert_eq!(p.retry_ms(), Some(1500));
        for bad in [
            "retry: 15s",
            "retry: -1",
            "retry: 1.5",
            "retry:  200",
            "retry: 2 ",
            "retry",
        ] {
            p.feed(format!("{bad}\n\n").as_bytes());
            assert_eq!(p.retry_ms(), Some(1500), "{bad:?} must be ignored");
        }
        p.feed(b"retry:300\n");
        assert_eq!(
            p.retry_ms(),
            Some(300),
            "retry applies without waiting for a blank line"
        );
        // A retry line is not an event.
        assert!(p.feed(b"\n").is_empty());
    }

    #[test]
    fn blank_line_without_data_dispatches_nothing() {
        assert!(parse("\n\n\r\n\r\r").is_empty());
        // Type and id alone do not make an event, and the type does not leak on.
        let events = parse("event: status\nid: 3\n\ndata: a\n\n");
        assert_eq!(datas(&events), ["a"]);
        assert_eq!(events[0].event_type, "message");
        assert_eq!(events[0].last_event_id, "3");
    }

    #[test]
    fn unterminated_last_event_is_discarded_at_finish() {
        let mut p = SseParser::new();
        let events = p.feed(b"retry: 250\nid: 1\ndata: a\n\nid: 2\nevent: status\ndata: b\n");
        assert_eq!(datas(&events), ["a"]);
        p.finish();
        // Event 2 never arrived whole: resuming must ask for what follows 1, not 2.
        assert_eq!(p.last_event_id(), "1");
        assert_eq!(p.retry_ms(), Some(250), "retry survives the reconnect");
        // The next stream starts clean: no leftover data, type or id.
        let events = p.feed(b"data: c\n\n");
        assert_eq!(datas(&events), ["c"]);
        assert_eq!(events[0].event_type, "message");
        assert_eq!(events[0].last_event_id, "1");
        // A partial line (no line end at all) is dropped too.
        p.feed(b"data: half");
        p.finish();
        assert!(p.feed(b"\n").is_empty());
        // And a new stream may open with a BOM again.
        p.finish();
        assert_eq!(datas(&p.feed(b"\xEF\xBB\xBFdata: d\n\n")), ["d"]);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let events = parse("foo: bar\ndata: a\nData: X\nDATA: Y\n data: Z\nid : 5\n\n");
        assert_eq!(datas(&events), ["a"]);
        assert_eq!(events[0].last_event_id, "");
        // A line of only unknown fields is not an event.
        assert!(parse("foo: bar\n\n").is_empty());
    }

    #[test]
    fn utf8_split_across_reads_is_decoded() {
        let text = "é€😀"; // 2-, 3- and 4-byte sequences
        let stream = format!("data: {text}\n\n");
        let bytes = stream.as_bytes();
        for split in 0..=bytes.len() {
            let events = parse_chunks(&[&bytes[..split], &bytes[split..]]);
            assert_eq!(datas(&events), [text], "split at {split}");
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(datas(&parse_chunks(&one_by_one)), [text]);
        // Invalid bytes become U+FFFD rather than failing the stream.
        assert_eq!(datas(&parse_chunks(&[b"data: \xFF\n\n"])), ["\u{FFFD}"]);
    }
}
