//! `report.md` and its charts, derived from `run.json` alone.
//!
//! Raw results are stored; every figure in a report is computed here, at
//! render time, from one table of metric definitions ([`METRICS`]: key,
//! label, unit, which direction is better, and a function of a
//! [`TransportResult`]). Adding a metric is adding a row; the summary table,
//! the definitions section and the headline all follow from it.
//!
//! Validity comes before speed: a transport that did not verify is marked
//! "✗ not verified", its problems are listed, and its speed figures are
//! struck through, never shown as if they were valid. A transport whose load
//! generator was saturated is marked "⚠ generator-bound". The headline only
//! considers verified transports that were not generator-bound, and never the
//! raw-TCP floor, which is the reference, not a contender.
//!
//! Repetitions are aggregated by [`rows`]: one [`Row`] per transport, whose
//! [`Row::figure`] gives the median and min–max of a metric over its
//! repetitions. Ratios to the floor are metrics too: [`rows`] attaches to
//! each entry the floor's entry of the same repetition
//! ([`TransportResult::floor`]), and the `…_x_floor` metrics divide by it.
//!
//! The room's files, from the top down (each imports only files below it):
//!
//! - this file: [`render_dir`] and [`render_markdown`], which pick the kind
//!   of report (single run, [`sweep`], [`mixed`]) and write every file;
//! - [`single`], [`sweep`], [`mixed`]: the three kinds of `report.md`;
//! - [`html`] and [`verdict`]: `report.html`, the Markdown rendered to HTML
//!   with a verdict on top and the charts inline;
//! - [`sections`], [`habits`], [`about`]: the sections a report is built from;
//! - [`plot`]: the SVG charts (`style`, `spectra`, `bars`, `timeline`, `xy`);
//! - [`rows`]: one row per transport, repetitions aggregated;
//! - [`metrics`]: the table of metric definitions;
//! - [`format`]: number formatting, Markdown escaping, scenario lookups.
//!
//! [`TransportResult::floor`]: crate::results::TransportResult::floor

use std::path::Path;

use anyhow::Context as _;

use crate::results::{self, RunFile};

pub mod about;
pub mod browser;
pub mod format;
pub mod habits;
pub mod html;
pub mod metrics;
pub mod mixed;
pub mod plot;
pub mod rows;
pub mod scale;
pub mod sections;
pub mod single;
pub mod sweep;
#[cfg(test)]
mod tests;
pub mod verdict;

pub use about::scenario_name;
pub use format::{escape_md, format_ms};
pub use metrics::{Better, Group, METRICS, Metric, Unit, metric};
pub use rows::{Figure, Row, is_mixed, is_sweep, point_runs, rows};

/// File name of the Markdown report inside a run directory.
pub const REPORT_MD: &str = "report.md";

/// Reads `dir/run.json` and (re)writes `dir/report.md`, every chart of [`plot::PLOTS`] and
/// `dir/report.html` (which inlines the charts, so it comes last).
///
/// This is all `pushbench report DIR` does, so a report can be regenerated
/// (after a change to the report code, say) without re-running anything.
pub fn render_dir(dir: &Path) -> anyhow::Result<()> {
    let run = results::io::read_run(dir)?;
    let md = render_markdown(&run);
    results::io::write_atomic(&dir.join(REPORT_MD), md.as_bytes())?;
    plot::write_all(&run, dir)
        .with_context(|| format!("writing the charts in {}", dir.display()))?;
    html::write_html(dir, &run, &md)
}

/// Renders the whole `report.md` for a run: a sweep's, a mixed run's or a
/// single run's.
pub fn render_markdown(run: &RunFile) -> String {
    if is_sweep(run) {
        sweep::render_sweep_markdown(run)
    } else if is_mixed(run) {
        mixed::render_markdown(run)
    } else {
        single::render_markdown(run)
    }
}
