//! `report.html` end to end: a synthetic run is written with `write_run`,
//! rendered with `report::render_dir` (which writes `report.html` beside
//! `report.md` and the charts), checked as text, then loaded in headless
//! Chromium by `browser/render.mjs`, which must see no console or page error,
//! no request, and no blank plot.
//!
//! Missing Node or Chromium fails the test with install instructions: a
//! rendering check that silently does not run proves nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::repo_root;
use crate::common::run_bounded;
use crate::common::spread;
use harness::report;
use harness::report::html;
use harness::results::{self, RunFile};
use hdrhistogram::Histogram;
use protocol::TransportKind;
use serde_json::{Value, json};

/// Bound of one render.mjs run (it bounds itself at 45 s).
const RENDER_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound of `npm ci` in browser/ (a few packages; mostly network time).
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
const CHROMIUM: &str = "/usr/bin/chromium";
/// playwright-core requires Node 20.
const MIN_NODE_MAJOR: u32 = 20;

// ---------------------------------------------------------------------------
// A synthetic run
// ---------------------------------------------------------------------------

fn summary(h: &Histogram<u64>) -> Value {
    serde_json::to_value(results::Summary::from_histogram(h)).unwrap()
}

/// One transport's entry of `run.json`, as JSON, so that fields added to
/// the layout later with a default do not break this test. Costs grow with
/// `k` (floor 1 … short polling 5) so every cost metric has a clear order.
fn transport(kind: TransportKind, lat: (u64, u64), verified: bool, problem: &str) -> Value {
    let latency = spread(lat.0, lat.1, 2_000);
    let connect = spread(200, 900, 100);
    let k: u64 = match kind {
        TransportKind::Tcp => 1,
        TransportKind::Ws => 2,
        TransportKind::Sse => 3,
        TransportKind::LongPoll => 4,
        TransportKind::ShortPoll => 5,
    };
    let delivered = latency.len();
    let missing = if verified { 0 } else { 12 };
    json!({
        "transport": kind,
        "repetition": 1,
        "verified": verified,
        "problems": if verified { vec![] } else { vec![problem.to_string()] },
        "clients": 100,
        "clients_connected": 100,
        "window_s": 10.0,
        "window_start_us": 1_732_390_000_000_000u64,
        "counts": {
            "expected": delivered + missing, "delivered": delivered, "missing": missing,
            "duplicated": 0, "out_of_order": 0,
            "requests": if kind.is_polling() { delivered * 2 } else { 0 },
            "reconnects": 0, "errors": 0,
        },
        "delivered_per_s": delivered as f64 / 10.0,
        "latency": summary(&latency),
        "connect": summary(&connect),
        "histograms": {
            "latency_us": results::encode_histogram(&latency),
            "connect_us": results::encode_histogram(&connect),
        },
        "wire": {
            "window": { "bytes_in": delivered * 10 * k, "bytes_out": delivered * 100 * k,
                        "requests": 0, "connections_accepted": 0 },
            "total": { "bytes_in": delivered * 10 * k + 5_000, "bytes_out": delivered * 100 * k + 8_000,
                       "requests": 100, "connections_accepted": 100 },
        },
        "server": {
            "cpu_s": delivered as f64 * 2e-6 * k as f64,
            "rss_baseline_bytes": 4u64 << 20,
            "rss_idle_bytes": (4u64 << 20) + 100 * 4096 * k,
            "idle_clients": 100,
            "rss_peak_bytes": 6u64 << 20,
            "rss_hwm_bytes": 7u64 << 20,
            "tcp_mem_baseline_bytes": 4096,
            "tcp_mem_idle_bytes": 4096 + 100 * 8192,
            "tcp_mem_peak_bytes": 4096 + 100 * 8192,
        },
        "fleet": {
            "cpu_s": 2.5, "cpus": [1], "rss_idle_bytes": 30u64 << 20, "rss_peak_bytes": 31u64 << 20,
            "lag": { "count": 1000, "min": 900, "mean": 1100.0, "p50": 1100, "p90": 1500,
                     "p99": 2000, "p999": 2100, "max": 2200 },
            "generator_bound": false, "generator_bound_reasons": [],
        },
        "timeline": (0..20u64).map(|i| json!({
            "t_us": 1_732_390_000_000_000u64 - 2_000_000 + i * 750_000,
            "server_rss_bytes": (4u64 << 20) + i * 100_000 * k,
            "server_cpu_s": i as f64 * 0.01,
            "fleet_rss_bytes": 30u64 << 20,
            "fleet_cpu_s": i as f64 * 0.02,
            "tcp_mem_bytes": 4096 + i * 4096,
        })).collect::<Vec<_>>(),
        "server_config": { "buffers": { "ws_read": 4096 } },
    })
}

