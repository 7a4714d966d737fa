//! Small checks and conversions shared by the scenario's parts: names,
//! durations, positive numbers, and TOML errors with their line.

use anyhow::bail;
use std::time::Duration;

/// A valid `name` made from `s` (other characters become `-`).
pub(crate) fn sanitize_name(s: &str) -> String {
    let name: String = s
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        "scenario".to_string()
    } else {
        name
    }
}

/// Formats a duration the way scenario files write it (`1s 500ms`).
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(crate) fn positive(key: &str, d: Duration) -> anyhow::Result<()> {
    if d.is_zero() {
        bail!("`{key}` must be longer than 0 (e.g. \"500ms\", \"3s\"), got 0");
    }
    Ok(())
}

/// The name becomes a directory under `results/`: keep it to one safe path component.
pub(crate) fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!(
            "`name` must be 1 to 100 characters of letters, digits, `-`, `_` or `.` \
             (it names the results directory), got {name:?}"
        );
    }
    Ok(())
}

/// Turns a TOML error into one line: `line L, column C: message`.
///
/// toml's own `Display` draws a multi-line snippet; the CLI prints errors on
/// one line, so the position is computed from the span instead.
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            anyhow::anyhow!("line {line}, column {col}: {message}")
        }
        None => anyhow::anyhow!("{message}"),
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
