//! Criterion micro-benchmarks of the wire: what one event costs to frame for
//! each transport, to parse back out of an SSE stream and to decode, and what
//! recording one latency sample into an HDR histogram costs.
//!
//! These are the per-event CPU costs underneath every end-to-end figure
//! pushbench reports, so a reader can tell whether a transport's cost is in
//! its framing or in its sockets. Run with `cargo bench -p protocol`; figures
//! and their meaning are in `docs/microbench.md`.
//!
//! Groups:
//! - `encode`: canonical JSON, then each transport's framing of that JSON
//!   (servers encode once per event, not per client);
//! - `sse_parse`: `SseParser` throughput over a 1,000-frame stream, and
//!   parse + JSON decode per event (the SSE client's whole job);
//! - `decode`: `Event::from_json` (every client's job);
//! - `histogram`: `record` cost and merging (the recorder's hot path).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use protocol::Event;
use protocol::encode::{payload, poll_body, sse_frame, sse_retry, tcp_frame, ws_message};
use protocol::sse::SseParser;

/// Payload sizes under test: a small notification and a 1 KiB update.
const PAYLOADS: [(&str, usize); 2] = [("64B", 64), ("1KiB", 1024)];

/// Frames in the SSE stream of `sse_parse`.
const STREAM_FRAMES: u64 = 1_000;

/// Read sizes the SSE stream is fed in: a typical small socket read and a
/// large one (hyper hands the body over in chunks of roughly these sizes).
const CHUNKS: [(&str, usize); 2] = [("4KiB", 4 * 1024), ("64KiB", 64 * 1024)];

/// An event as the generator makes it: realistic id and timestamp widths, so
/// integer formatting costs what it does in a run.
fn event(id: u64, payload_bytes: usize) -> Event {
    Event {
        id,
        topic: "t0".to_string(),
        emitted_at_us: 1_732_390_000_123_456 + id * 20_000,
        data: payload(payload_bytes),
    }
}

/// The byte stream a server sends an SSE subscriber: `retry:` once, then one
/// frame per event, as `servers` writes it.
fn sse_stream(frames: u64, payload_bytes: usize) -> Vec<u8> {
    let mut out = sse_retry(3_000).to_vec();
    for id in 1..=frames {
        let json = event(id, payload_bytes).to_json();
        out.extend_from_slice(&sse_frame(id, None, &json));
    }
    out
}

/// Feeds `stream` in `chunk`-byte reads into a fresh parser; returns the
/// number of events and total data bytes seen (so nothing is optimised away).
fn parse_stream(stream: &[u8], chunk: usize) -> (u64, usize) {
    let mut parser = SseParser::new();
    let (mut events, mut bytes) = (0u64, 0usize);
    for read in stream.chunks(chunk) {
        parser.feed_ref(read, |e| {
            events += 1;
            bytes += e.data.len();
        });
    }
    (events, bytes)
}

/// Parses `stream` and decodes every event's JSON, as the SSE client does;
/// returns the number of events decoded and the sum of their ids.
fn parse_and_decode(stream: &[u8], chunk: usize) -> (u64, u64) {
    let mut parser = SseParser::new();
    let (mut events, mut id_sum) = (0u64, 0u64);
    for read in stream.chunks(chunk) {
        parser.feed_ref(read, |e| {
            if let Ok(ev) = Event::from_json(e.data) {
                events += 1;
                id_sum += ev.id;
            }
        });
    }
    (events, id_sum)
}

/// Short runs: the figures are stable to a few percent in 2 s, and the whole
/// suite then finishes in a few minutes on the shared 2-core machine.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (label, bytes) in PAYLOADS {
        let ev = event(123_456, bytes);
        let json = ev.to_json();
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("to_json", label), |b| {
            b.iter(|| black_box(&ev).to_json())
        });
        group.bench_function(BenchmarkId::new("sse_frame", label), |b| {
            b.iter(|| sse_frame(black_box(ev.id), None, black_box(&json)))
        });
        group.bench_function(BenchmarkId::new("sse_frame_typed", label), |b| {
            b.iter(|| sse_frame(black_box(ev.id), Some("notification"), black_box(&json)))
        });
        group.bench_function(BenchmarkId::new("ws_message", label), |b| {
            b.iter(|| ws_message(black_box(&json)))
        });
        group.bench_function(BenchmarkId::new("tcp_frame", label), |b| {
            b.iter(|| tcp_frame(black_box(&json)))
        });
        group.bench_function(BenchmarkId::new("poll_body_1", label), |b| {
            b.iter(|| poll_body([black_box(json.as_bytes())], black_box(ev.id)))
        });
        // A poll answer carrying 16 events: per-element throughput, so
        // criterion's elem/s is per event and time/16 compares with the rest.
        let sixteen: Vec<String> = (0..16)
            .map(|i| event(123_456 + i, bytes).to_json())
            .collect();
        group.throughput(Throughput::Elements(16));
        group.bench_function(BenchmarkId::new("poll_body_16", label), |b| {
            b.iter(|| poll_body(black_box(&sixteen).iter().map(|j| j.as_bytes()), 123_471))
        });
    }
    group.finish();
}

