//! The results contract and the report, end to end: a synthetic run with real
//! histograms is written with `write_run`, rendered with `render_dir`, and the
//! files are checked the way a reader would check them.

use std::path::Path;

use harness::plot;
use harness::report;
use harness::results::{
    self, Counts, Histograms, Provenance, RunFile, SCHEMA_VERSION, Summary, TransportResult,
};
use hdrhistogram::Histogram;
use protocol::TransportKind;

/// A latency histogram (µs) with `n` samples spread evenly over `lo..=hi` µs.
fn spread(lo: u64, hi: u64, n: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..n {
        h.record(lo + (hi - lo) * i / (n - 1)).unwrap();
    }
    h
}

fn transport(kind: TransportKind, latency: &Histogram<u64>, verified: bool) -> TransportResult {
    let connect = spread(200, 900, 100);
    let expected = latency.len();
    let missing = if verified { 0 } else { 12 };
    TransportResult {
        transport: kind,
        verified,
        problems: if verified {
            Vec::new()
        } else {
            vec!["client 7: 12 events missing (ids 40..51)".to_string()]
        },
        clients: 100,
        clients_connected: 100,
        window_s: 10.0,
        window_start_us: 1_732_390_000_000_000,
        counts: Counts {
            expected: expected + missing,
            delivered: expected,
            missing,
            requests: if kind.is_polling() { expected * 2 } else { 0 },
            ..Counts::default()
        },
        delivered_per_s: expected as f64 / 10.0,
        latency: Summary::from_histogram(latency),
        connect: Summary::from_histogram(&connect),
        histograms: Histograms {
            latency_us: results::encode_histogram(latency),
            connect_us: results::encode_histogram(&connect),
        },
    }
}

/// Four transports: short polling (slow, by design), long polling, SSE (the
/// best verified one) and WebSocket, which is *faster* than SSE but did not
/// verify, so it must not win anything.
fn synthetic_run() -> RunFile {
    RunFile {
        schema_version: SCHEMA_VERSION,
        provenance: Provenance {
            pushbench_version: "0.1.0".into(),
            git_commit: "6d7f51af2637339aee06af568011d018e6f89b27-dirty".into(),
            host: "bench-host".into(),
            cpu_model: "AMD EPYC 7B13".into(),
            cores: 2,
            kernel: "6.8.0-45-generic".into(),
            rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
            command_line: vec![
                "pushbench".into(),
                "run".into(),
                "--clients".into(),
                "100".into(),
            ],
            started_at: "2024-11-23T19:26:40Z".into(),
        },
        scenario: serde_json::json!({
            "name": "fanout-small",
            "description": "100 clients on 4 topics, a few events per second each",
            "clients": 100,
            "topics": 4,
            "rate": 5.0,
            "payload_bytes": 256,
            "warmup": "2s",
            "duration": "10s",
            "poll_interval": "1s",
        }),
        complete: true,
        transports: vec![
            transport(
                TransportKind::ShortPoll,
                &spread(1_000, 1_000_000, 5_000),
                true,
            ),
            transport(TransportKind::LongPoll, &spread(900, 4_000, 5_000), true),
            transport(TransportKind::Sse, &spread(300, 1_500, 5_000), true),
            transport(TransportKind::Ws, &spread(100, 400, 5_000), false),
        ],
    }
}

/// The table row of a transport, split into trimmed cells.
fn row<'a>(md: &'a str, label: &str) -> Vec<&'a str> {
    let prefix = format!("| {label} |");
    let line = md
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no table row for {label} in:\n{md}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

fn render(run: &RunFile) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    results::write_run(dir.path(), run).unwrap();
    report::render_dir(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("latency.svg")).unwrap();
    (dir, md, svg)
}

