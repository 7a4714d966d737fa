//! Unit tests of [`super`] (`capacity`).

use super::*;
use crate::capacity::rules::round_value;

fn clients(start: f64, max: f64, refine: u32) -> Search {
    Search {
        axis: Axis::Clients,
        start,
        factor: 2.0,
        refine,
        max,
    }
}

/// Runs the search against a server that passes up to `limit` (and, if
/// given, is fleet-bound from `fleet`), returning the values probed and
/// the stop.
fn simulate(s: &Search, limit: f64, fleet: Option<f64>) -> (Vec<f64>, Stop) {
    let mut probes = Vec::new();
    loop {
        match next(s, &probes) {
            Next::Done(stop) => return (probes.iter().map(|p| p.0).collect(), stop),
            Next::Probe(v) => {
                assert!(probes.len() < 100, "the search must end");
                let verdict = if fleet.is_some_and(|f| v >= f) {
                    Verdict::FleetBound
                } else if v <= limit {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                probes.push((v, verdict));
            }
        }
    }
}

#[test]
fn grows_geometrically_then_bisects_for_refine_steps() {
    let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 1000.0, None);
    // 100 200 400 800 pass, 1600 fails; bisect 1200 (f), 1000 (p), 1100 (f).
    assert_eq!(
        probed,
        [100.0, 200.0, 400.0, 800.0, 1600.0, 1200.0, 1000.0, 1100.0]
    );
    assert_eq!(stop, Stop::Refined);
}

#[test]
fn refinement_count_is_respected() {
    for refine in [0, 1, 5] {
        let (probed, _) = simulate(&clients(100.0, 19_000.0, refine), 1000.0, None);
        let first_fail = probed.iter().position(|&v| v > 1000.0).unwrap();
        assert_eq!(probed.len() - 1 - first_fail, refine as usize, "{probed:?}");
    }
}

#[test]
fn bisection_stops_at_adjacent_values() {
    let (probed, stop) = simulate(&clients(4.0, 1000.0, 20), 6.0, None);
    // 4 8(f) 6 7(f): 6 and 7 adjacent.
    assert_eq!(probed, [4.0, 8.0, 6.0, 7.0]);
    assert_eq!(stop, Stop::Refined);
}

#[test]
fn never_probes_above_the_bound() {
    let (probed, stop) = simulate(&clients(100.0, 300.0, 3), 1e9, None);
    assert_eq!(probed, [100.0, 200.0, 300.0]);
    assert_eq!(stop, Stop::ReachedMax);
    // A start above the bound starts at the bound.
    let (probed, stop) = simulate(&clients(500.0, 300.0, 3), 1e9, None);
    assert_eq!((probed, stop), (vec![300.0], Stop::ReachedMax));
    // Failing near the bound bisects below it.
    let (probed, _) = simulate(&clients(100.0, 300.0, 3), 250.0, None);
    assert!(probed.iter().all(|&v| v <= 300.0), "{probed:?}");
}

#[test]
fn a_fleet_bound_probe_stops_the_search() {
    let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 1e9, Some(800.0));
    assert_eq!(probed, [100.0, 200.0, 400.0, 800.0]);
    assert_eq!(stop, Stop::FleetBound { at: 800.0 });
    assert!(stop.describe(Axis::Clients).contains("fleet-bound at 800"));
}

#[test]
fn a_failing_start_searches_down_but_never_below_one() {
    // Nothing passes: 100 fails, then 50, 25, 13 (refine 3), none passed.
    let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 0.0, None);
    assert_eq!(probed, [100.0, 50.0, 25.0, 13.0]);
    assert_eq!(stop, Stop::NonePassed);
    // A start of 1 that fails ends at once.
    let (probed, stop) = simulate(&clients(1.0, 19_000.0, 10), 0.0, None);
    assert_eq!((probed, stop), (vec![1.0], Stop::NonePassed));
    // Enough refinement reaches 1 and stops there.
    let (probed, stop) = simulate(&clients(8.0, 19_000.0, 20), 0.0, None);
    assert_eq!(probed, [8.0, 4.0, 2.0, 1.0]);
    assert_eq!(stop, Stop::NonePassed);
    // Something below the start passes: a normal bisection result.
    let (probed, stop) = simulate(&clients(100.0, 19_000.0, 3), 30.0, None);
    assert_eq!(probed, [100.0, 50.0, 25.0, 38.0]);
    assert_eq!(stop, Stop::Refined);
}

#[test]
fn the_rate_axis_steps_in_three_significant_digits() {
    let s = Search {
        axis: Axis::Rate,
        start: 1.0,
        factor: 10.0,
        refine: 2,
        max: 1e6,
    };
    let (probed, stop) = simulate(&s, 300.0, None);
    // 1 10 100 pass, 1000 fails; 550 (f), 325 (f).
    assert_eq!(probed, [1.0, 10.0, 100.0, 1000.0, 550.0, 325.0]);
    assert_eq!(stop, Stop::Refined);
    assert_eq!(round_value(Axis::Rate, 12.345), 12.3);
}

#[test]
fn verdict_names_are_the_json_names() {
    for v in [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::FleetBound,
        Verdict::Unfinished,
    ] {
        assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
    }
}

#[test]
fn an_unfinished_probe_ends_the_search() {
    let s = clients(100.0, 1000.0, 3);
    let stop = next(&s, &[(100.0, Verdict::Pass), (200.0, Verdict::Unfinished)]);
    assert_eq!(stop, Next::Done(Stop::Interrupted));
}

#[test]
fn agents_and_servers_behind_a_broker_take_the_search_past_one_process() {
    #[derive(clap::Parser)]
    struct W {
        #[command(flatten)]
        a: crate::capacity::CapacityArgs,
    }
    let args = |extra: &[&str]| {
        let mut v = vec![
            "capacity",
            "--max-clients",
            "30000",
            "--transports",
            "sse,tcp",
        ];
        v.extend_from_slice(extra);
        <W as clap::Parser>::parse_from(v).a
    };
    let err = args(&[]).plan(Some(20_000)).unwrap_err();
    assert!(
        format!("{err:#}").contains("`agents` and `servers`"),
        "{err:#}"
    );
    let (scenario, _, _) = args(&["--agents", "2", "--servers", "2", "--broker", "redis"])
        .plan(Some(20_000))
        .unwrap();
    assert_eq!(scenario.processes(), 2);
}
