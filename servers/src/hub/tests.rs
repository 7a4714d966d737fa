//! Unit tests of [`super`] (`hub`).

use super::*;

fn hub(rate: f64, topics: u32, history: usize, start_epoch_us: u64) -> Hub {
    Hub::new(HubConfig {
        schedule: Schedule {
            start_epoch_us,
            rate,
            topics,
        },
        payload_bytes: 8,
        history,
        event_type: None,
        groups: Vec::new(),
        fed: false,
    })
}

fn emit_n(h: &Hub, n: u64) {
    for seq in h.groups[0].2..h.groups[0].2 + n {
        h.emit(0, h.config.schedule.slot(seq));
    }
}

fn ids(h: &Hub, topic: u32, after: u64, limit: usize) -> (Vec<u64>, u64) {
    let mut out = Vec::new();
    let next = h.read(topic, after, limit, &mut out);
    (out.iter().map(|e| e.id).collect(), next)
}

#[test]
fn encodings_share_one_frame_and_match_the_protocol() {
    let e = EncodedEvent::new(7, 123, "t0", "xx", Some("status"));
    let json = protocol::encode::event_json(7, "t0", 123, "xx");
    assert_eq!(e.json, json.as_bytes());
    assert_eq!(e.ws.as_str(), json);
    assert_eq!(e.sse, protocol::encode::sse_frame(7, Some("status"), &json));
    assert_eq!(e.tcp, protocol::encode::tcp_frame(&json));
    // The JSON is a view into the frame, not a second allocation.
    let frame = e.sse.as_ptr_range();
    assert!(frame.contains(&e.json.as_ptr()));
}

#[test]
fn reads_are_cursor_arithmetic_with_gaps_and_limits() {
    let h = hub(10.0, 1, 4, protocol::now_us() + 3_600_000_000);
    assert_eq!(h.latest(0), 0);
    emit_n(&h, 6); // ids 1..=6, the log keeps 3..=6
    assert_eq!(h.latest(0), 6);
    assert_eq!(ids(&h, 0, 0, 100), (vec![3, 4, 5, 6], 6)); // gap: from oldest held
    assert_eq!(ids(&h, 0, 4, 100), (vec![5, 6], 6));
    assert_eq!(ids(&h, 0, 3, 2), (vec![4, 5], 5));
    assert_eq!(ids(&h, 0, 6, 100), (vec![], 6));
    assert_eq!(ids(&h, 0, 99, 100), (vec![], 99)); // ahead: wait, no error
    assert_eq!(ids(&h, 0, u64::MAX, 100), (vec![], u64::MAX));
}

#[test]
fn topics_are_interleaved_with_ids_contiguous_per_topic() {
    let h = hub(10.0, 3, 100, protocol::now_us() + 3_600_000_000);
    emit_n(&h, 7); // t0: 1,2,3  t1: 1,2  t2: 1,2
    assert_eq!(ids(&h, 0, 0, 100).0, vec![1, 2, 3]);
    assert_eq!(ids(&h, 1, 0, 100).0, vec![1, 2]);
    assert_eq!(h.topic("t2"), Some(2));
    assert_eq!(h.topic("t3"), None);
}

#[test]
fn a_restarted_hub_continues_the_schedules_ids() {
    // Started 10 s ago at 10/s on 2 topics: ~100 events per topic are past.
    let start = protocol::now_us() - 10_000_000;
    let h = hub(10.0, 2, 100, start);
    let live = h.latest(1);
    assert!((98..=101).contains(&live), "{live}");
    emit_n(&h, 2);
    assert_eq!(ids(&h, 1, 0, 100).0, vec![live + 1]);
    let slot = h.config.schedule.slot(h.groups[0].2);
    assert!(slot.at_us >= start + 9_000_000);
}

