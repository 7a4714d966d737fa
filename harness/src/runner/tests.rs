//! Unit tests of the runner's steps.

use super::*;
use crate::probe::ProcUsage;
use crate::recorder::Presence;
use crate::recorder::Recorder;
use crate::recorder::Totals;
use crate::recorder::Window;
use crate::results::Sample;
use crate::results::Summary;
use crate::runner::costs::Costs;
use crate::runner::costs::generator_bound_reasons;
use crate::runner::faults::outage_spans;
use crate::runner::verify::build_result;
use crate::runner::watch::Snapshot;
use crate::server_process::ServerStats;
use clients::Observer as _;
use protocol::Schedule;
use protocol::TransportKind;
use std::sync::Arc;

fn totals(delivered_ids: &[u64], connected: bool) -> Totals {
    let w = Arc::new(Window::new());
    w.set(1_000_000, 2_000_000);
    let mut r = Recorder::new(w, Presence::new(), 10);
    if connected {
        r.connected(100);
    }
    for &id in delivered_ids {
        let at = 1_000_000 + (id - 1) * 100_000;
        r.event(
            &protocol::Event {
                id,
                topic: "t0".into(),
                emitted_at_us: at,
                data: String::new(),
            },
            at + 300,
        );
    }
    r.finish(Some((1, 10)))
}

fn schedule() -> Schedule {
    Schedule {
        start_epoch_us: 1_000_000,
        rate: 10.0,
        topics: 1,
    }
}

#[test]
fn a_clean_transport_verifies() {
    let t = totals(&(1..=10).collect::<Vec<_>>(), true);
    let r = build_result(
        TransportKind::Ws,
        &Scenario::default(),
        &schedule(),
        1_000_000,
        2_000_000,
        &t,
        vec![],
    );
    assert!(r.verified, "{:?}", r.problems);
    assert_eq!(r.window_s, 1.0);
    assert_eq!(r.delivered_per_s, 10.0);
    assert_eq!(r.latency.p50, 300);
}

#[test]
fn losses_and_absent_clients_fail_verification_with_reasons() {
    let t = totals(&[1, 2, 3], false);
    let r = build_result(
        TransportKind::Sse,
        &Scenario::default(),
        &schedule(),
        1_000_000,
        2_000_000,
        &t,
        vec![],
    );
    assert!(!r.verified);
    let all = r.problems.join("; ");
    assert!(all.contains("1 of 1 clients never connected"), "{all}");
    assert!(all.contains("7 of 10 expected events missing"), "{all}");
}

#[test]
fn an_empty_window_at_a_positive_rate_is_not_verified() {
    let t = Totals::new();
    let r = build_result(
        TransportKind::Sse,
        &Scenario::default(),
        &schedule(),
        0,
        0,
        &t,
        vec![],
    );
    assert!(!r.verified);
    assert!(
        r.problems[0].contains("no events were due"),
        "{:?}",
        r.problems
    );
}

#[test]
fn repetitions_alternate_the_order() {
    use TransportKind::*;
    let ts = [Sse, Ws, Tcp];
    assert_eq!(repetition_order(&ts, 1), vec![Sse, Ws, Tcp]);
    assert_eq!(repetition_order(&ts, 2), vec![Tcp, Ws, Sse]);
    assert_eq!(repetition_order(&ts, 3), vec![Sse, Ws, Tcp]);
}

#[test]
fn a_saturated_or_lagging_fleet_is_generator_bound() {
    let calm = Summary {
        count: 1000,
        p99: 1_500,
        ..Summary::default()
    };
    assert!(generator_bound_reasons(2.0, 10.0, 1, &calm).is_empty());
    let busy = generator_bound_reasons(9.5, 10.0, 1, &calm);
    assert_eq!(busy.len(), 1);
    assert!(busy[0].contains("95% of its 1 core"), "{busy:?}");
    // The same CPU over two cores is under half their capacity.
    assert!(generator_bound_reasons(9.5, 10.0, 2, &calm).is_empty());
    let late = Summary {
        count: 1000,
        p99: 35_000,
        ..Summary::default()
    };
    let why = generator_bound_reasons(0.1, 10.0, 1, &late);
    assert!(why[0].contains("35.0 ms late at p99"), "{why:?}");
    // No window, no cores, no samples: nothing to judge, nothing claimed.
    assert!(generator_bound_reasons(5.0, 0.0, 0, &Summary::default()).is_empty());
}

fn sample(t_us: u64, server_rss: u64, tcp: u64, fleet_rss: u64) -> Sample {
    Sample {
        t_us,
        server_rss_bytes: Some(server_rss),
        server_cpu_s: None,
        fleet_rss_bytes: Some(fleet_rss),
        fleet_cpu_s: None,
        tcp_mem_bytes: Some(tcp),
        clients_connected: None,
    }
}

