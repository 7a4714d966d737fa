//! `report.html`: one self-contained page with a verdict on top, every table
//! of `report.md`, every plot of the run directory inline, and the provenance.
//!
//! One source for the tables: the page is `report.md` rendered to HTML
//! (pulldown-cmark), so the tables, problems, definitions and provenance are
//! the Markdown report's, generated from the same metric table
//! ([`report::METRICS`]), and cannot drift from it. On top of that this module
//! adds what Markdown cannot carry:
//!
//! - the **verdict** ([`verdict`]): for each aspect (latency, throughput, cost,
//!   bytes, resilience) and each metric of [`report::METRICS`] with a direction,
//!   the best transport with valid figures (verified, load generator not
//!   saturated) and its figure, the runner-up and the raw-TCP floor for
//!   reference. The floor never wins; an unverified or generator-bound
//!   transport never wins; an aspect without figures says "not measured in
//!   this run"; repetitions count by their median, as in the tables;
//! - every `*.svg` of the run directory inlined where `report.md` shows it as an
//!   image (plots it does not mention follow in a section of their own);
//! - classes that make invalid figures (struck through in Markdown) stand out.
//!
//! Self-contained means nothing is fetched and nothing runs: CSS is inline,
//! there is no script, and a Content-Security-Policy (`default-src 'none'`)
//! makes the browser refuse any load or script that a crafted SVG or text
//! might try. All text from the run is escaped.

use crate::report::about::scenario_name;
use crate::report::format::esc;
use crate::report::rows::is_sweep;
use crate::report::verdict::{verdict, verdict_html};
use crate::results::{self, RunFile};
use anyhow::Context as _;
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::fmt::Write as _;
use std::path::Path;

/// File name of the HTML report inside a run directory.
pub const REPORT_HTML: &str = "report.html";

/// One chart of a run directory, as SVG text.
#[derive(Debug, Clone)]
pub struct SvgFile {
    /// File name inside the run directory (`latency.svg`).
    pub file_name: String,
    /// The file's content.
    pub svg: String,
}

/// Reads every `*.svg` of `dir`, sorted by file name (so the page is the same
/// on every render). Unreadable files are skipped: a report must not fail
/// because of one broken chart, and the page then says it is missing.
pub fn read_svgs(dir: &Path) -> anyhow::Result<Vec<SvgFile>> {
    let mut plots = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries.flatten() {
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        if !file_name.ends_with(".svg") || file_name.starts_with('.') {
            continue;
        }
        if let Ok(svg) = std::fs::read_to_string(entry.path()) {
            plots.push(SvgFile { file_name, svg });
        }
    }
    plots.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(plots)
}