#[test]
fn topic_groups_run_their_own_rates_on_consecutive_topics() {
    let start = protocol::now_us();
    let h = Hub::new(HubConfig {
        schedule: Schedule {
            start_epoch_us: start,
            rate: 0.0,
            topics: 3,
        },
        payload_bytes: 8,
        history: 100,
        event_type: None,
        groups: vec![
            TopicGroup {
                name: "idle".into(),
                topics: 2,
                rate: 0.0,
                event_type: None,
            },
            TopicGroup {
                name: "hot".into(),
                topics: 1,
                rate: 1000.0,
                event_type: None,
            },
        ],
        fed: false,
    });
    assert_eq!(h.topics(), 3);
    assert_eq!(h.topic("t2"), Some(2));
    let shutdown = CancellationToken::new();
    let generator = Arc::new(h);
    let thread = generator.clone().spawn_generator(shutdown.clone()).unwrap();
    // 1,000 events/s on t2: a few dozen within a generous bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while generator.latest(2) < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    shutdown.cancel();
    thread.join().unwrap();
    let hot = generator.latest(2);
    assert!(hot >= 20, "the hot topic got {hot} events");
    assert_eq!(
        (generator.latest(0), generator.latest(1)),
        (0, 0),
        "rate 0: idle"
    );
    let mut out = Vec::new();
    generator.read(2, 0, 1, &mut out);
    let ev = protocol::Event::from_json(out[0].ws.as_str()).unwrap();
    assert_eq!(ev.topic, "t2", "the group's topics keep their global names");
}

#[test]
fn published_events_interleave_with_generated_ones_without_gaps() {
    let h = hub(10.0, 2, 100, protocol::now_us() + 3_600_000_000);
    emit_n(&h, 2); // t0: 1, t1: 1
    let before = protocol::now_us();
    assert_eq!(h.publish(0, "hi \"there\"\n"), Some(2));
    assert_eq!(h.latest(0), 2);
    assert_eq!(h.latest(1), 1, "other topics are untouched");
    h.emit(0, h.config.schedule.slot(h.groups[0].2 + 2)); // t0's next slot
    assert_eq!(ids(&h, 0, 0, 100).0, vec![1, 2, 3]);
    let mut out = Vec::new();
    h.read(0, 1, 1, &mut out);
    let ev = protocol::Event::from_json(out[0].ws.as_str()).unwrap();
    assert_eq!(ev.data, "hi \"there\"\n");
    assert!(ev.emitted_at_us >= before && ev.emitted_at_us <= protocol::now_us());
    assert_eq!(h.events_published(), 1);
    assert_eq!(h.events_generated(), 3);
}

#[test]
fn concurrent_publishers_get_distinct_contiguous_ids() {
    let h = Arc::new(hub(10.0, 1, 10_000, protocol::now_us() + 3_600_000_000));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|_| h.publish(0, "x").unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=2000).collect::<Vec<_>>());
    assert_eq!(h.latest(0), 2000, "the live edge never moves back");
    assert_eq!(ids(&h, 0, 0, 10_000).0, all);
}

#[tokio::test]
async fn generator_emits_on_schedule_and_stops_at_shutdown() {
    let h = Arc::new(hub(200.0, 1, 100, protocol::now_us()));
    let stop = CancellationToken::new();
    let thread = h.clone().spawn_generator(stop.clone()).unwrap();
    let mut rx = h.subscribe(0);
    tokio::time::timeout(Duration::from_secs(2), async {
        while *rx.borrow_and_update() < 10 {
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("10 events within 2 s at 200/s");
    let mut out = Vec::new();
    h.read(0, 0, 100, &mut out);
    for e in &out {
        let ev = protocol::Event::from_json(e.ws.as_str()).unwrap();
        assert_eq!(ev.emitted_at_us, h.config.schedule.scheduled_at(0, ev.id));
    }
    let (_, lag_max) = h.generator_lag_us();
    assert!(lag_max < 100_000, "generator late by {lag_max} µs");
    stop.cancel();
    let stopped = std::time::Instant::now();
    thread.join().unwrap();
    assert!(stopped.elapsed() < Duration::from_millis(500));
}
