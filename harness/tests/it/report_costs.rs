//! The report's cost figures: the cost table and its ratios to the floor,
//! repetitions, a generator-bound transport, the cost charts, client
//! habits and coarse CPU figures.

use harness::report;
use harness::report::plot;
use harness::results::TransportResult;
use protocol::TransportKind;

use crate::report::{render, row, run_with_floor, section, synthetic_run};

#[test]
fn cost_table_shows_figures_and_ratios_to_the_floor() {
    let (_dir, md, _svg) = render(&run_with_floor());
    let cost = section(&md, "Cost");
    let header = row(cost, "transport");
    let col = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
    };
    let sse = row(cost, "SSE");
    // k = 3 for SSE: 12 KiB per connection, 6 µs and 300 B down / 30 B up per event.
    // SSE is the cheapest verified contender, so its figures are bold.
    assert_eq!(sse[col("RSS/conn (KiB)")], "**12.0**");
    assert_eq!(sse[col("CPU/event (µs)")], "**6.00**");
    assert_eq!(sse[col("down/event (B)")], "**300**");
    assert_eq!(sse[col("up/event (B)")], "**30.0**");
    // Every transport has the same kernel memory: no comparison, no bold.
    assert_eq!(sse[col("kernel TCP/conn (KiB)")], "8.00");
    // Ratios to the floor (k = 1): 3× for CPU and bytes.
    assert_eq!(sse[col("CPU ×floor")], "**3.00×**");
    assert_eq!(sse[col("bytes ×floor")], "**3.00×**");
    assert_eq!(row(cost, "long polling")[col("CPU ×floor")], "4.00×");
    assert_eq!(row(cost, "raw TCP (floor)")[col("CPU ×floor")], "1.00×");
    // The floor is the reference, never the best, though it is cheapest; the
    // unverified WebSocket's 4 µs is struck, not bold.
    assert!(
        row(cost, "raw TCP (floor)")
            .iter()
            .all(|c| !c.starts_with("**"))
    );
    assert_eq!(row(cost, "WebSocket")[col("CPU/event (µs)")], "~~4.00~~");
    assert_eq!(row(cost, "long polling")[col("CPU/event (µs)")], "8.00");
    // Latency ratios in the summary table: SSE's p50 over the floor's.
    let summary = section(&md, "Summary");
    let sh = row(summary, "transport");
    let p50x = sh.iter().position(|c| *c == "p50 ×floor").unwrap();
    let ratio: f64 = row(summary, "SSE")[p50x]
        .trim_matches(|c| c == '*' || c == '×')
        .parse()
        .unwrap();
    assert!((2.5..3.5).contains(&ratio), "{ratio}");
    assert!(!md.contains("No raw-TCP floor"));
    // Keep-alive cost per connection per minute and the fleet's own load.
    assert_eq!(sse[col("fleet CPU (%)")], "25.0");
    assert_eq!(sse[col("fleet lag p99 (ms)")], "2.00");
    let per_min: f64 = sse[col("down/conn/min (B)")]
        .trim_matches('*')
        .parse()
        .unwrap();
    // 5000 delivered × 300 B / 100 clients / (10 s / 60).
    assert!((per_min - 90_000.0).abs() < 1.0, "{per_min}");

    // Every cost metric is defined; the server's stated settings are listed.
    for m in report::METRICS {
        assert!(md.contains(m.description), "no definition for {}", m.key);
    }
    assert!(md.contains("### Server settings"));
    // Kernel TCP events: one row per entry, with retransmits per 1,000 deliveries.
    assert!(md.contains("### Kernel TCP events in the window"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| SSE | 9 |"))
        .expect("the SSE row of the kernel TCP table");
    assert!(row.ends_with("| 6 | 3 | 0 |"), "{row}");
    assert!(md.contains("| buffers.ws\\_read | `4096` |"), "{md}");
    assert!(md.contains("| buffers.tcp\\_write | `one vectored write` |"));
    assert!(md.contains("| start\\_epoch\\_us | differs per server"));
}

#[test]
fn without_a_floor_ratios_are_dashes_with_a_note() {
    let (_dir, md, _svg) = render(&synthetic_run());
    let cost = section(&md, "Cost");
    let header = row(cost, "transport");
    let cpu_x = header.iter().position(|c| *c == "CPU ×floor").unwrap();
    assert_eq!(row(cost, "SSE")[cpu_x], "–");
    assert!(md.contains("No raw-TCP floor (`tcp`) in this run"));

    // An unverified floor gives no ratios either, and says so.
    let mut run = run_with_floor();
    run.transports[4].verified = false;
    run.transports[4].problems = vec!["3 events missing".into()];
    let (_dir, md, svg_md) = render(&run);
    let _ = svg_md;
    let cost = section(&md, "Cost");
    assert_eq!(row(cost, "SSE")[cpu_x], "–");
    assert!(md.contains("The raw-TCP floor did not verify"));
}

#[test]
fn repetitions_show_the_median_and_the_range() {
    let mut run = run_with_floor();
    let first: Vec<TransportResult> = run.transports.clone();
    for rep in [2u32, 3] {
        for t in first.iter().rev() {
            let mut t = t.clone();
            t.repetition = rep;
            if let Some(s) = t.server.as_mut() {
                // Repetition 2 costs double, 3 costs half: median = repetition 1.
                s.cpu_s *= if rep == 2 { 2.0 } else { 0.5 };
            }
            run.transports.push(t);
        }
    }
    let rows = report::rows(&run);
    assert_eq!(rows.len(), 5, "one row per transport");
    assert!(rows.iter().all(|r| r.entries.len() == 3));
    let cpu = report::metric("cpu_us_per_event").unwrap();
    let sse = rows
        .iter()
        .find(|r| r.transport == TransportKind::Sse)
        .unwrap();
    let f = sse.figure(cpu).unwrap();
    assert_eq!((f.median, f.min, f.max, f.n), (6.0, 3.0, 12.0, 3));
    // The floor scales alike in each repetition, so the ratio is 3× in all three.
    let x = sse.figure(report::metric("cpu_x_floor").unwrap()).unwrap();
    assert!((x.min - 3.0).abs() < 1e-9 && (x.max - 3.0).abs() < 1e-9);

    let (_dir, md, _svg) = render(&run);
    let cost = section(&md, "Cost");
    let header = row(cost, "transport");
    let c = header.iter().position(|c| *c == "CPU/event (µs)").unwrap();
    assert_eq!(row(cost, "SSE")[c], "**6.00 (3.00–12.0)**");
    assert_eq!(row(cost, "long polling")[c], "8.00 (4.00–16.0)");
    assert!(md.contains("3 repetitions"));
    assert!(md.contains("in alternating order (ABCD, then DCBA"));
    // Problems name the repetition that failed.
    assert!(md.contains("- repetition 2: client 7: 12 events missing"));
}

#[test]
fn a_generator_bound_transport_is_marked_and_not_a_winner() {
    let mut run = run_with_floor();
    // SSE has the best verified latency; make its fleet the bottleneck.
    run.transports[2].fleet.generator_bound = true;
    run.transports[2].fleet.generator_bound_reasons =
        vec!["the fleet used 97% of its 1 core over the window (≥ 90%)".into()];
    run.generator_bound = true;
    let (_dir, md, _svg) = render(&run);
    assert!(row(&md, "SSE")[1].contains("⚠ generator-bound"));
    let headline = md.lines().find(|l| l.starts_with("**Headline:**")).unwrap();
    assert!(!headline.contains("**SSE**"), "{headline}");
    assert!(headline.contains("**long polling**"), "{headline}");
    assert!(md.contains("**⚠ Generator-bound:**"));
    assert!(md.contains("### Load generator"));
    assert!(md.contains("- SSE (repetition 1): the fleet used 97% of its 1 core"));
}

/// Whether the SVG has a text element reading exactly `text`.
fn has_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">{text}<")) || svg.contains(&format!(">\n{text}\n<"))
}

