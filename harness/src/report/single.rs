//! `report.md` of a single run: the headline, the summary table, the
//! latency chart, then faults, chat, client habits, cost, how to read it,
//! definitions and provenance.

use crate::report::about::{definitions, how_to_read, preamble, provenance};
use crate::report::browser::browser_section;
use crate::report::habits::habits;
use crate::report::metrics::Group;
use crate::report::plot::{LATENCY_SVG, plots_for};
use crate::report::rows::rows;
use crate::report::scale::scale_section;
use crate::report::sections::{chat, cost, faults, floor_note, headline, metric_table, problems};
use crate::results::RunFile;
use std::fmt::Write as _;

/// Renders the whole `report.md` of a run that is neither a sweep nor mixed.
pub(crate) fn render_markdown(run: &RunFile) -> String {
    let rows = rows(run);
    let mut md = String::new();
    preamble(&mut md, run);
    let _ = writeln!(md, "{}\n", headline(&rows));
    if run.generator_bound {
        md.push_str(
            "> **⚠ Generator-bound:** the load generator (the fleet) was saturated or lagging \
             while some transports ran (see *Load generator* below): their latency describes \
             the fleet, not the server, and they are left out of the headline.\n\n",
        );
    }

    md.push_str("## Summary\n\n");
    metric_table(&mut md, &rows, Group::Summary);
    floor_note(&mut md, &rows);
    problems(&mut md, &rows);

    for p in plots_for(run).filter(|p| p.file == LATENCY_SVG) {
        let _ = writeln!(md, "## {}\n", p.title);
        let _ = writeln!(md, "![{}]({})\n", p.title.to_lowercase(), p.file);
    }

    browser_section(&mut md, run);
    scale_section(&mut md, run);
    faults(&mut md, run);
    chat(&mut md, run);
    habits(&mut md, run);
    cost(&mut md, run, &rows);
    how_to_read(&mut md, run);
    definitions(&mut md);
    provenance(&mut md, run);
    md.push_str(
        "---\n\nThis report is derived from `run.json` alone. Regenerate it (and its SVG charts) \
         with `pushbench report DIR`, where `DIR` is the directory holding this file.\n",
    );
    md
}