/// Hostile text, to prove everything from the run is escaped.
const NAME: &str = r#"fanout <b>&</b> "small""#;
const DESCRIPTION: &str = "100 clients <script>alert('description')</script> & friends";
const PROBLEM: &str = "client 7: 12 events missing <img src=x onerror=alert(1)>";

/// Short polling (slow by design), long polling, SSE (the best verified),
/// WebSocket (faster than SSE but not verified: must win nothing) and the
/// raw-TCP floor (fastest of all: a reference, never the winner).
fn synthetic_run() -> RunFile {
    let run = json!({
        "schema_version": results::SCHEMA_VERSION,
        "provenance": {
            "pushbench_version": "0.1.0",
            "git_commit": "6d7f51af2637339aee06af568011d018e6f89b27-dirty",
            "host": "bench-host",
            "cpu_model": "AMD EPYC 7B13",
            "cores": 2,
            "kernel": "6.8.0-45-generic",
            "rustc": "rustc 1.95.0",
            "command_line": ["pushbench", "run", "--clients", "100"],
            "started_at": "2024-11-23T19:26:40Z",
            "placement": { "spec": "auto", "server_cpus": [0], "fleet_cpus": [1], "note": "" },
        },
        "scenario": {
            "name": NAME, "description": DESCRIPTION, "clients": 100, "topics": 4, "rate": 5.0,
            "payload_bytes": 256, "warmup": "2s", "duration": "10s", "poll_interval": "1s",
        },
        "complete": true,
        "generator_bound": false,
        "transports": [
            transport(TransportKind::ShortPoll, (1_000, 1_000_000), true, ""),
            transport(TransportKind::LongPoll, (900, 4_000), true, ""),
            transport(TransportKind::Sse, (300, 1_500), true, ""),
            transport(TransportKind::Ws, (100, 400), false, PROBLEM),
            transport(TransportKind::Tcp, (50, 200), true, ""),
        ],
    });
    serde_json::from_value(run).expect("the synthetic run matches the run.json layout")
}

fn render(run: &RunFile) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    results::io::write_run(dir.path(), run).unwrap();
    report::render_dir(dir.path()).unwrap();
    let page = std::fs::read_to_string(dir.path().join(html::REPORT_HTML))
        .expect("render_dir writes report.html");
    (dir, page)
}

/// The `<section id="verdict">` of a page.
fn verdict_section(page: &str) -> &str {
    let start = page
        .find("<section id=\"verdict\"")
        .expect("no verdict section");
    let end = page[start..].find("</section>").unwrap() + start;
    &page[start..end]
}

/// The `<li>` of the verdict that starts with `<strong>{aspect}:</strong>`.
fn aspect_line<'a>(verdict: &'a str, aspect: &str) -> &'a str {
    let start = verdict
        .find(&format!("<li><strong>{aspect}:</strong>"))
        .unwrap_or_else(|| panic!("no {aspect} line in {verdict}"));
    let end = verdict[start..].find("</li>").unwrap() + start;
    &verdict[start..end]
}

fn svg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// The page as text
// ---------------------------------------------------------------------------

