//! The results contract and the report, end to end: a synthetic run with real
//! histograms is written with `write_run`, rendered with `render_dir`, and the
//! files are checked the way a reader would check them.

use crate::common::spread;
use harness::report;
use harness::report::plot;
use harness::results::{
    self, Counts, FleetUsage, Histograms, Placement, Provenance, RunFile, SCHEMA_VERSION, Sample,
    ServerUsage, Summary, TransportResult, Wire, WireCounts,
};
use hdrhistogram::Histogram;
use protocol::TransportKind;

pub(crate) fn transport(
    kind: TransportKind,
    latency: &Histogram<u64>,
    verified: bool,
) -> TransportResult {
    let connect = spread(200, 900, 100);
    let expected = latency.len();
    let missing = if verified { 0 } else { 12 };
    let delivered = expected;
    // Costs that grow from the floor to short polling, so ratios are easy to check.
    let k = match kind {
        TransportKind::Tcp => 1,
        TransportKind::Ws => 2,
        TransportKind::Sse => 3,
        TransportKind::LongPoll => 4,
        TransportKind::ShortPoll => 5,
    };
    TransportResult {
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
        wire: Some(Wire {
            // 100 B down and 10 B up per event, times k.
            window: WireCounts {
                bytes_in: delivered * 10 * k,
                bytes_out: delivered * 100 * k,
                requests: 0,
                connections_accepted: 0,
            },
            total: WireCounts {
                bytes_in: delivered * 10 * k + 50_000,
                bytes_out: delivered * 100 * k + 80_000,
                requests: 100,
                connections_accepted: 100,
            },
        }),
        server: Some(ServerUsage {
            // 2 µs of CPU per event, times k.
            cpu_s: delivered as f64 * 2e-6 * k as f64,
            cpu_resolution_s: 1e-9,
            rss_baseline_bytes: 4 << 20,
            // 4 KiB per connection, times k.
            rss_idle_bytes: (4 << 20) + 100 * 4096 * k,
            idle_clients: 100,
            rss_peak_bytes: 6 << 20,
            rss_hwm_bytes: 7 << 20,
            tcp_mem_baseline_bytes: Some(4096),
            tcp_mem_idle_bytes: Some(4096 + 100 * 8192),
            tcp_mem_peak_bytes: Some(4096 + 100 * 8192),
        }),
        fleet: FleetUsage {
            cpu_s: 2.5,
            cpus: vec![1],
            rss_idle_bytes: 30 << 20,
            rss_peak_bytes: 31 << 20,
            lag: Summary {
                count: 1000,
                p50: 1_100,
                p99: 2_000,
                ..Summary::default()
            },
            generator_bound: false,
            generator_bound_reasons: Vec::new(),
            relay_cpu_s: None,
            link_emulator: None,
        },
        kernel_tcp: Some(results::TcpEvents {
            retrans_segs: 3 * k,
            delayed_ack_lost: 2 * k,
            loss_probes: k,
            listen_overflows: 0,
        }),
        timeline: (0..20)
            .map(|i| Sample {
                t_us: 1_732_390_000_000_000 - 2_000_000 + i * 750_000,
                server_rss_bytes: Some((4 << 20) + i * 100_000 * k),
                server_cpu_s: Some(i as f64 * 0.01),
                fleet_rss_bytes: Some(30 << 20),
                fleet_cpu_s: Some(i as f64 * 0.02),
                tcp_mem_bytes: Some(4096 + i * 4096),
                clients_connected: Some(100 - (i % 5)),
            })
            .collect(),
        server_config: serde_json::json!({
            "rate": 5.0,
            "start_epoch_us": 1_732_389_990_000_000u64 + k * 20_000_000,
            "buffers": {"ws_read": 4096, "http_max_buf": 8192, "tcp_write": "one vectored write"},
        }),
        // A drop at 4 s and a restart at 7 s, so the fault charts have data.
        recovery: results::Recovery {
            faults: vec![
                results::FaultRecord {
                    kind: "drop".into(),
                    at_us: 1_732_390_004_000_000,
                    fraction: Some(0.5),
                    dropped: Some(50),
                    outage_us: None,
                    recovered: 50,
                    all_back_us: Some(420_000),
                    server_cpu_s: Some(0.05),
                    error: None,
                },
                results::FaultRecord {
                    kind: "restart".into(),
                    at_us: 1_732_390_007_000_000,
                    fraction: None,
                    dropped: None,
                    outage_us: Some(1_050_000),
                    recovered: 100,
                    all_back_us: Some(1_900_000),
                    server_cpu_s: None,
                    error: None,
                },
            ],
            reconnect_attempts: 150 + k,
            reconnect: Summary::from_histogram(&connect),
            reconnect_us: results::encode_histogram(&connect),
            lost_outage: 40 * k,
            delivered_per_s: (0..10)
                .map(|i| if i == 7 { 0 } else { 1_000 + 10 * k })
                .collect(),
        },
        // Chat figures too (not a real chat run's shape, which has no
        // floor), so the chat table and chart have data.
        chat: (kind != TransportKind::Tcp).then(|| {
            let round_trip = spread(1_000 * k, 4_000 * k, 40);
            results::ChatResult {
                senders: 4,
                send_rate: 1.0,
                upstream: if kind == TransportKind::Ws {
                    "websocket"
                } else {
                    "publish"
                }
                .into(),
                sent: 40,
                echoed: 40,
                lost: 0,
                send_errors: 0,
                round_trip: Summary::from_histogram(&round_trip),
                round_trip_us: results::encode_histogram(&round_trip),
            }
        }),
        // Habits on the WebSocket entry, so the report shows them.
        habits: if kind == TransportKind::Ws {
            results::Habits {
                pings: 50,
                pauses: 10,
                paused_us: 10_000_000,
                junk: 4,
                error_replies: 4,
            }
        } else {
            Default::default()
        },
        ..TransportResult::empty(kind)
    }
}