#[test]
fn report_marks_the_unverified_transport_and_names_the_best_verified_one() {
    let (_dir, md, _svg) = render(&synthetic_run());

    assert!(md.starts_with("# pushbench: fanout-small\n"), "{md}");
    assert!(md.contains("100 clients on 4 topics, a few events per second each"));
    let scenario = md.lines().find(|l| l.starts_with("**Scenario:**")).unwrap();
    for item in [
        "100 clients",
        "4 topics",
        "5 events/s per topic",
        "256 B payload",
        "warm-up 2s",
        "measured window 10s",
        "poll interval 1s",
    ] {
        assert!(
            scenario.contains(item),
            "{item:?} missing from {scenario:?}"
        );
    }

    // The header and one row per transport, same number of cells.
    let header = row(&md, "transport");
    assert_eq!(header[2], "p50 (ms)");
    let p50 = header.iter().position(|c| *c == "p50 (ms)").unwrap();
    let max = header.iter().position(|c| *c == "max (ms)").unwrap();
    for t in TransportKind::COMPARED {
        assert_eq!(row(&md, t.label()).len(), header.len(), "{}", t.label());
    }
    for t in [
        TransportKind::ShortPoll,
        TransportKind::LongPoll,
        TransportKind::Sse,
    ] {
        let r = row(&md, t.label());
        assert_eq!(r[1], "✓ verified");
        assert!(r[p50..=max].iter().all(|c| !c.contains('~')), "{r:?}");
    }
    // SSE is the fastest verified transport: its p50 (from its histogram) is in bold.
    let run = synthetic_run();
    let sse_p50 = report::format_ms(run.transports[2].latency.p50 as f64 / 1000.0);
    assert!(
        (0.85..0.95).contains(&sse_p50.parse::<f64>().unwrap()),
        "{sse_p50}"
    );
    assert_eq!(row(&md, "SSE")[p50], format!("**{sse_p50}**"));

    // WebSocket did not verify: marked, every latency figure struck, problem listed.
    let ws = row(&md, "WebSocket");
    assert_eq!(ws[1], "✗ not verified");
    for cell in &ws[p50..=max] {
        assert!(
            cell.starts_with("~~") && cell.ends_with("~~"),
            "latency cell shown as valid: {cell}"
        );
    }
    assert!(
        !ws.iter().any(|c| c.starts_with("**")),
        "an invalid figure is marked best: {ws:?}"
    );
    let missing = header.iter().position(|c| *c == "missing").unwrap();
    assert_eq!(ws[missing], "12", "correctness counts stay readable");
    assert!(md.contains("**✗ WebSocket — not verified:**"));
    assert!(md.contains("- client 7: 12 events missing (ids 40..51)"));

    // Requests per event only for polling.
    let req = header.iter().position(|c| *c == "req/event").unwrap();
    assert_eq!(row(&md, "short polling")[req], "2.00");
    assert_eq!(row(&md, "SSE")[req], "–");

    // The headline names SSE (lowest verified p50 and p99), never the invalid WebSocket.
    let headline = md.lines().find(|l| l.starts_with("**Headline:**")).unwrap();
    assert!(
        headline.contains(&format!(
            "lowest median (p50) latency: **SSE** ({sse_p50} ms)"
        )),
        "{headline}"
    );
    assert!(
        headline.contains("lowest p99 latency: **SSE**"),
        "{headline}"
    );
    assert!(
        headline.contains("among 3 verified transports"),
        "{headline}"
    );
    assert!(
        headline.contains("Not verified, figures invalid: WebSocket."),
        "{headline}"
    );
    assert!(!headline.contains("**WebSocket**"), "{headline}");

    assert!(md.contains("\n![latency percentile spectrum](latency.svg)\n"));
    assert!(md.contains("receive time minus the event's *scheduled* emission time"));
    assert!(md.contains("half its poll interval at p50 (here ≈ 500ms)"));
    for fact in [
        "6d7f51af2637339aee06af568011d018e6f89b27-dirty",
        "bench-host",
        "AMD EPYC 7B13",
        "- cores: `2`",
        "6.8.0-45-generic",
        "rustc 1.95.0",
        "2024-11-23T19:26:40Z",
        "```sh\npushbench run --clients 100\n```",
        "`pushbench report DIR`",
    ] {
        assert!(md.contains(fact), "{fact:?} missing from the report");
    }
    // Every metric of the table is defined in the report.
    for m in report::METRICS {
        assert!(md.contains(m.description), "no definition for {}", m.key);
    }
}