#[test]
fn page_is_self_contained_escaped_and_holds_every_table_and_plot() {
    let (dir, page) = render(&synthetic_run());

    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(page.trim_end().ends_with("</html>"));
    assert!(page.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">"
    ));
    // Nothing executable or fetched, however hostile the run's text.
    let lower = page.to_ascii_lowercase();
    for bad in [
        "<script",
        "<img",
        "<link",
        "<iframe",
        "src=\"http",
        "@import",
    ] {
        assert!(!lower.contains(bad), "{bad} in the page");
    }
    assert!(
        page.contains(
            "<title>pushbench: fanout &lt;b&gt;&amp;&lt;/b&gt; &quot;small&quot;</title>"
        )
    );
    assert!(
        page.contains("&lt;script&gt;alert(&#39;description&#39;)&lt;/script&gt;")
            || page.contains("&lt;script&gt;alert('description')&lt;/script&gt;")
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "problem text escaped"
    );

    // Every chart of the directory is inline, once, byte for byte.
    let svgs = svg_files(dir.path());
    assert!(
        svgs.len() >= 2,
        "render_dir writes several charts: {svgs:?}"
    );
    assert_eq!(page.matches("<svg ").count(), svgs.len());
    for path in &svgs {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(page.contains(svg.trim()), "{} not inlined", path.display());
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(page.contains(&format!("({name})</span></figcaption>")));
    }

    // The tables of report.md, as HTML tables: one header per table, a row per transport.
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let md_tables = md.lines().filter(|l| l.starts_with("|---")).count();
    let verdict_tables = 1;
    assert_eq!(page.matches("<table").count(), md_tables + verdict_tables);
    for t in TransportKind::ALL {
        assert!(
            page.contains(&format!("<td>{}</td>", report::format::esc(t.label()))),
            "{}",
            t.label()
        );
    }
    // The unverified transport is marked, and its speed figures are struck as invalid.
    assert!(page.contains("<span class=\"bad\">✗ not verified</span>"));
    assert!(
        page.contains("<del class=\"invalid\" title=\"invalid: this transport did not verify\">")
    );
    // The metric definitions and the provenance.
    for m in report::METRICS {
        // pulldown-cmark leaves quotes as they are; `esc` escapes them too.
        let text = report::format::esc(m.description)
            .replace("&#39;", "'")
            .replace("&quot;", "\"");
        assert!(page.contains(&text), "no definition of {}", m.key);
    }
    for fact in [
        "6d7f51af2637339aee06af568011d018e6f89b27-dirty",
        "bench-host",
        "AMD EPYC 7B13",
    ] {
        assert!(page.contains(fact), "{fact} missing");
    }
    // The verdict comes before the first table of the report.
    let verdict_at = page.find("<section id=\"verdict\"").unwrap();
    assert!(verdict_at < page.find("<h2>Summary</h2>").expect("summary heading"));
}