/// Writes `dir/report.html` for `run`, from `markdown` (the run's `report.md`)
/// and the `*.svg` files already in `dir`. Called by [`render_dir`]
/// after it wrote the Markdown and the plots.
pub fn write_html(dir: &Path, run: &RunFile, markdown: &str) -> anyhow::Result<()> {
    let plots = read_svgs(dir)?;
    let html = render_html(run, markdown, &plots);
    let path = dir.join(REPORT_HTML);
    results::io::write_atomic(&path, html.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------

/// The page's stylesheet: readable tables, invalid figures unmistakable.
pub(crate) const CSS: &str = "\
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b1b1b; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.8em 0; display: block; overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #d5d5d5; padding: 4px 8px; white-space: nowrap; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
del, .invalid { color: #a01010; text-decoration: line-through; background: #fdecec; }
.bad { color: #a01010; font-weight: 600; }
.ok { color: #11643a; font-weight: 600; }
.na { color: #666; font-style: italic; }
.warn { background: #fff4e0; border-left: 4px solid #e69f00; padding: 6px 10px; }
.verdict { background: #f6f9fc; border: 1px solid #cfdcea; border-radius: 6px; padding: 4px 16px 10px; }
.verdict h2 { border: 0; margin-top: 0.6em; }
.verdict .winner { font-weight: 600; }
.verdict-table td, .verdict-table th { white-space: normal; }
.verdict-table .num { white-space: nowrap; text-align: right; }
.note { color: #555; font-size: 0.92em; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; display: block; border: 1px solid #e3e3e3; }
figcaption { color: #555; font-size: 0.92em; }
code, pre { font-family: ui-monospace, 'SFMono-Regular', Menlo, monospace; font-size: 0.92em; }
pre { background: #f5f5f5; padding: 8px 10px; overflow-x: auto; }
blockquote { margin: 1em 0; padding: 4px 12px; border-left: 4px solid #e69f00; background: #fff4e0; }
footer { margin-top: 2em; color: #666; font-size: 0.9em; }
";

/// Nothing may be fetched and no script may run: the page is a document.
/// Inline styles are ours (and pulldown-cmark's `style="text-align…"`).
pub(crate) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Renders the whole page: head, the Markdown report up to its first
/// section, the verdict, the rest of the report with plots inlined, plots the
/// report does not mention, and a footer.
pub fn render_html(run: &RunFile, markdown: &str, plots: &[SvgFile]) -> String {
    let name = scenario_name(&run.scenario).unwrap_or_else(|| "unnamed scenario".into());
    let mut out =
        String::with_capacity(64 * 1024 + plots.iter().map(|p| p.svg.len()).sum::<usize>());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"generator\" content=\"pushbench {}\">\n\
         <title>pushbench: {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&name)
    );

    let verdict = verdict(run);
    let mut used = vec![false; plots.len()];
    // A sweep's points each have their own figures: one verdict over them
    // all would mix workloads, so its page has none (report.md's per-point
    // tables say it all).
    let mut verdict_done = is_sweep(run);
    let mut in_cell = false;
    let mut reopen_paragraph = false;
    // Markdown events waiting to be rendered, so our own HTML can be put between them.
    let mut pending: Vec<Event<'_>> = Vec::new();

    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events = Parser::new_ext(markdown, options);
    while let Some(event) = events.next() {
        match event {
            // The verdict goes before the first section (after the title,
            // scenario line and headline), so it is the first thing read.
            Event::Start(Tag::Heading {
                level: HeadingLevel::H2,
                ..
            }) if !verdict_done => {
                flush(&mut out, &mut pending);
                verdict_html(&mut out, run, &verdict);
                verdict_done = true;
                pending.push(event);
            }
            // A local SVG image: the SVG itself, inline, as a figure. A
            // figure may not sit in a paragraph, so an image alone in one
            // (as report.md writes them) takes its paragraph's place.
            Event::Start(Tag::Image { dest_url, .. }) => {
                if matches!(pending.last(), Some(Event::Start(Tag::Paragraph))) {
                    pending.pop();
                    reopen_paragraph = true;
                }
                // The alt text is the caption; consume it up to the end of the image.
                let mut alt = String::new();
                for inner in events.by_ref() {
                    match inner {
                        Event::End(TagEnd::Image) => break,
                        Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                        _ => {}
                    }
                }
                flush(&mut out, &mut pending);
                let file = dest_url.trim_start_matches("./");
                match plots.iter().position(|p| p.file_name == file) {
                    Some(i) => {
                        used[i] = true;
                        figure_html(&mut out, &plots[i], &alt);
                    }
                    None => {
                        let _ = write!(
                            out,
                            "<span class=\"na\">[{}: {} is not in this run directory, or not an \
                             SVG chart]</span>",
                            esc(&alt),
                            esc(&dest_url)
                        );
                    }
                }
            }
            // The paragraph an image was alone in ends with it.
            Event::End(TagEnd::Paragraph) if reopen_paragraph => reopen_paragraph = false,
            // More after the image in its paragraph: open the paragraph again for it.
            _ if reopen_paragraph => {
                reopen_paragraph = false;
                pending.push(Event::Start(Tag::Paragraph));
                handle_event(event, &mut pending, &mut in_cell);
            }
            other => handle_event(other, &mut pending, &mut in_cell),
        }
    }
    flush(&mut out, &mut pending);
    if !verdict_done {
        verdict_html(&mut out, run, &verdict);
    }

    let rest: Vec<&SvgFile> = plots
        .iter()
        .zip(&used)
        .filter(|&(_, &u)| !u)
        .map(|(p, _)| p)
        .collect();
    if !rest.is_empty() {
        out.push_str("<section id=\"plots\">\n<h2>Plots</h2>\n");
        for p in rest {
            figure_html(&mut out, p, p.file_name.trim_end_matches(".svg"));
        }
        out.push_str("</section>\n");
    }
    let _ = write!(
        out,
        "<footer>Generated by pushbench {} from <code>run.json</code> alone; \
         <code>pushbench report DIR</code> regenerates this page, <code>report.md</code> and the \
         plots.</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// Queues one Markdown event, restyled where the report's Markdown means
/// more than its markup: raw HTML becomes text, status cells get a class,
/// struck (invalid) figures say why.
pub(crate) fn handle_event<'a>(event: Event<'a>, pending: &mut Vec<Event<'a>>, in_cell: &mut bool) {
    match event {
        // Raw HTML in the Markdown is shown as text, never interpreted.
        Event::Html(t) | Event::InlineHtml(t) => pending.push(Event::Text(t)),
        Event::Start(Tag::TableCell) => {
            *in_cell = true;
            pending.push(event);
        }
        Event::End(TagEnd::TableCell) => {
            *in_cell = false;
            pending.push(event);
        }
        // Status cells get a class, so "✗ not verified" is red in every table.
        Event::Text(t) if *in_cell && (t.starts_with('✗') || t.starts_with('✓')) => {
            let class = if t.starts_with('✗') { "bad" } else { "ok" };
            pending.push(Event::InlineHtml(CowStr::from(format!(
                "<span class=\"{class}\">{}</span>",
                esc(&t)
            ))));
        }
        // report.md strikes exactly the speed figures of unverified transports.
        Event::Start(Tag::Strikethrough) => pending.push(Event::InlineHtml(CowStr::Borrowed(
            "<del class=\"invalid\" title=\"invalid: this transport did not verify\">",
        ))),
        other => pending.push(other),
    }
}

/// Renders the Markdown events waiting in `pending` and empties it.
pub(crate) fn flush(out: &mut String, pending: &mut Vec<Event<'_>>) {
    pulldown_cmark::html::push_html(out, pending.drain(..));
}

/// One plot as a figure: the SVG inline, captioned; a plot that is not a
/// plain SVG document is named instead of inlined.
pub(crate) fn figure_html(out: &mut String, svg_file: &SvgFile, caption: &str) {
    out.push_str("<figure>\n");
    match inline_svg(&svg_file.svg) {
        Ok(svg) => {
            out.push_str(svg);
            out.push('\n');
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "<p class=\"warn\">{} not inlined: {why}.</p>",
                esc(&svg_file.file_name)
            );
        }
    }
    let _ = writeln!(
        out,
        "<figcaption>{} <span class=\"note\">({})</span></figcaption>\n</figure>",
        esc(caption),
        esc(&svg_file.file_name)
    );
}

/// The `<svg>…</svg>` element of an SVG file, ready to inline: an XML
/// declaration, a doctype and comments before it are dropped. Anything that
/// is not one plain SVG element, or that carries a script or foreign HTML, is
/// refused (the CSP would block it anyway; refusing says why on the page).
pub fn inline_svg(text: &str) -> Result<&str, &'static str> {
    let mut s = text.trim_start_matches('\u{feff}').trim();
    loop {
        let skip = if s.starts_with("<?") {
            s.find("?>").map(|i| i + 2)
        } else if s.starts_with("<!--") {
            s.find("-->").map(|i| i + 3)
        } else if s.starts_with("<!") {
            s.find('>').map(|i| i + 1)
        } else {
            break;
        };
        match skip {
            Some(i) => s = s[i..].trim_start(),
            None => return Err("malformed prolog"),
        }
    }
    let opens =
        s.starts_with("<svg") && s[4..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>');
    if !opens || !s.ends_with("</svg>") {
        return Err("not an SVG document");
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("<script") || lower.contains("<foreignobject") {
        return Err("it contains a script or foreign content");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::metrics::*;
    use crate::report::verdict::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<b a="x">Tom & 'Jerry'</b>"#),
            "&lt;b a=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn every_metric_has_an_aspect_and_the_known_ones_are_right() {
        let aspect = |k| aspect_of(metric(k).unwrap());
        assert_eq!(aspect("latency_p50"), Aspect::Latency);
        assert_eq!(aspect("connect_p99"), Aspect::Latency);
        assert_eq!(aspect("delivered_per_s"), Aspect::Throughput);
        assert_eq!(aspect("requests_per_event"), Aspect::Cost);
        assert_eq!(aspect("missing"), Aspect::Correctness);
        assert_eq!(aspect("errors"), Aspect::Correctness);
    }

    #[test]
    fn svg_is_inlined_without_prolog_and_refused_when_unsafe() {
        let svg = "<svg width=\"1\" height=\"1\"><rect/></svg>";
        let with_prolog =
            format!("\u{feff}<?xml version=\"1.0\"?>\n<!-- made -->\n<!DOCTYPE svg>\n{svg}\n");
        assert_eq!(inline_svg(&with_prolog), Ok(svg));
        assert!(inline_svg("<svgx></svgx>").is_err());
        assert!(inline_svg("<div>hi</div>").is_err());
        assert!(inline_svg("<svg><SCRIPT>alert(1)</SCRIPT></svg>").is_err());
        assert!(inline_svg("<svg><foreignObject><p/></foreignObject></svg>").is_err());
        assert!(inline_svg("<?xml version=\"1.0\"").is_err());
    }

    /// A run without transports: the page around the Markdown is what is tested.
    fn empty_run() -> RunFile {
        serde_json::from_value(serde_json::json!({
            "schema_version": results::SCHEMA_VERSION,
            "provenance": results::Provenance::default(),
            "scenario": { "name": "t" },
            "complete": true,
            "generator_bound": false,
            "transports": [],
        }))
        .unwrap()
    }

    fn svg(name: &str) -> SvgFile {
        SvgFile {
            file_name: name.to_string(),
            svg: format!("<svg width=\"10\" height=\"10\"><title>{name}</title></svg>"),
        }
    }

    #[test]
    fn images_become_figures_and_unmentioned_plots_follow() {
        let md = "# t\n\n## Plot\n\n![the a chart](a.svg)\n\n![gone](missing.svg)\n\n\
                  ![b](./b.svg) and text after\n\n<b>raw</b>\n";
        let page = render_html(
            &empty_run(),
            md,
            &[svg("a.svg"), svg("b.svg"), svg("c.svg")],
        );
        // Inline, captioned, never inside a paragraph.
        assert!(
            page.contains("<figure>\n<svg width=\"10\" height=\"10\"><title>a.svg</title></svg>")
        );
        assert!(page.contains("<figcaption>the a chart <span class=\"note\">(a.svg)</span>"));
        assert!(!page.contains("<p><figure>"), "{page}");
        assert!(page.contains("</figure>\n<p> and text after</p>"), "{page}");
        assert!(page.contains("[gone: missing.svg is not in this run directory"));
        // c.svg is not in the Markdown: it gets a section of its own; a and b are not repeated.
        let plots = &page[page.find("<section id=\"plots\">").unwrap()..];
        assert!(plots.contains("<title>c.svg</title>") && !plots.contains("<title>a.svg</title>"));
        assert_eq!(page.matches("<title>b.svg</title>").count(), 1);
        // Raw HTML in the Markdown is text.
        assert!(page.contains("&lt;b&gt;raw&lt;/b&gt;") && !page.contains("<b>raw</b>"));
        // The verdict sits before the first section even with nothing measured.
        assert!(page.find("id=\"verdict\"").unwrap() < page.find("<h2>Plot</h2>").unwrap());
        assert!(page.contains("No transport was measured in this run."));
    }

    #[test]
    fn factors_and_names_read_well() {
        let p50 = metric("latency_p50").unwrap();
        let rate = metric("delivered_per_s").unwrap();
        assert_eq!(times(factor(p50, 2.0, 3.0).unwrap()), "×1.50");
        assert_eq!(times(factor(rate, 300.0, 100.0).unwrap()), "×3.00");
        assert_eq!(factor(p50, 0.0, 3.0), None);
        assert_eq!(figure(p50, 1.294), "1.29 ms");
        assert_eq!(figure(rate, 400.0), "400/s");
        assert_eq!(
            names(&[
                protocol::TransportKind::Sse.label().to_string(),
                protocol::TransportKind::Ws.label().to_string(),
                "django-eventstream (SSE)".to_string()
            ]),
            "SSE, WebSocket and django-eventstream (SSE)"
        );
    }
}