fn bench_sse_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_parse");
    for (label, bytes) in PAYLOADS {
        let stream = sse_stream(STREAM_FRAMES, bytes);
        // Check the stream really yields every event before timing it: a
        // parser that silently dropped frames would look fast.
        for (_, chunk) in CHUNKS {
            assert_eq!(parse_stream(&stream, chunk).0, STREAM_FRAMES);
            assert_eq!(
                parse_and_decode(&stream, chunk),
                (STREAM_FRAMES, STREAM_FRAMES * (STREAM_FRAMES + 1) / 2)
            );
        }
        for (chunk_label, chunk) in CHUNKS {
            group.throughput(Throughput::Bytes(stream.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("parse_{label}"), chunk_label),
                &stream,
                |b, s| b.iter(|| parse_stream(black_box(s), chunk)),
            );
            // Same stream, counted per event: parse + decode is the SSE
            // client's full per-event CPU cost.
            group.throughput(Throughput::Elements(STREAM_FRAMES));
            group.bench_with_input(
                BenchmarkId::new(format!("parse_decode_{label}"), chunk_label),
                &stream,
                |b, s| b.iter(|| parse_and_decode(black_box(s), chunk)),
            );
        }
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (label, bytes) in PAYLOADS {
        let json = event(123_456, bytes).to_json();
        group.bench_function(BenchmarkId::new("from_json", label), |b| {
            b.iter(|| Event::from_json(black_box(&json)))
        });
    }
    group.finish();
}

/// The total histogram's shape (µs, 1 µs to 60 s, 3 significant digits).
fn total_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

/// 1,024 latencies spread log-uniformly over 10 µs .. ~10 s (deterministic
/// xorshift), so `record` sees varied buckets as in a real run rather than
/// one hot counter.
fn varied_values() -> Vec<u64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // 10 µs times 2^(0..20): up to ~10.5 s.
            let exp = (state % 20) as u32;
            let base = 10u64 << exp;
            base + (state >> 32) % base
        })
        .collect()
}

fn bench_histogram(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram");
    group.throughput(Throughput::Elements(1));
    for (label, value) in [("50us", 50u64), ("1.5ms", 1_500), ("45s", 45_000_000)] {
        let mut h = total_histogram();
        group.bench_function(BenchmarkId::new("record", label), |b| {
            b.iter(|| h.record(black_box(value)))
        });
    }

    let values = varied_values();
    group.throughput(Throughput::Elements(values.len() as u64));
    let mut h = total_histogram();
    group.bench_function(BenchmarkId::new("record", "varied"), |b| {
        b.iter(|| {
            for &v in black_box(&values) {
                let _ = h.record(v);
            }
        })
    });
    // The recorder's per-client shape: u32 counts, 1 s range that grows on
    // demand (auto-resize), so the same values cost the same lookups.
    let mut client = Histogram::<u32>::new_with_bounds(1, 1_000_000, 3).expect("valid bounds");
    client.auto(true);
    group.bench_function(BenchmarkId::new("record_u32_auto", "varied"), |b| {
        b.iter(|| {
            for &v in black_box(&values) {
                let _ = client.record(v);
            }
        })
    });

    // Merging one filled histogram into another (end of run, once per
    // client). `add` walks the whole counts array whatever it holds, so
    // adding into the same accumulator again and again costs the same each
    // time (counts saturate, they cannot overflow).
    let mut filled = total_histogram();
    let mut filled_client =
        Histogram::<u32>::new_with_bounds(1, 1_000_000, 3).expect("valid bounds");
    filled_client.auto(true);
    for &v in &values {
        let _ = filled.record(v);
        let _ = filled_client.record(v);
    }
    let mut acc = total_histogram();
    acc.auto(true);
    for &v in values.iter().step_by(3) {
        let _ = acc.record(v);
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("add", "u64_into_u64"), |b| {
        b.iter(|| acc.add(black_box(&filled)))
    });
    // What the harness's recorder does instead (u32 client histogram into
    // the u64 total): walk the recorded values and `record_n` each, so the
    // cost is per distinct recorded value rather than per bucket.
    group.bench_function(BenchmarkId::new("add", "u32_client_iter_recorded"), |b| {
        b.iter(|| {
            for v in black_box(&filled_client).iter_recorded() {
                let _ = acc.record_n(v.value_iterated_to(), u64::from(v.count_at_value()));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_encode, bench_sse_parse, bench_decode, bench_histogram
}
criterion_main!(benches);