#[test]
fn latency_svg_has_one_line_and_a_label_per_transport() {
    let (_dir, _md, svg) = render(&synthetic_run());
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{}",
        &svg[..80]
    );
    assert!(svg.contains(r#"width="900" height="520""#));
    assert!(svg.contains("<text"), "labels must be SVG text");
    for label in [
        "short polling",
        "long polling",
        "SSE",
        "WebSocket — ✗ not verified, invalid",
    ] {
        assert!(
            svg.contains(&format!(">{label}<")) || svg.contains(&format!(">\n{label}\n<")),
            "no label {label:?}"
        );
    }
    for tick in ["0%", "90%", "99%", "99.9%", "99.99%"] {
        assert!(
            svg.contains(&format!(">{tick}<")) || svg.contains(&format!(">\n{tick}\n<")),
            "no tick {tick:?}"
        );
    }
    assert!(svg.contains("percentile") && svg.contains("latency (ms)"));
    assert!(svg.contains("Latency percentile spectrum — fanout-small"));

    let polylines = |t: TransportKind| {
        svg.lines()
            .filter(|l| {
                l.contains("<polyline")
                    && l.contains(&format!(r#"stroke="{}""#, plot::colour_hex(t)))
            })
            .count()
    };
    for t in [
        TransportKind::ShortPoll,
        TransportKind::LongPoll,
        TransportKind::Sse,
    ] {
        assert_eq!(polylines(t), 1, "{} must be one solid line", t.label());
    }
    // The unverified transport is dashed: many short segments, same colour.
    assert!(
        polylines(TransportKind::Ws) > 3,
        "WebSocket must be drawn dashed"
    );
}

#[test]
fn rendering_is_repeatable() {
    let (dir, md, svg) = render(&synthetic_run());
    report::render_dir(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("report.md")).unwrap(),
        md
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("latency.svg")).unwrap(),
        svg
    );
    // Only the three files: no temporary files left behind.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["latency.svg", "report.md", "run.json"]);
}

#[test]
fn empty_histograms_are_left_out_and_no_data_still_renders() {
    let mut run = synthetic_run();
    let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    run.transports[1] = transport(TransportKind::LongPoll, &empty, true);
    let (_dir, md, svg) = render(&run);
    assert!(
        svg.contains("Not drawn: long polling (no samples)"),
        "note missing"
    );
    assert_eq!(
        svg.matches(&format!(
            r#"stroke="{}""#,
            plot::colour_hex(TransportKind::LongPoll)
        ))
        .count(),
        0
    );
    assert_eq!(row(&md, "long polling")[2], "–", "no samples, no figure");

    // Nothing at all to draw: still a valid SVG with a caption, and a report.
    for t in &mut run.transports {
        *t = transport(t.transport, &empty, false);
    }
    run.transports[3].histograms.latency_us = "garbled!".into();
    let (_dir, md, svg) = render(&run);
    assert!(svg.starts_with("<svg") && svg.contains("no data"), "{svg}");
    assert!(svg.contains("WebSocket (unreadable histogram)"));
    assert!(md.contains("no transport verified, so no speed figure in this run is valid"));

    run.transports.clear();
    run.complete = false;
    let (_dir, md, svg) = render(&run);
    assert!(svg.contains("no data"));
    assert!(md.contains("Incomplete run") && md.contains("no transport was measured"));
    // No short polling in the run: its poll interval is not part of the scenario line.
    let scenario = md.lines().find(|l| l.starts_with("**Scenario:**")).unwrap();
    assert!(!scenario.contains("poll interval"), "{scenario}");
}

#[test]
fn scenario_line_reads_the_real_scenario_layout() {
    let mut run = synthetic_run();
    run.scenario = harness::scenario::Scenario::default().to_json();
    let md = report::render_markdown(&run);
    assert!(md.starts_with("# pushbench: default\n"), "{md}");
    let scenario = md.lines().find(|l| l.starts_with("**Scenario:**")).unwrap();
    assert_eq!(
        scenario,
        "**Scenario:** 100 clients · 1 topic · 10 events/s per topic · 64 B payload · \
         warm-up 3s · measured window 10s · poll interval 1s"
    );
}

#[test]
fn run_json_round_trips() {
    let run = synthetic_run();
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("results").join("fanout-small");
    results::write_run(&nested, &run).unwrap();
    let text = std::fs::read_to_string(nested.join("run.json")).unwrap();
    assert!(
        text.contains("\n  \"schema_version\": 1,"),
        "pretty JSON expected"
    );
    let back = results::read_run(&nested).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&run).unwrap()
    );
    let h = results::decode_histogram(&back.transports[2].histograms.latency_us).unwrap();
    assert_eq!(Summary::from_histogram(&h), run.transports[2].latency);
}

/// The full error chain, as `pushbench` prints it.
fn error_of(dir: &Path) -> String {
    format!("{:#}", results::read_run(dir).unwrap_err())
}

#[test]
fn read_run_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.json");

    let e = error_of(dir.path());
    assert!(
        e.contains("cannot read") && e.contains(&file.display().to_string()),
        "{e}"
    );
    assert!(format!("{:#}", report::render_dir(dir.path()).unwrap_err()).contains("run.json"));

    std::fs::write(&file, "{ \"schema_version\": 1, ").unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains(&file.display().to_string()) && e.contains("not valid JSON"),
        "{e}"
    );

    std::fs::write(&file, r#"{"hello": "world"}"#).unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("no `schema_version`"), "{e}");

    let mut v = serde_json::to_value(synthetic_run()).unwrap();
    v["schema_version"] = 99.into();
    std::fs::write(&file, v.to_string()).unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains("schema_version 99 is not supported") && e.contains("reads schema_version 1"),
        "{e}"
    );

    v["schema_version"] = "1".into();
    std::fs::write(&file, v.to_string()).unwrap();
    assert!(error_of(dir.path()).contains("expected a whole number"));

    let mut v = serde_json::to_value(synthetic_run()).unwrap();
    v.as_object_mut().unwrap().remove("transports");
    std::fs::write(&file, v.to_string()).unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains("does not match the run.json layout") && e.contains("transports"),
        "{e}"
    );
}