#[test]
fn verdict_names_the_best_verified_transport_never_the_floor_or_an_invalid_one() {
    let (_dir, page) = render(&synthetic_run());
    let verdict = verdict_section(&page);

    // SSE is the best verified on latency; WebSocket (faster, unverified) and
    // the floor (fastest) are not winners anywhere.
    let latency = aspect_line(verdict, "Latency");
    assert!(
        latency.contains("<span class=\"winner\">SSE</span>"),
        "{latency}"
    );
    let run = synthetic_run();
    let sse_p50 = report::format_ms(run.transports[2].latency.p50 as f64 / 1000.0);
    let floor_p50 = report::format_ms(run.transports[4].latency.p50 as f64 / 1000.0);
    assert!(
        latency.contains(&format!("p50 {sse_p50} ms vs long polling")),
        "{latency}"
    );
    assert!(
        latency.contains(&format!("raw-TCP floor {floor_p50} ms")),
        "{latency}"
    );
    assert!(!verdict.contains("class=\"winner\">WebSocket"), "{verdict}");
    assert!(!verdict.contains("class=\"winner\">raw TCP"), "{verdict}");

    // Costs grow from WebSocket (k=2, but invalid) to SSE (3) … short polling (5):
    // the cheapest valid one is SSE.
    let cost = aspect_line(verdict, "Cost");
    assert!(cost.contains("<span class=\"winner\">SSE</span>"), "{cost}");
    let bytes = aspect_line(verdict, "Bytes");
    assert!(
        bytes.contains("<span class=\"winner\">SSE</span>"),
        "{bytes}"
    );
    assert!(bytes.contains("raw-TCP floor"), "{bytes}");
    // No reconnect metric in this run.
    assert!(aspect_line(verdict, "Resilience").contains("not measured in this run"));
    // Every contender delivers the same rate: a tie, not a win.
    assert!(aspect_line(verdict, "Throughput").contains("no difference"));

    let correctness = aspect_line(verdict, "Correctness");
    assert!(
        correctness.contains("✗ 1 of 5 did not verify"),
        "{correctness}"
    );
    assert!(correctness.contains("<span class=\"bad\">✗ WebSocket</span>: client 7"));

    // The table: one row per metric with a direction that a contender has.
    let v = report::verdict::verdict(&run);
    let rows: usize = v.aspects.iter().map(|a| a.metrics.len()).sum();
    assert_eq!(verdict.matches("<tr><td>").count(), rows);
    assert!(rows >= 10, "{rows}");
    for av in &v.aspects {
        for mv in &av.metrics {
            assert!(
                !mv.winners.contains(&TransportKind::Ws.label().to_string()),
                "{}",
                mv.metric.key
            );
            assert!(
                !mv.winners.contains(&TransportKind::Tcp.label().to_string()),
                "{}",
                mv.metric.key
            );
        }
    }
    assert_eq!(
        v.contenders,
        [
            TransportKind::ShortPoll.label(),
            TransportKind::LongPoll.label(),
            TransportKind::Sse.label()
        ]
    );
}

#[test]
fn verdict_without_valid_figures_and_with_a_saturated_generator() {
    // Nothing verified: nothing wins, and the page says so.
    let mut run = synthetic_run();
    for t in &mut run.transports {
        t.verified = false;
        t.problems = vec!["lost events".into()];
    }
    let (_dir, page) = render(&run);
    let verdict = verdict_section(&page);
    assert!(
        verdict.contains("No compared transport has valid figures"),
        "{verdict}"
    );
    assert!(!verdict.contains("class=\"winner\""), "{verdict}");
    assert!(verdict.contains("✗ 5 of 5 did not verify"));

    // SSE's load generator was saturated: it is left out, with the reason.
    let mut run = synthetic_run();
    run.transports[2].fleet.generator_bound = true;
    run.transports[2].fleet.generator_bound_reasons = vec!["fleet CPU 97 %".into()];
    run.generator_bound = true;
    let v = report::verdict::verdict(&run);
    assert_eq!(
        v.contenders,
        [
            TransportKind::ShortPoll.label(),
            TransportKind::LongPoll.label()
        ]
    );
    assert_eq!(
        v.generator_bound,
        [(
            TransportKind::Sse.label().to_string(),
            vec!["fleet CPU 97 %".to_string()]
        )]
    );
    let (_dir, page) = render(&run);
    let verdict = verdict_section(&page);
    assert!(verdict.contains("Generator-bound"), "{verdict}");
    assert!(aspect_line(verdict, "Latency").contains("<span class=\"winner\">long polling</span>"));

    // An empty run still renders.
    let mut run = synthetic_run();
    run.transports.clear();
    run.complete = false;
    let (_dir, page) = render(&run);
    assert!(verdict_section(&page).contains("No transport was measured"));
}

