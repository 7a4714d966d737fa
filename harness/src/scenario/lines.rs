//! Where a scenario file sets a key, so that a bad *value* is reported
//! with its file and line, as a bad key or a bad type already is by the
//! TOML parser.
//!
//! Validation runs on the finished scenario (the file, then the
//! command-line flags), and its messages name the key in backticks:
//! `` `rate` ``, `` `group[1].clients` ``, `` `behaviour.pause_for` ``.
//! [`locate`] finds the line of that key in the file's text by following
//! its tables (`[behaviour]`, the `i`th `[[group]]`, `[sweep]`); a key the
//! file does not set (a default, or a flag's value) is not located.

use std::path::Path;

/// The first backticked key of a validation message: `rate`,
/// `group[1].clients`, `behaviour.pause_for`.
fn key_of(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    let key = &message[start..start + len];
    key.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
        .then_some(key)
}

/// The table a line opens (`[behaviour]` → `behaviour`, `[[group]]` →
/// `group`), if it opens one; and whether it is an array element.
fn table_of(line: &str) -> Option<(&str, bool)> {
    let t = line.trim();
    if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
        return Some((inner.trim(), true));
    }
    let inner = t.strip_prefix('[')?.split(']').next()?;
    Some((inner.trim(), false))
}

/// Whether `line` sets `key` (`key = …`, `"key" = …`).
fn sets(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let rest = t
        .strip_prefix(key)
        .or_else(|| t.strip_prefix(&format!("\"{key}\"")));
    rest.is_some_and(|r| r.trim_start().starts_with('='))
}

/// The 1-based line of `text` where the key path `key` is set.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    // `group[1].clients` → table `group`, element 1, key `clients`.
    let (table, index, leaf) = match key.split_once('.') {
        None => ("", None, key),
        Some((head, leaf)) => match head.split_once('[') {
            Some((t, i)) => (t, i.trim_end_matches(']').parse::<usize>().ok(), leaf),
            None => (head, None, leaf),
        },
    };
    // A nested leaf (`group[0].behaviour.pause_for`) is looked for under
    // its own sub-table too.
    let (sub, leaf) = match leaf.rsplit_once('.') {
        Some((sub, l)) => (Some(sub), l),
        None => (None, leaf),
    };
    let mut current = "";
    let mut element: Option<usize> = None;
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    for (n, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        if let Some((t, array)) = table_of(code) {
            current = t;
            if array {
                let count = seen.entry(t).or_insert(0);
                element = Some(*count);
                *count += 1;
            }
            continue;
        }
        let wanted_table = match sub {
            Some(sub) => format!("{table}.{sub}"),
            None => table.to_string(),
        };
        let in_table = current == wanted_table && (index.is_none() || element == index);
        if in_table && sets(code, leaf) {
            return Some(n + 1);
        }
    }
    None
}

/// `error`, prefixed with `scenario file PATH: line N:` when it names a
/// key that the file at `path` (with `text`) sets.
pub fn locate(path: &Path, text: &str, error: anyhow::Error) -> anyhow::Error {
    let message = error.to_string();
    match key_of(&message).and_then(|k| line_of(text, k)) {
        Some(line) => anyhow::anyhow!("scenario file {}: line {line}: {message}", path.display()),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "name = \"x\"\nrate = -1\n\n[behaviour]\npause_for = \"9s\"\n\n\
        [[group]]\nname = \"a\"\nclients = 1\n\n[[group]]\nname = \"b\"\nclients = 0\n\
        [group.behaviour]\npause_every = \"1s\"\n";

    #[test]
    fn keys_are_found_in_their_tables() {
        assert_eq!(line_of(FILE, "rate"), Some(2));
        assert_eq!(line_of(FILE, "behaviour.pause_for"), Some(5));
        assert_eq!(line_of(FILE, "group[0].clients"), Some(9));
        assert_eq!(line_of(FILE, "group[1].clients"), Some(13));
        assert_eq!(line_of(FILE, "group[1].behaviour.pause_every"), Some(15));
        assert_eq!(line_of(FILE, "clients"), None, "not set at the top level");
        assert_eq!(line_of(FILE, "payload_bytes"), None);
    }

    #[test]
    fn a_validation_message_gets_the_file_and_line_of_its_key() {
        let e = anyhow::anyhow!(
            "`rate` (events/s per topic) must be a number between 0 and 1000000, got -1"
        );
        let located = locate(Path::new("s.toml"), FILE, e).to_string();
        assert_eq!(
            located,
            "scenario file s.toml: line 2: `rate` (events/s per topic) must be a number \
             between 0 and 1000000, got -1"
        );
        let e = anyhow::anyhow!("`duration` must be longer than 0");
        assert_eq!(
            locate(Path::new("s.toml"), FILE, e).to_string(),
            "`duration` must be longer than 0",
            "a key the file does not set is not located"
        );
    }
}
