//! Browser clients in a run (`browser_clients`): headless Chromium pages
//! beside the fleet, verified and timed like it, in run.json and in the
//! report. Needs Node 20+, Chromium and browser/'s npm packages, which
//! scripts/test.sh installs; it fails, never skips, when they are missing
//! (a browser check that silently does not run proves nothing).

use std::time::Duration;

use harness::results;
use harness::runner::{self};
use harness::scenario::Scenario;
use protocol::TransportKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pages_get_every_event_once_in_order_and_are_reported_beside_the_fleet() {
    harness::browser::check_available().expect("browser clients can run here");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("browser");
    let mut scenario = Scenario::from_toml(
        r#"
        name = "browser"
        clients = 4
        rate = 20.0
        duration = "2s"
        warmup = "1s"
        poll_interval = "200ms"
        browser_clients = 2
        "#,
    )
    .unwrap();
    scenario.transports = harness::scenario::builtins(&TransportKind::ALL);
    scenario.validate().unwrap();
    let opts = crate::common::run_options(&out);
    let outcome = tokio::time::timeout(Duration::from_secs(240), runner::run(&scenario, &opts))
        .await
        .expect("the run ends in bounded time")
        .expect("the run produced results");
    assert!(outcome.passed(), "{:?}", outcome.failure());
    let run = results::io::read_run(&out).unwrap();
    for t in &run.transports {
        if t.transport == TransportKind::Tcp {
            assert!(t.browser.is_none(), "no browser speaks raw TCP");
            continue;
        }
        let b = t.browser.as_ref().expect("browser figures");
        assert!(b.verified, "{}: {b:?}", t.transport);
        assert_eq!((b.clients, b.reported), (2, 2));
        // 2 pages × 20 events/s × 2 s, all of them, once.
        assert_eq!(b.expected, 80, "{}", t.transport);
        assert_eq!(b.delivered, 80, "{}", t.transport);
        assert_eq!(b.latency.count, 80, "{}", t.transport);
        assert!(
            b.latency.p50 > 0 && b.latency.p50 < 1_000_000,
            "{:?}",
            b.latency
        );
        assert!(b.cpu_s > 0.0, "the browser's CPU is measured");
        assert!(results::decode_histogram(&b.histogram_us).unwrap().len() == 80);
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## What a browser sees"), "{md}");
    assert!(out.join("browser.svg").is_file());
    // Nothing of the browser outlives the run.
    let left = std::process::Command::new("pgrep")
        .args(["-f", "browser/clients.mjs"])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "node still running: {left:?}");
}

#[test]
fn too_many_pages_are_refused_by_name() {
    let e = Scenario::from_toml("browser_clients = 51")
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("`browser_clients`") && e.contains("51"), "{e}");
}