/// Four transports: short polling (slow, by design), long polling, SSE (the
/// best verified one) and WebSocket, which is *faster* than SSE but did not
/// verify, so it must not win anything.
pub(crate) fn synthetic_run() -> RunFile {
    RunFile {
        schema_version: SCHEMA_VERSION,
        provenance: Provenance {
            pushbench_version: "0.1.0".into(),
            git_commit: "6d7f51af2637339aee06af568011d018e6f89b27-dirty".into(),
            host: "bench-host".into(),
            cpu_model: "AMD EPYC 7B13".into(),
            cores: 2,
            machine_cores: 2,
            kernel: "6.8.0-45-generic".into(),
            rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
            command_line: vec![
                "pushbench".into(),
                "run".into(),
                "--clients".into(),
                "100".into(),
            ],
            started_at: "2024-11-23T19:26:40Z".into(),
            placement: Placement {
                spec: "auto".into(),
                server_cpus: vec![0],
                fleet_cpus: vec![1],
                note: "server on one core, fleet on the others".into(),
            },
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
        generator_bound: false,
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

/// The synthetic run with the raw-TCP floor (verified) measured last.
pub(crate) fn run_with_floor() -> RunFile {
    let mut run = synthetic_run();
    run.transports.push(transport(
        TransportKind::Tcp,
        &spread(100, 500, 5_000),
        true,
    ));
    run
}

/// The lines of the `## name` section (up to the next `## `).
pub(crate) fn section<'a>(md: &'a str, name: &str) -> &'a str {
    let start = md
        .find(&format!("\n## {name}\n"))
        .unwrap_or_else(|| panic!("no section {name}"));
    let rest = &md[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 4);
    &rest[..end]
}

/// The table row of a transport, split into trimmed cells.
pub(crate) fn row<'a>(md: &'a str, label: &str) -> Vec<&'a str> {
    let prefix = format!("| {label} |");
    let line = md
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no table row for {label} in:\n{md}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

pub(crate) fn render(run: &RunFile) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    results::io::write_run(dir.path(), run).unwrap();
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

    // Requests per event only for polling (in the Cost table).
    let cost = section(&md, "Cost");
    let cost_header = row(cost, "transport");
    let req = cost_header.iter().position(|c| *c == "req/event").unwrap();
    assert_eq!(row(cost, "short polling")[req], "2.00");
    assert_eq!(row(cost, "SSE")[req], "–");

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
    // Every chart of a single run (the sweep charts belong to sweeps).
    for p in plot::PLOTS.iter().filter(|p| (p.applies)(&synthetic_run())) {
        assert!(
            md.contains(&format!("]({})", p.file)),
            "{} not embedded",
            p.file
        );
    }
    // WebSocket (k = 2): round trips spread over 2–8 ms, struck through (not verified).
    assert!(
        md.contains(
            "| WebSocket ✗ | websocket | 4 | 1.00/s | 40 | 40 | 0 | 0 | ~~4.92~~ | ~~7.39~~ |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| SSE | publish | 4 | 1.00/s | 40 | 40 | 0 | 0 | 7.39 | 11.1 |"),
        "{md}"
    );
    assert!(md.contains("receive time minus the event's *scheduled* emission time"));
    assert!(md.contains("half its poll interval at p50 (here ≈ 500ms)"));
    for fact in [
        "6d7f51af2637339aee06af568011d018e6f89b27-dirty",
        "bench-host",
        "AMD EPYC 7B13",
        "- cores: `2 on the machine, 2 available to the fleet (its CPU affinity)`",
        "6.8.0-45-generic",
        "rustc 1.95.0",
        "2024-11-23T19:26:40Z",
        "```sh\npushbench run --clients 100\n```",
        "- placement: `pin auto: server on core 0, fleet on core 1 (server on one core, fleet on the others)`",
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
    for p in plot::PLOTS.iter().filter(|p| (p.applies)(&synthetic_run())) {
        let path = dir.path().join(p.file);
        let before = std::fs::read_to_string(&path).unwrap();
        report::render_dir(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            before,
            "{}",
            p.file
        );
    }
    // Every chart, the report and the run, and no temporary file left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for expected in plot::PLOTS
        .iter()
        .filter(|p| (p.applies)(&synthetic_run()))
        .map(|p| p.file)
        .chain(["report.md", "run.json"])
    {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with('.')),
        "temporary files left: {names:?}"
    );
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
