//! Unit tests of [`super`] (`progress`).

use super::*;
use crate::results::{Counts, Summary};

fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) < Duration::from_millis(100)
}

#[test]
fn the_run_eta_is_what_is_left_of_the_plan() {
    let s = Duration::from_secs;
    let plan = TransportPlan {
        start: s(1),
        connect: s(2),
        warmup: s(3),
        measure: s(10),
        drain: s(1),
        stop: s(1),
    };
    assert_eq!(plan.total(), s(18));
    let p = Progress::new(Mode::Quiet);
    p.plan(&[plan, plan]);

    let t = p.transport("sse", 4, plan);
    let eta = t.run_eta_at(Instant::now());
    assert!(close(eta, s(36)), "all of both runs: {eta:?}");
    // A timed phase's real length replaces the planned one.
    t.timed_phase(Timed::Measuring, s(12), 4);
    let now = Instant::now();
    let eta = t.run_eta_at(now + s(5));
    assert!(close(eta, s(7 + 1 + 1 + 18)), "{eta:?}");
    // A phase that overruns has nothing left, not a negative time.
    let eta = t.run_eta_at(now + s(60));
    assert!(close(eta, s(2 + 18)), "{eta:?}");
    t.stopping();
    assert!(close(t.remaining_at(Instant::now()), s(1)));
    drop(t);

    let t = p.transport("ws", 4, plan);
    let eta = t.run_eta_at(Instant::now());
    assert!(close(eta, s(18)), "the last run only: {eta:?}");
    // A transport the plan did not announce adds no phantom time.
    drop(t);
    let t = p.transport("tcp", 4, plan);
    assert!(close(t.run_eta_at(Instant::now()), s(18)));
    assert_eq!(t.ordinal, (3, 3));
}

#[test]
fn etas_read_to_the_second() {
    assert_eq!(fmt_eta(Duration::from_millis(65_400)), "1m 5s");
    assert_eq!(fmt_eta(Duration::from_millis(400)), "0s");
}

#[test]
fn summary_names_counts_percentiles_and_problems() {
    let mut r = TransportResult {
        verified: true,
        clients: 100,
        clients_connected: 100,
        window_s: 10.0,
        window_start_us: 1,
        counts: Counts {
            expected: 10_000,
            delivered: 10_000,
            ..Counts::default()
        },
        delivered_per_s: 1000.0,
        latency: Summary {
            p50: 410,
            p99: 1_200,
            ..Summary::default()
        },
        ..TransportResult::empty(protocol::TransportKind::Sse)
    };
    assert_eq!(
        summary_line(&r),
        "[sse] delivered 10000/10000, p50 0.410 ms, p99 1.20 ms, 1000 events/s"
    );
    r.verified = false;
    r.problems = vec!["3 events missing".into()];
    assert!(summary_line(&r).ends_with("NOT VERIFIED: 3 events missing"));
    r.verified = true;
    r.repetition = 2;
    r.server = Some(crate::results::ServerUsage {
        cpu_s: 0.03,
        cpu_resolution_s: 0.01,
        rss_baseline_bytes: 1 << 20,
        rss_idle_bytes: (1 << 20) + 100 * 7 * 1024,
        idle_clients: 100,
        ..Default::default()
    });
    r.fleet.generator_bound = true;
    r.fleet.generator_bound_reasons = vec!["the fleet used 97%".into()];
    let line = summary_line(&r);
    assert!(line.starts_with("[sse #2] delivered"), "{line}");
    assert!(
        line.contains("CPU 3.0 µs/event, RSS +7.0 KiB/conn"),
        "{line}"
    );
    assert!(
        line.ends_with("GENERATOR-BOUND: the fleet used 97%"),
        "{line}"
    );
}
