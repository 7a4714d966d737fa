//! `compare.md`: the verdict, the changed figures and the per-transport
//! table of a comparison, in Markdown.

use crate::compare::judge::{Change, Comparison, Diff};
use crate::report::Row;
use crate::results::RunFile;
use crate::scenario::sweep::SweepPoint;
use std::fmt::Write as _;
use std::path::Path;

/// `sse, ws` (or `none`).
pub(crate) fn list(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "none".to_string();
    }
    rows.iter()
        .map(|r| r.entries.first().map_or(r.transport.as_str(), |e| e.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Makes free text safe in a Markdown table cell.
pub(crate) fn cell(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(one_line.len());
    for c in one_line.chars() {
        if matches!(
            c,
            '\\' | '|' | '`' | '*' | '_' | '<' | '>' | '[' | ']' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `+12.3 %`, `−4.0 %`, `from 0` (a count from a zero base has no percentage).
pub(crate) fn change_pct(d: &Diff) -> String {
    if d.base == 0.0 {
        return if d.new == 0.0 {
            "0 %".to_string()
        } else {
            "from 0".to_string()
        };
    }
    let pct = (d.new - d.base) / d.base.abs() * 100.0;
    if pct < 0.0 {
        format!("−{:.1} %", -pct)
    } else {
        format!("+{pct:.1} %")
    }
}

/// A figure as the table shows it: in the metric's unit, or `1.23×` of the
/// reference in relative mode.
pub(crate) fn shown(d: &Diff, v: f64) -> String {
    if d.relative {
        format!("{v:.3}×")
    } else {
        let s = d.metric.unit.format(v);
        match d.metric.unit.suffix() {
            "" => s,
            u => format!("{s} {u}"),
        }
    }
}

/// One line naming a run: its directory, commit and start time.
pub(crate) fn describe(dir: &Path, run: &RunFile) -> String {
    let p = &run.provenance;
    let or_unknown = |s: &str| {
        if s.trim().is_empty() {
            "unknown".to_string()
        } else {
            cell(s)
        }
    };
    format!(
        "{} (commit {}, {}, host {})",
        cell(&dir.display().to_string()),
        or_unknown(&p.git_commit),
        or_unknown(&p.started_at),
        or_unknown(&p.host)
    )
}

/// Renders the comparison as Markdown: what was compared, the verdict, the
/// table (changed figures only unless `all`), and the notes.
pub fn render_markdown(
    c: &Comparison,
    base: (&Path, &RunFile),
    new: (&Path, &RunFile),
    all: bool,
) -> String {
    let mut md = String::from("# pushbench compare\n\n");
    let tol = c.options.tolerance * 100.0;
    let _ = writeln!(md, "- base: {}", describe(base.0, base.1));
    let _ = writeln!(md, "- new: {}", describe(new.0, new.1));
    match c.options.relative_to {
        Some(t) => {
            let _ = writeln!(
                md,
                "- mode: relative: each speed figure as a multiple of {}'s in the same run \
                 (correctness counts stay absolute)",
                t.label()
            );
        }
        None => md.push_str("- mode: absolute figures\n"),
    }
    let _ = writeln!(md, "- tolerance: ±{tol:.0} %\n");

    let regressions = c.regressions();
    let better = c
        .diffs
        .iter()
        .filter(|d| d.change == Change::Better)
        .count();
    let same = c.diffs.iter().filter(|d| d.change == Change::Same).count();
    if regressions > 0 {
        let _ = writeln!(
            md,
            "**✗ {regressions} regression{} beyond ±{tol:.0} %** ({better} better, {same} within \
             tolerance, of {} figures compared).\n",
            if regressions == 1 { "" } else { "s" },
            c.diffs.len()
        );
    } else {
        let _ = writeln!(
            md,
            "**✓ No regression beyond ±{tol:.0} %** ({better} better, {same} within tolerance, of \
             {} figures compared).\n",
            c.diffs.len()
        );
    }

    if !c.verification.is_empty() {
        md.push_str(
            "| transport | verified in BASE | verified in NEW | verdict |\n|---|---|---|---|\n",
        );
        for v in &c.verification {
            let mark = |ok: bool| if ok { "✓" } else { "✗" };
            let verdict = if v.new {
                "better: verifies again".to_string()
            } else {
                let why = v.problems.first().map(|p| cell(p)).unwrap_or_default();
                format!("**✗ regression: not verified** {why}")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                at_point(&v.label, v.point),
                mark(v.base),
                mark(v.new),
                verdict.trim_end()
            );
        }
        md.push('\n');
    }

    let rows: Vec<&Diff> = c
        .diffs
        .iter()
        .filter(|d| all || d.change != Change::Same)
        .collect();
    if rows.is_empty() {
        if !c.diffs.is_empty() {
            let _ = writeln!(md, "Every compared figure is within ±{tol:.0} %.\n");
        }
    } else {
        md.push_str(
            "| transport | metric | better | base | new | new/base | change | verdict |\n\
             |---|---|---|---:|---:|---:|---:|---|\n",
        );
        for d in rows {
            let verdict = match d.change {
                Change::Worse => "**✗ worse: regression**",
                Change::Better => "✓ better",
                Change::Same => "same",
            };
            let ratio = d
                .ratio()
                .map(|r| format!("{r:.3}"))
                .unwrap_or_else(|| "–".to_string());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {ratio} | {} | {verdict} |",
                at_point(&d.label, d.point),
                cell(d.metric.label),
                d.metric.better.describe(),
                shown(d, d.base),
                shown(d, d.new),
                change_pct(d),
            );
        }
        md.push('\n');
    }

    if !c.notes.is_empty() {
        md.push_str("Notes:\n\n");
        for n in &c.notes {
            let _ = writeln!(md, "- {}", cell(n));
        }
        md.push('\n');
    }
    md
}

/// A transport's label, with its sweep point when it has one.
pub(crate) fn at_point(label: &str, point: Option<SweepPoint>) -> String {
    match point {
        Some(p) => cell(&format!("{label} @ {p}")),
        None => label.to_string(),
    }
}
