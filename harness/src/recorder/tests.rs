//! Unit tests of [`super`] (`recorder`).

use super::*;
use crate::recorder::samples::RAW_SAMPLES;
use crate::recorder::samples::record_n;
use clients::Observer as _;

const T0: u64 = 1_700_000_000_000_000;

fn ev(id: u64, at_us: u64) -> Event {
    Event {
        id,
        topic: "t0".into(),
        emitted_at_us: at_us,
        data: String::new(),
    }
}

/// A recorder whose window covers ids 1..=10 scheduled at T0 + id ms.
fn recorder() -> (Recorder, Arc<Window>, Arc<Presence>) {
    let w = Arc::new(Window::new());
    w.set(T0 + 1_000, T0 + 11_000);
    let c = Presence::new();
    (Recorder::new(w.clone(), c.clone(), 10), w, c)
}

fn feed(r: &mut Recorder, ids: &[u64]) {
    for &id in ids {
        r.event(&ev(id, T0 + id * 1_000), T0 + id * 1_000 + 500);
    }
}

#[test]
fn all_delivered_in_order() {
    let (mut r, _, c) = recorder();
    r.connected(700);
    assert_eq!((c.ever(), c.now()), (1, 1));
    r.disconnected();
    assert_eq!((c.ever(), c.now()), (1, 0), "gone, but it did connect");
    r.disconnected(); // a failed attempt after it: not counted twice
    assert_eq!(c.now(), 0);
    r.connected(900); // a reconnect: still one client, online again
    assert_eq!((c.ever(), c.now()), (1, 1));
    feed(&mut r, &(1..=10).collect::<Vec<_>>());
    let t = r.finish(Some((1, 10)));
    assert_eq!(t.counts.expected, 10);
    assert_eq!(t.counts.delivered, 10);
    assert_eq!(t.counts.missing, 0);
    assert_eq!(
        t.counts.duplicated + t.counts.out_of_order + t.unexpected,
        0
    );
    assert_eq!(t.latency.len(), 10);
    assert_eq!(t.latency.value_at_quantile(0.5), 500);
    assert_eq!(t.connect.len(), 2);
    assert_eq!(t.clients_connected, 1);
}

#[test]
fn a_chat_sender_times_its_own_messages_and_counts_every_event() {
    let w = Arc::new(Window::new());
    w.set(T0 + 1_000, T0 + 11_000);
    let c = Presence::new();
    let mut r = Recorder::new(w.clone(), c.clone(), 10).chat(Some(2));
    let msg = |id: u64, sender: u32, due_us: u64, stamped_us: u64| Event {
        id,
        topic: "t0".into(),
        emitted_at_us: stamped_us,
        data: clients::chat::tag(sender, id, due_us),
    };
    // Own message due in the window, stamped in it: 300 µs round trip.
    r.event(&msg(1, 2, T0 + 2_000, T0 + 2_100), T0 + 2_300);
    // Another sender's message: counted, not timed as ours.
    r.event(&msg(2, 5, T0 + 3_000, T0 + 3_100), T0 + 3_200);
    // Own message due before the end but stamped after it: still counted.
    r.event(&msg(3, 2, T0 + 10_900, T0 + 11_500), T0 + 12_000);
    // A duplicate of it is not timed twice.
    r.event(&msg(3, 2, T0 + 10_900, T0 + 11_500), T0 + 12_500);
    r.add_sends(&clients::chat::SendCounts {
        sent: 3,
        failed: 1,
        first_errors: vec!["publish: status 503".into()],
    });
    let t = r.finish(Some((1, 3)));
    assert_eq!((t.counts.delivered, t.counts.missing), (3, 0));
    assert_eq!((t.counts.duplicated, t.drain_events), (1, 0));
    let chat = t.chat.as_ref().unwrap();
    assert_eq!((chat.senders, chat.sent, chat.echoed), (1, 3, 2));
    assert_eq!((chat.lost(), chat.send_errors), (1, 1));
    assert_eq!(chat.round_trip.len(), 2);
    assert_eq!(chat.round_trip.min(), 300);
    assert_eq!(chat.round_trip.max(), 1_100);
    assert_eq!(t.first_errors, ["publish: status 503"]);

    // A listener merges into the same totals without being a sender.
    let mut listener = Recorder::new(w, c, 10).chat(None);
    listener.event(&msg(1, 2, T0 + 2_000, T0 + 2_100), T0 + 2_400);
    let mut all = Totals::new();
    all.merge(&listener.finish(Some((1, 3))));
    all.merge(&t);
    let chat = all.chat.unwrap();
    assert_eq!((chat.senders, chat.sent, chat.echoed), (1, 3, 2));
    assert_eq!(chat.round_trip.len(), 2);
    assert_eq!(all.counts.delivered, 4);
}