#[test]
fn repetitions_are_judged_by_their_median() {
    // Three repetitions of SSE and of long polling; SSE's median p50 is the lower
    // although one SSE repetition is slower than every long-polling one.
    let mut run = synthetic_run();
    let base = run.transports.clone();
    run.transports.clear();
    for rep in 1..=3u32 {
        for t in &base {
            let mut e = t.clone();
            e.repetition = rep;
            if e.transport == TransportKind::Sse && rep == 2 {
                e.latency.p50 = 50_000;
            }
            run.transports.push(e);
        }
    }
    let v = report::verdict::verdict(&run);
    assert_eq!(v.repetitions, 3);
    let latency = &v.aspects[0];
    let p50 = latency
        .metrics
        .iter()
        .find(|m| m.metric.key == "latency_p50")
        .unwrap();
    assert_eq!(p50.winners, [TransportKind::Sse.label()]);
    assert_eq!(p50.best, base[2].latency.p50 as f64 / 1000.0);
}

// ---------------------------------------------------------------------------
// The page in a real browser
// ---------------------------------------------------------------------------

/// Fails with install instructions unless Node ≥ 20, Chromium and browser/'s
/// npm packages are there (installing the packages with `npm ci` if needed).
fn require_node_chromium_and_packages(root: &Path) {
    let version = match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => panic!(
            "node not found: install Node.js >= {MIN_NODE_MAJOR} with npm (e.g. from \
             https://nodejs.org) to run the report.html rendering test"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= MIN_NODE_MAJOR,
        "node {version} is too old: install Node.js >= {MIN_NODE_MAJOR}"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install it with `apt-get install -y chromium` (the report.html \
         rendering test loads the page in a real browser)"
    );
    let browser = root.join("browser");
    if !browser
        .join("node_modules")
        .join("playwright-core")
        .is_dir()
    {
        let run = run_bounded(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&browser),
            NPM_CI_TIMEOUT,
        );
        assert!(
            run.status.is_some_and(|s| s.success()),
            "`npm ci` in {} failed (run it by hand to install playwright-core):\n{}",
            browser.display(),
            run.report()
        );
    }
}

#[test]
fn report_renders_in_chromium_without_errors_or_blank_plots() {
    let root = repo_root();
    require_node_chromium_and_packages(&root);
    let (dir, _page) = render(&synthetic_run());
    let page = dir.path().join(html::REPORT_HTML);
    let png = dir.path().join("report.png");

    let run = run_bounded(
        Command::new("node")
            .arg(root.join("browser/render.mjs"))
            .arg(&page)
            .arg("--screenshot")
            .arg(&png),
        RENDER_TIMEOUT,
    );
    assert!(
        run.status.is_some_and(|s| s.success()),
        "browser/render.mjs failed:\n{}",
        run.report()
    );
    let summary: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "render.mjs printed no JSON summary ({e}):\n{}",
            run.report()
        )
    });
    assert_eq!(summary["ok"], true, "{}", run.report());
    for list in ["console_errors", "page_errors", "requests", "failures"] {
        assert_eq!(
            summary[list].as_array().map(Vec::len),
            Some(0),
            "{list}: {}",
            summary[list]
        );
    }
    assert_eq!(summary["page_overflow_px"], 0, "the page scrolls sideways");

    // Every chart of the directory drawn, none blank.
    let svgs = summary["svgs"].as_array().expect("svgs");
    assert_eq!(svgs.len(), svg_files(dir.path()).len(), "{svgs:?}");
    for s in svgs {
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        assert!(
            n("width") > 100 && n("height") > 100,
            "tiny or empty box: {s}"
        );
        assert!(
            n("lines") > 0 && n("drawn") > n("lines").min(1),
            "blank plot: {s}"
        );
        assert!(n("texts") > 2, "no axis labels: {s}");
    }
    // The latency spectrum: a line per drawn transport at least (the unverified one dashed).
    let latency = svgs
        .iter()
        .find(|s| {
            s["caption"]
                .as_str()
                .is_some_and(|c| c.contains("latency.svg"))
        })
        .expect("latency.svg drawn");
    assert!(latency["lines"].as_u64().unwrap() >= 5, "{latency}");

    // A real PNG of the whole page.
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 50_000,
        "suspiciously small screenshot: {} bytes",
        bytes.len()
    );
    println!("{}", run.stdout);
}
