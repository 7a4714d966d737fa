//! `report.md` of a sweep: the grid, the sweep charts, then one summary
//! table per point.

use crate::report::about::{definitions, preamble, provenance};
use crate::report::format::{code_span, counted, escape_md, lookup};
use crate::report::metrics::Group;
use crate::report::plot::plots_for;
use crate::report::rows::{point_runs, rows};
use crate::report::sections::{metric_table, problems};
use crate::results::RunFile;
use std::fmt::Write as _;

/// `report.md` of a sweep: the grid, the sweep charts, then one summary
/// table per point (the cost tables and per-run charts of a single run are
/// left out: they would mix points; `run.json` holds every figure).
pub(crate) fn render_sweep_markdown(run: &RunFile) -> String {
    let mut md = String::new();
    preamble(&mut md, run);
    let points = point_runs(run);
    let transports: Vec<&str> = rows(run).iter().map(|r| r.transport.label()).collect();
    let grid = lookup(&run.scenario, "sweep")
        .and_then(|v| serde_json::from_value::<crate::scenario::sweep::Sweep>(v.clone()).ok())
        .map(|s| s.describe())
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "**Sweep:** {} measured at {} (every transport at every point).\n",
        escape_md(&transports.join(", ")),
        counted(&points.len().to_string(), "point"),
    );
    if !grid.is_empty() {
        let _ = writeln!(md, "Grid: {}\n", code_span(&grid));
    }
    if run.generator_bound {
        md.push_str(
            "> **⚠ Generator-bound:** the load generator (the fleet) was saturated or lagging \
             at some points (marked below): their latency describes the fleet, not the server.\n\n",
        );
    }
    md.push_str("## Sweep charts\n\n");
    for p in plots_for(run) {
        let _ = writeln!(md, "### {}\n", p.title);
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }
    md.push_str(
        "Each line is one transport (one line per rate and payload when those are swept too); \
         a filled dot is a verified point, a cross one that lost, duplicated or reordered \
         events or whose fleet was the bottleneck. Offered events/s is what the clients \
         should have received (events due in the window on their topics, per second); \
         a transport that keeps up lies on the dashed line y = x.\n\n",
    );
    if crate::report::plot::link::sweeps_rtt(run) {
        md.push_str(
            "Against round-trip time: a point at RTT 0 with no loss (and no other link \
             property) is loopback, without the relay; every other point runs every client through the link relay (`docs/links.md` in \
             the repository). One line per transport, and per loss when that is swept too (dashed: with loss).\n\n",
        );
    }
    md.push_str("## Points\n\n");
    for (p, sub) in &points {
        let rows = rows(sub);
        let _ = writeln!(md, "### Point {}: {}\n", p.index, code_span(&p.to_string()));
        metric_table(&mut md, &rows, Group::Summary);
        problems(&mut md, &rows);
    }
    definitions(&mut md);
    provenance(&mut md, run);
    md.push_str(
        "---\n\nThis report is derived from `run.json` alone. Regenerate it (and its SVG charts) \
         with `pushbench report DIR`, where `DIR` is the directory holding this file.\n",
    );
    md
}