#[test]
fn duplicates_are_counted_once_each_and_not_timed_again() {
    let (mut r, _, _) = recorder();
    feed(&mut r, &[1, 2, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10]);
    let t = r.finish(Some((1, 10)));
    assert_eq!(t.counts.delivered, 10);
    assert_eq!(t.counts.duplicated, 3);
    assert_eq!(t.counts.out_of_order, 0);
    assert_eq!(t.latency.len(), 10);
}

#[test]
fn reordering_is_detected_and_not_confused_with_duplicates() {
    let (mut r, _, _) = recorder();
    // 5 arrives first (the bitmap grows downwards), 3 and 4 after 6.
    feed(&mut r, &[5, 1, 2, 6, 3, 4, 7, 8, 9, 10, 4]);
    let t = r.finish(Some((1, 10)));
    assert_eq!(t.counts.delivered, 10);
    assert_eq!(
        t.counts.out_of_order, 4,
        "1, 2, 3 and 4 came after a higher id"
    );
    assert_eq!(t.counts.duplicated, 1);
    assert_eq!(t.counts.missing, 0);
}

#[test]
fn missing_ids_are_counted_against_the_expected_range() {
    let (mut r, _, _) = recorder();
    feed(&mut r, &[1, 2, 4, 5, 9]);
    let t = r.finish(Some((1, 10)));
    assert_eq!(t.counts.expected, 10);
    assert_eq!(t.counts.delivered, 5);
    assert_eq!(t.counts.missing, 5);
    let (r, _, _) = recorder();
    let t = r.finish(None);
    assert_eq!((t.counts.expected, t.counts.missing), (0, 0));
}

#[test]
fn events_outside_the_window_are_ignored() {
    let w = Arc::new(Window::new());
    let mut r = Recorder::new(w.clone(), Presence::new(), 10);
    // Window not set yet: warm-up.
    r.event(&ev(1, T0), T0 + 10);
    w.set(T0 + 1_000, T0 + 3_000);
    r.event(&ev(2, T0 + 999), T0 + 1_010); // scheduled before: warm-up
    r.event(&ev(3, T0 + 1_000), T0 + 1_010); // start is inclusive
    r.event(&ev(4, T0 + 2_999), T0 + 3_500);
    r.event(&ev(5, T0 + 3_000), T0 + 3_100); // end is exclusive: drain
    let t = r.finish(Some((3, 4)));
    assert_eq!(t.warmup_events, 2);
    assert_eq!(t.drain_events, 1);
    assert_eq!(t.counts.delivered, 2);
    assert_eq!(t.latency.len(), 2);
    assert_eq!(t.latency.max(), 501);
}

#[test]
fn ids_outside_the_expected_range_and_wild_ids_are_unexpected() {
    let (mut r, _, _) = recorder();
    feed(&mut r, &[1, 2, 3]);
    r.event(&ev(u64::MAX / 2, T0 + 5_000), T0 + 5_001);
    let t = r.finish(Some((2, 3)));
    assert_eq!(t.counts.delivered, 2);
    assert_eq!(t.unexpected, 2, "id 1 was not due, and the wild id");
}

#[test]
fn merge_sums_clients() {
    let mut total = Totals::new();
    for missing_tail in [0u64, 3] {
        let (mut r, _, _) = recorder();
        r.connected(1_000);
        r.request();
        r.error("boom");
        feed(&mut r, &(1..=10 - missing_tail).collect::<Vec<_>>());
        total.merge(&r.finish(Some((1, 10))));
    }
    total.add_lost_clients(1, 10);
    assert_eq!(total.clients, 3);
    assert_eq!(total.clients_connected, 2);
    assert_eq!(total.counts.expected, 30);
    assert_eq!(total.counts.delivered, 17);
    assert_eq!(total.counts.missing, 13);
    assert_eq!(total.counts.errors, 2);
    assert_eq!(total.first_errors, vec!["boom", "boom"]);
    assert_eq!(total.latency.len(), 17);
    assert_eq!(total.connect.len(), 2);
}

#[test]
fn samples_fold_beyond_the_raw_limit_and_lose_none() {
    let mut s = Samples::with_capacity(10);
    let n = RAW_SAMPLES as u64 * 2 + 7;
    for v in 1..=n {
        s.record(v);
    }
    assert!(s.folded.is_some(), "folded past {RAW_SAMPLES}");
    assert!(s.raw.len() <= RAW_SAMPLES);
    let t = s.total();
    assert_eq!(t.len(), n);
    assert_eq!((t.min(), t.max()), (1, t.highest_equivalent(n)));
    let mut direct = total_histogram();
    for v in 1..=n {
        record_n(&mut direct, v, 1);
    }
    assert_eq!(
        t, direct,
        "same histogram as recording each sample directly"
    );
}

