//! Encoder round trips: whatever a server encodes, the matching decoder (our
//! SSE parser, serde, `tcp_decode`) gives back unchanged, however the bytes are
//! split into reads.

use protocol::encode::{self, event_json, payload, poll_body, sse_frame, tcp_decode, tcp_frame};
use protocol::sse::{SseEvent, SseParser};
use protocol::{Event, PollResponse};

fn sample(id: u64) -> Event {
    Event {
        id,
        topic: "t0".to_string(),
        emitted_at_us: 1_732_390_000_123_456 + id * 50_000,
        data: payload(16 + id as usize % 7),
    }
}

#[test]
fn sse_frame_of_default_type_parses_back() {
    let ev = sample(42);
    let json = ev.to_json();
    let mut p = SseParser::new();
    let events = p.feed(&sse_frame(ev.id, None, &json));
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].event_type, "message",
        "default type: onmessage sees it"
    );
    assert_eq!(events[0].data, json);
    assert_eq!(events[0].last_event_id, "42");
    assert_eq!(Event::from_json(&events[0].data).unwrap(), ev);
    assert_eq!(p.last_event_id(), "42");
}

#[test]
fn sse_frame_with_event_type_parses_back() {
    let ev = sample(7);
    let json = ev.to_json();
    let events = SseParser::new().feed(&sse_frame(ev.id, Some("status"), &json));
    assert_eq!(
        events,
        [SseEvent {
            event_type: "status".to_string(),
            data: json,
            last_event_id: "7".to_string(),
        }]
    );
    assert_eq!(Event::from_json(&events[0].data).unwrap(), ev);
}

#[test]
fn retry_and_comment_frames_parse_as_no_event() {
    let mut p = SseParser::new();
    assert!(p.feed(&encode::sse_retry(200)).is_empty());
    assert_eq!(p.retry_ms(), Some(200));
    assert!(p.feed(&encode::sse_comment("keep-alive")).is_empty());
    // Neither disturbs the event that follows.
    let json = sample(1).to_json();
    assert_eq!(p.feed(&sse_frame(1, None, &json))[0].data, json);
}

#[test]
fn poll_body_parses_as_poll_response() {
    let events: Vec<Event> = (5..9).map(sample).collect();
    let jsons: Vec<String> = events.iter().map(Event::to_json).collect();
    let body = poll_body(jsons.iter().map(|j| j.as_bytes()), 8);
    let parsed: PollResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed, PollResponse { events, next: 8 });

    // The empty answer keeps the request's cursor.
    let body = poll_body(std::iter::empty(), 4);
    let parsed: PollResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        parsed,
        PollResponse {
            events: vec![],
            next: 4
        }
    );
}

#[test]
fn event_json_matches_the_documented_shape() {
    let json = event_json(42, "t0", 1_732_390_000_123_456, "xx");
    assert_eq!(
        json,
        r#"{"id":42,"topic":"t0","emitted_at_us":1732390000123456,"data":"xx"}"#
    );
    assert_eq!(encode::ws_message(&json), json.as_bytes());
}

#[test]
fn tcp_frames_round_trip_and_incomplete_input_waits() {
    let jsons: Vec<String> = (1..=3).map(|id| sample(id).to_json()).collect();
    let mut wire = Vec::new();
    for j in &jsons {
        wire.extend_from_slice(&tcp_frame(j));
    }
    let mut rest = &wire[..];
    let mut decoded = Vec::new();
    while let Some((body, used)) = tcp_decode(rest) {
        decoded.push(std::str::from_utf8(body).unwrap().to_string());
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    assert_eq!(decoded, jsons);

    // Every strict prefix of one frame is incomplete, never a wrong frame.
    let frame = tcp_frame(&jsons[0]);
    for n in 0..frame.len() {
        assert_eq!(tcp_decode(&frame[..n]), None, "prefix of {n} bytes");
    }
    assert_eq!(tcp_decode(&frame), Some((jsons[0].as_bytes(), frame.len())));
    // An empty body is a valid frame.
    assert_eq!(
        tcp_decode(&tcp_frame("")),
        Some((&b""[..], encode::TCP_PREFIX_LEN))
    );
}

/// A multi-event stream as a server writes it: BOM-free, `retry:` first, a
/// keep-alive comment, default and named types, and non-ASCII data.
fn stream() -> (Vec<u8>, Vec<SseEvent>) {
    let mut wire = encode::sse_retry(200).to_vec();
    let mut expected = Vec::new();
    for id in 1..=20u64 {
        let mut ev = sample(id);
        if id % 5 == 0 {
            ev.data = "é€😀 ünïcödé".to_string(); // multi-byte splits
        }
        let json = ev.to_json();
        let ty = (id % 3 == 0).then_some("status");
        wire.extend_from_slice(&sse_frame(id, ty, &json));
        if id % 4 == 0 {
            wire.extend_from_slice(&encode::sse_comment("keep-alive"));
        }
        expected.push(SseEvent {
            event_type: ty.unwrap_or("message").to_string(),
            data: json,
            last_event_id: id.to_string(),
        });
    }
    (wire, expected)
}

fn parse_split(wire: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        out.extend(p.feed(&wire[from..cut]));
        from = cut;
    }
    assert_eq!(p.retry_ms(), Some(200));
    out
}

#[test]
fn any_chunking_gives_the_same_events() {
    let (wire, expected) = stream();
    assert_eq!(parse_split(&wire, &[]), expected, "one read");
    let every_byte: Vec<usize> = (1..wire.len()).collect();
    assert_eq!(parse_split(&wire, &every_byte), expected, "byte by byte");

    // Random split points from a fixed-seed LCG (Knuth's MMIX constants), so a
    // failure reproduces exactly.
    let mut state: u64 = 0x5EED;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    for round in 0..200 {
        let n_cuts = (next() % 40) as usize;
        let mut cuts: Vec<usize> = (0..n_cuts)
            .map(|_| (next() % wire.len() as u64) as usize)
            .collect();
        cuts.sort_unstable();
        assert_eq!(
            parse_split(&wire, &cuts),
            expected,
            "round {round}, cuts {cuts:?}"
        );
    }
}

#[test]
fn crlf_framed_stream_split_everywhere_gives_the_same_events() {
    // Other servers (and proxies) may use CRLF: every split of a CRLF must
    // still be one line end.
    let (wire, expected) = stream();
    let crlf: Vec<u8> = wire
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect();
    for cut in 0..=crlf.len() {
        assert_eq!(parse_split(&crlf, &[cut]), expected, "cut at {cut}");
    }
}