#[test]
fn cost_charts_draw_a_bar_per_transport_and_the_floor_line() {
    let run = run_with_floor();
    for (svg, unit) in [
        (plot::cpu_svg(&run).unwrap(), "µs"),
        (plot::memory_svg(&run).unwrap(), "KiB"),
    ] {
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for t in TransportKind::COMPARED {
            let fill = format!(r#"fill="{}""#, plot::colour_hex(t));
            // Verified bars are solid; the unverified WebSocket is pale (opacity).
            assert!(
                svg.contains(&fill),
                "no bar for {} in the {unit} chart",
                t.label()
            );
            assert!(has_text(&svg, t.label()), "no label {}", t.label());
        }
        assert!(
            svg.contains("dashed line: raw TCP floor:"),
            "no floor in the legend ({unit})"
        );
        assert!(svg.contains(" ✗"), "the unverified bar is marked");
    }
    let cpu = plot::cpu_svg(&run).unwrap();
    assert!(has_text(&cpu, "6 µs"), "SSE's value above its bar");
    assert!(has_text(&cpu, "dashed line: raw TCP floor: 2 µs"));
    let bytes = plot::bytes_svg(&run).unwrap();
    assert!(has_text(&bytes, "300 + 30 B"), "down + up for SSE");
    assert!(has_text(&bytes, "dashed line: raw TCP floor: 110 B"));
    let timeline = plot::timeline_svg(&run).unwrap();
    assert!(timeline.contains("server RSS (MiB)"));
    for t in TransportKind::ALL {
        assert!(
            timeline.contains(&plot::colour_hex(t)),
            "{} line",
            t.label()
        );
    }

    // No floor: no line, and a note says why.
    let cpu = plot::cpu_svg(&synthetic_run()).unwrap();
    assert!(!cpu.contains("raw TCP floor:"));
    assert!(cpu.contains("no raw-TCP floor in this run"));
    // No data at all still renders.
    let mut empty = synthetic_run();
    empty.transports.clear();
    for p in plot::PLOTS {
        let svg = (p.render)(&empty).unwrap();
        assert!(svg.contains("no data"), "{}", p.file);
    }
}

#[test]
fn client_habits_and_coarse_cpu_figures_are_reported() {
    let mut run = synthetic_run();
    // The WebSocket entry's clients pinged and paused (synthetic_run).
    let (_dir, md, _svg) = render(&run);
    let section = md
        .split("## Client habits")
        .nth(1)
        .expect("a Client habits section");
    let ws_row = section
        .lines()
        .find(|l| l.starts_with("| WebSocket"))
        .expect("the WebSocket entry's habits");
    assert!(ws_row.contains("| 50 | 10 | 10.0 s | 4 | 4 |"), "{ws_row}");
    assert!(!md.contains("CPU resolution"), "ns figures are exact");

    // Every entry in clock ticks over a short window: the figure is marked.
    for r in &mut run.transports {
        if let Some(s) = r.server.as_mut() {
            s.cpu_resolution_s = 0.01;
            s.cpu_s = 0.04;
        }
    }
    let md = report::render_markdown(&run);
    assert!(md.contains("> **CPU resolution:**"), "{md}");
    assert!(md.contains("±50 %"), "{md}");

    // Polite clients: no section.
    for r in &mut run.transports {
        r.habits = Default::default();
    }
    assert!(!report::render_markdown(&run).contains("## Client habits"));
}
