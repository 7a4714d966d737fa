//! Property-based fuzzing of the SSE parser (stable Rust, proptest).
//!
//! The parser reads bytes from servers we do not control (a target, a
//! proxy, a broken stream), in whatever chunks the network delivers. For
//! any bytes: it never panics, and how the bytes are chunked never changes
//! what it dispatches. For streams pushbench's own encoder writes: every
//! event comes back exactly, however the stream is cut.
//!
//! Depth: `PROPTEST_CASES` (default 256 here; `scripts/fuzz.sh` runs far
//! more). The seed corpus, `tests/corpus/sse/`, holds streams that once
//! mattered (CRLF, BOM, NUL in an id, a bad `retry:`, invalid UTF-8, an
//! unterminated event); each is checked whole and byte by byte.

use proptest::prelude::*;
use protocol::sse::{SseEvent, SseParser};

/// Parses `bytes` fed in pieces cut at `cuts` (positions, any order).
fn parse_cut(bytes: &[u8], cuts: &[usize]) -> (Vec<SseEvent>, String, Option<u64>) {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    let mut p = SseParser::new();
    let mut events = Vec::new();
    for w in points.windows(2) {
        events.extend(p.feed(&bytes[w[0]..w[1]]));
    }
    p.finish();
    (events, p.last_event_id().to_string(), p.retry_ms())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    /// Any bytes, any chunking: no panic, and the same events as whole.
    #[test]
    fn chunking_never_changes_what_is_dispatched(
        bytes in proptest::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                // The parser's own vocabulary, so fields and line ends are common.
                2 => Just(b'\n'), 1 => Just(b'\r'), 2 => Just(b':'), 1 => Just(b' '),
            ],
            0..600,
        ),
        words in proptest::collection::vec(
            prop::sample::select(vec!["data", "id", "event", "retry", "data: x\n\n", "\r\n"]),
            0..12,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = bytes;
        for (i, w) in words.iter().enumerate() {
            let at = (i * 37) % (stream.len() + 1);
            stream.splice(at..at, w.bytes());
        }
        let whole = parse_cut(&stream, &[]);
        let cut = parse_cut(&stream, &cuts);
        prop_assert_eq!(whole, cut);
    }

    /// What the encoder writes, the parser reads back, however it is cut.
    #[test]
    fn encoded_events_round_trip_through_any_chunking(
        events in proptest::collection::vec(
            (any::<u64>(), proptest::option::of("[a-z]{1,12}"), "[^\r\n]{0,80}"),
            1..20,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..60),
    ) {
        let mut stream = protocol::encode::sse_retry(1500).to_vec();
        for (id, ty, data) in &events {
            stream.extend_from_slice(&protocol::encode::sse_comment("keep-alive"));
            stream.extend_from_slice(&protocol::encode::sse_frame(*id, ty.as_deref(), data));
        }
        let (got, last_id, retry) = parse_cut(&stream, &cuts);
        prop_assert_eq!(retry, Some(1500));
        prop_assert_eq!(got.len(), events.len());
        for (g, (id, ty, data)) in got.iter().zip(&events) {
            prop_assert_eq!(&g.data, data);
            prop_assert_eq!(&g.last_event_id, &id.to_string());
            prop_assert_eq!(g.event_type.as_str(), ty.as_deref().unwrap_or("message"));
        }
        prop_assert_eq!(last_id, events.last().unwrap().0.to_string());
    }
}

#[test]
fn the_seed_corpus_parses_the_same_whole_and_byte_by_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sse");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let every_byte: Vec<usize> = (0..bytes.len()).collect();
        assert_eq!(
            parse_cut(&bytes, &[]),
            parse_cut(&bytes, &every_byte),
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 5, "the corpus is in {}", dir.display());
}