fn stats(bytes_in: u64, bytes_out: u64, polls: u64) -> ServerStats {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/stats-reply.example.json")).unwrap();
    v["bytes_in"] = bytes_in.into();
    v["bytes_out"] = bytes_out.into();
    v["connections_accepted"] = 10.into();
    // 0: the CPU comes from /proc, as for a server that does not report it.
    v["process_cpu_ns"] = 0.into();
    v["requests"] = serde_json::json!(
        {"poll": polls, "longpoll": 0, "sse": 0, "ws": 0, "publish": 0, "tcp": 0, "bad": 1});
    v["config"]["buffers"]["ws_read"] = 4096.into();
    server_process::parse_stats(v.to_string().as_bytes()).unwrap()
}

#[test]
fn costs_are_differences_over_the_window() {
    let proc_at = |cpu_s: f64, rss: u64| {
        Some(ProcUsage {
            cpu_s,
            rss_bytes: rss,
            hwm_bytes: rss,
        })
    };
    let timeline = [
        sample(500_000, 9_000_000, 1, 1),
        sample(1_500_000, 7_000_000, 40_000, 3_000),
        sample(2_500_000, 6_000_000, 50_000, 2_000),
        sample(9_500_000, 99_000_000, 99, 99),
    ];
    let costs = Costs {
        window_start_us: 1_000_000,
        window_end_us: 3_000_000,
        local_server: true,
        restarted: false,
        baseline: sample(0, 1_000_000, 4096, 100),
        idle: sample(900_000, 5_096_000, 12_288, 200),
        idle_clients: 1000,
        at_start: Snapshot {
            stats: Some(stats(100, 1_000, 5)),
            server: proc_at(1.0, 5_500_000),
            fleet: proc_at(3.0, 0),
            tcp: None,
            broker: None,
        },
        at_end: Snapshot {
            stats: Some(stats(300, 51_000, 25)),
            server: proc_at(1.25, 5_600_000),
            fleet: proc_at(3.5, 0),
            tcp: None,
            broker: None,
        },
        drained_stats: Some(stats(400, 60_000, 30)),
        hwm_bytes: Some(12_000_000),
        timeline: &timeline,
        lag: Summary::default(),
        fleet_cpus: &[1],
    };
    let wire = costs.wire().unwrap();
    assert_eq!(
        (
            wire.window.bytes_in,
            wire.window.bytes_out,
            wire.window.requests
        ),
        (200, 50_000, 20)
    );
    assert_eq!(wire.total.bytes_out, 60_000, "handshakes included");
    let server = costs.server().unwrap();
    assert!((server.cpu_s - 0.25).abs() < 1e-9);
    assert_eq!(server.rss_baseline_bytes, 1_000_000);
    assert_eq!(server.rss_idle_bytes, 5_096_000);
    // Peak only inside the window: not the 9 MB before it nor the 99 MB after.
    assert_eq!(server.rss_peak_bytes, 7_000_000);
    assert_eq!(server.rss_hwm_bytes, 12_000_000);
    assert_eq!(server.tcp_mem_peak_bytes, Some(50_000));
    let fleet = costs.fleet();
    assert!((fleet.cpu_s - 0.5).abs() < 1e-9);
    assert_eq!(fleet.cpus, vec![1]);
    assert_eq!(fleet.rss_peak_bytes, 3_000);
    // 0.5 s of 2 s on one core: 25 %, not generator-bound.
    assert!(
        !fleet.generator_bound,
        "{:?}",
        fleet.generator_bound_reasons
    );

    // A remote target has no /proc of ours; without /stats at both ends there is no wire.
    let mut remote = costs.clone();
    remote.local_server = false;
    remote.at_end.stats = None;
    assert!(remote.server().is_none() && remote.wire().is_none());
}

#[test]
fn outcome_explains_failure_in_one_line() {
    let mut t = totals(&[1], true);
    t.clients = 1;
    let bad = build_result(
        TransportKind::Sse,
        &Scenario::default(),
        &schedule(),
        1_000_000,
        2_000_000,
        &t,
        vec![],
    );
    let out = RunOutcome {
        out_dir: PathBuf::from("x"),
        run: RunFile {
            schema_version: SCHEMA_VERSION,
            provenance: Default::default(),
            scenario: serde_json::Value::Null,
            complete: false,
            generator_bound: false,
            transports: vec![bad],
        },
        problems: vec![],
    };
    assert!(!out.passed());
    let why = out.failure().unwrap();
    assert!(
        why.contains("interrupted") && why.contains("sse not verified"),
        "{why}"
    );
    assert!(!why.contains('\n'));
}

#[test]
fn outage_spans_start_a_slack_before_each_kill_and_never_overlap() {
    assert_eq!(outage_spans(&[], 200), vec![]);
    assert_eq!(
        outage_spans(&[(1_000, 2_000, 2)], 200),
        vec![(800, 2_000, 2)]
    );
    // A second restart whose slack reaches back into the first outage starts where it ended.
    assert_eq!(
        outage_spans(&[(1_000, 2_000, 1), (2_100, 3_000, 3)], 200),
        vec![(800, 2_000, 1), (2_000, 3_000, 3)]
    );
    assert_eq!(outage_spans(&[(100, 500, 1)], 200), vec![(0, 500, 1)]);
}
