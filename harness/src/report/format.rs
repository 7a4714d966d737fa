//! Formatting shared by every part of the report: numbers to a readable
//! precision, Markdown escaping, and lookups into the stored scenario.

use serde_json::Value;

/// `1 topic`, `4 topics`.
pub(crate) fn counted(n: &str, noun: &str) -> String {
    let plural = if n == "1" { "" } else { "s" };
    format!("{} {noun}{plural}", escape_md(n))
}

/// A value by key at the top level of `v` or inside one of its object fields.
pub(crate) fn lookup<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).or_else(|| {
        v.as_object()?
            .values()
            .filter(|inner| inner.is_object())
            .find_map(|inner| inner.get(key))
    })
}

/// The first of `keys` present, as display text (strings as they are, numbers as written).
pub(crate) fn lookup_str(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match lookup(v, k)? {
        Value::String(s) => Some(s.clone()),
        // `5.0` reads better as `5`; other numbers as JSON wrote them.
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// A duration named `key` as humantime text (`3s`, `500ms`), whichever way it
/// was stored: a humantime string, serde's `{secs, nanos}`, or a number under
/// `key_s` / `key_ms`.
pub(crate) fn lookup_duration(v: &Value, key: &str) -> Option<String> {
    if let Some(found) = lookup(v, key) {
        match found {
            Value::String(s) => return Some(s.clone()),
            Value::Object(o) => {
                let secs = o.get("secs")?.as_u64()?;
                let nanos = o.get("nanos").and_then(Value::as_u64).unwrap_or(0);
                let d = std::time::Duration::new(secs, u32::try_from(nanos).ok()?);
                return Some(humantime::format_duration(d).to_string());
            }
            _ => {}
        }
    }
    for (suffix, per_s) in [("_s", 1.0), ("_secs", 1.0), ("_ms", 1e-3)] {
        if let Some(n) = lookup(v, &format!("{key}{suffix}")).and_then(Value::as_f64) {
            let secs = n * per_s;
            if secs.is_finite() && secs >= 0.0 {
                let d = std::time::Duration::from_secs_f64(secs.min(1e12));
                return Some(humantime::format_duration(d).to_string());
            }
        }
    }
    None
}

/// Formats milliseconds with about three significant digits (HDR histograms
/// keep three): `0.412`, `4.12`, `41.2`, `412`, `4123`.
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".to_string();
    }
    let a = ms.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a < 1.0 {
        format!("{ms:.3}")
    } else if a < 10.0 {
        format!("{ms:.2}")
    } else if a < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// Formats a rate or ratio with about three significant digits (the
/// precision is chosen on the rounded value, so 0.9999 reads `1.00`, not `1.000`).
pub(crate) fn format_significant(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a >= 99.95 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 9.995 {
        format!("{v:.1}")
    } else if a >= 0.9995 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Collapses line breaks so free text cannot break a list item or table row.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes the characters that would turn free text into Markdown or HTML.
pub fn escape_md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Markdown code span that holds any text (backtick fences longer than any run inside).
pub(crate) fn code_span(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Joins arguments as a POSIX shell would need them quoted, so the line can be pasted.
pub(crate) fn shell_join(args: &[String]) -> String {
    if args.is_empty() {
        return "(not recorded)".to_string();
    }
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