#[test]
fn latency_never_underflows_and_large_values_fit() {
    let (mut r, _, _) = recorder();
    r.event(&ev(1, T0 + 1_000), T0 + 900); // clock skew: 0, not a wrap-around
    r.event(&ev(2, T0 + 2_000), T0 + 2_000 + 90_000_000); // 90 s: histogram grows
    let t = r.finish(Some((1, 2)));
    assert_eq!(t.latency.min(), 0);
    assert!(t.latency.max() >= 89_900_000);
}

#[test]
fn a_restart_takes_what_was_still_queued_for_a_client_behind() {
    let (mut r, w, _) = recorder();
    feed(&mut r, &[1, 2, 3]);
    w.begin_fault(); // restart: the server dies while 4..=7 are still queued
    // The first event after the fault comes from the new server.
    feed(&mut r, &[9, 10]);
    // The schedule's span starts at 6 (slack before the kill), ends at 8.
    let t = r.finish_with_outages(Some((1, 10)), &[(6, 8, 1)]);
    assert_eq!(
        t.lost_outage, 5,
        "4..=8: queued in the dead server or due while it was down"
    );
    assert_eq!(t.counts.missing, 0);
    // Without the fault's epoch only the schedule's span counts.
    let (mut r, w, _) = recorder();
    feed(&mut r, &[1, 2, 3]);
    w.begin_fault();
    feed(&mut r, &[9, 10]);
    let t = r.finish_with_outages(Some((1, 10)), &[(6, 8, 0)]);
    assert_eq!((t.lost_outage, t.counts.missing), (3, 2));
}

#[test]
fn outage_losses_are_counted_apart_from_missing() {
    let (mut r, w, _) = recorder();
    r.reconnect_attempt();
    r.reconnect_attempt();
    r.reconnected(9_000); // before any fault: in the histogram, no fault's
    w.begin_fault();
    w.begin_fault();
    r.reconnected(250_000);
    // 4..=6 were due while the server was down; 9 is a transport's loss.
    feed(&mut r, &[1, 2, 3, 5, 7, 8, 10]);
    let t = r.finish_with_outages(Some((1, 10)), &[(4, 6, 0), (20, 30, 0)]);
    assert_eq!(t.counts.delivered, 7);
    assert_eq!(t.lost_outage, 2, "4 and 6 (5 arrived after all)");
    assert_eq!(t.counts.missing, 1, "only 9");
    assert_eq!(t.reconnect_attempts, 2);
    assert_eq!(t.reconnect.len(), 2);
    assert_eq!(t.per_fault, vec![(0, 0), (1, 250_000)]);
    assert!(t.reconnect.equivalent(t.reconnect.max(), 250_000));
    let mut total = Totals::new();
    total.merge(&t);
    total.merge(&t);
    assert_eq!((total.lost_outage, total.counts.missing), (4, 2));
    assert_eq!(total.reconnect.len(), 4);
    assert_eq!(total.per_fault, vec![(0, 0), (2, 250_000)]);
}

#[test]
fn deliveries_are_bucketed_per_second_of_receive_time() {
    let w = Arc::new(Window::new());
    w.set(T0, T0 + 10_000_000);
    let mut r = Recorder::new(w, Presence::new(), 10);
    r.event(&ev(1, T0), T0 + 10);
    r.event(&ev(2, T0 + 100), T0 + 999_999);
    r.event(&ev(2, T0 + 100), T0 + 999_999); // a duplicate is not a delivery
    r.event(&ev(3, T0 + 200), T0 + 2_500_000);
    r.event(&ev(4, T0 + 300), T0 + 1_000_000_000_000); // wild clock: not bucketed
    let mut total = Totals::new();
    total.merge(&r.finish(Some((1, 4))));
    assert_eq!(total.delivered_per_s, vec![2, 0, 1]);
}

#[test]
fn id_set_counts_ranges() {
    let mut s = IdSet::new(10);
    for id in [63, 64, 65, 127, 128, 200] {
        assert_eq!(s.insert(id), Some(true));
    }
    assert_eq!(s.insert(64), Some(false));
    assert_eq!(s.count_in(0, 1000), 6);
    assert_eq!(s.count_in(64, 127), 3);
    assert_eq!(s.count_in(65, 65), 1);
    assert_eq!(s.count_in(66, 126), 0);
    assert_eq!(s.count_in(129, 199), 0);
    assert_eq!(s.insert(1), Some(true));
    assert_eq!(s.count_in(0, 1000), 7);
    assert_eq!(s.insert(u64::MAX), None);
}
