//! The rules of docs/architecture.md, checked on the source itself:
//!
//! - no import circles between the files of a crate: every `crate::…` and
//!   `super::…` path in a file's code (its unit tests left out) is an arrow
//!   to the file that defines that module, and the arrows form no cycle;
//! - the crates point one way: protocol uses no other crate of ours,
//!   clients and servers only protocol, the harness the three of them;
//! - no source file over [`MAX_LINES`] lines, but the generated and the
//!   listed table-like ones ([`LONG_FILES`]).
//!
//! The graph is read from the text (a small parser, not rustc), so it sees
//! paths written out in full; that is how this codebase writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::repo_root;

/// Longest source file allowed (unit tests in their own `tests.rs` files
/// count, like any other file).
const MAX_LINES: usize = 650;

/// Files allowed to be longer, and why.
const LONG_FILES: &[(&str, &str)] = &[];

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file of a crate (`src/report/plot/mod.rs` →
/// `["report", "plot"]`; `src/lib.rs` → `[]`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// A file's code without comments, string contents and its unit tests.
fn code_of(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    let mut out = String::new();
    for line in text[..cut].lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module paths a file's code names: `crate::a::b::…` and `super::…`,
/// including every name inside `use crate::a::{b::c, d}` groups.
fn paths_named(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for (start, root) in [("crate::", None), ("super::", Some(()))] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':') {
                continue;
            }
            let mut base: Vec<String> = match root {
                None => Vec::new(),
                Some(()) => {
                    let mut b = here.to_vec();
                    b.pop();
                    b
                }
            };
            let mut j = from;
            loop {
                let s = j;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                if s == j {
                    break;
                }
                let seg = &code[s..j];
                if seg == "super" {
                    base.pop();
                } else {
                    base.push(seg.to_string());
                }
                if code[j..].starts_with("::") && !code[j + 2..].starts_with('{') {
                    j += 2;
                } else {
                    break;
                }
            }
            found.push(base.clone());
            // A group: every path inside it, relative to the base.
            if code[j..].starts_with("::{") {
                let open = j + 3;
                let mut depth = 1;
                let mut k = open;
                while k < bytes.len() && depth > 0 {
                    match bytes[k] {
                        b'{' => depth += 1,
                        b'}' => depth -= 1,
                        _ => {}
                    }
                    k += 1;
                }
                expand_group(&base, &code[open..k - 1], &mut found);
            }
        }
    }
    found
}

/// The paths of a `use` group's inside (`a::B, c::{d, e}`), each after `base`.
fn expand_group(base: &[String], inside: &str, found: &mut Vec<Vec<String>>) {
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in inside.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inside[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inside[start..]);
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (head, group) = match item.find("::{") {
            Some(at) => (&item[..at], Some(&item[at + 3..item.len() - 1])),
            None => (item, None),
        };
        let mut p = base.to_vec();
        for seg in head.split("::") {
            let seg = seg.split_whitespace().next().unwrap_or("");
            if !seg.is_empty() && seg != "self" {
                p.push(seg.to_string());
            }
        }
        match group {
            Some(g) => expand_group(&p, g, found),
            None => found.push(p),
        }
    }
}

/// The import graph of one crate: file → files it names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .filter(|f| !f.ends_with("main.rs") || f.parent() != Some(src))
        .map(|f| {
            (
                module_of(src, f),
                f.strip_prefix(src).unwrap().display().to_string(),
            )
        })
        .collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let name = f.strip_prefix(src).unwrap().display().to_string();
        if name == "main.rs" || f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let here = module_of(src, f);
        let code = code_of(&fs::read_to_string(f).unwrap());
        let edges = g.entry(name.clone()).or_default();
        for mut p in paths_named(&code, &here) {
            // The longest prefix that is a module file of this crate.
            while !p.is_empty() && !modules.contains_key(&p) {
                p.pop();
            }
            if let Some(target) = modules.get(&p)
                && *target != name
            {
                edges.insert(target.clone());
            }
        }
    }
    g
}

/// Every cycle of `g` (one per strongly connected component of two or more files).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm.
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(next) = t.g.get(v) {
            for w in next {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(lw));
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(iw));
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = repo_root();
    let mut found = Vec::new();
    for krate in ["protocol", "clients", "servers", "harness"] {
        let g = graph(&root.join(krate).join("src"));
        assert!(g.len() > 3, "{krate}: too few files read");
        let arrows: usize = g.values().map(BTreeSet::len).sum();
        assert!(arrows >= g.len() / 2, "{krate}: only {arrows} imports read");
        for c in cycles(&g) {
            found.push(format!("{krate}: {}", c.join(" ↔ ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    let here = vec!["report".to_string(), "plot".to_string(), "xy".to_string()];
    let named = paths_named(
        "use crate::report::{rows::Row, format::{esc, one_line}};\nlet x = super::style::colour(t);",
        &here,
    );
    assert!(named.contains(&vec!["report".into(), "rows".into(), "Row".into()]));
    assert!(named.contains(&vec!["report".into(), "format".into(), "esc".into()]));
    assert!(named.contains(&vec![
        "report".into(),
        "plot".into(),
        "style".into(),
        "colour".into()
    ]));
}

#[test]
fn crates_point_one_way() {
    let root = repo_root();
    let allowed: &[(&str, &[&str])] = &[
        ("protocol", &[]),
        ("clients", &["protocol"]),
        ("servers", &["protocol"]),
        ("harness", &["protocol", "clients"]),
    ];
    for (krate, deps) in allowed {
        let manifest = fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        let normal = manifest
            .split("\n[")
            .find(|s| s.starts_with("dependencies]"))
            .unwrap_or("");
        for other in ["protocol", "clients", "servers", "harness"] {
            let uses = normal
                .lines()
                .any(|l| l.split(['.', ' ', '=']).next() == Some(other));
            assert_eq!(
                uses,
                deps.contains(&other),
                "{krate}'s [dependencies] and {other}: see docs/architecture.md"
            );
        }
    }
}

#[test]
fn no_source_file_is_too_long_to_read_at_once() {
    let root = repo_root();
    let mut long = Vec::new();
    for krate in ["protocol", "clients", "servers", "harness"] {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        for f in files {
            let rel = f.strip_prefix(&root).unwrap().display().to_string();
            let n = fs::read_to_string(&f).unwrap().lines().count();
            if n > MAX_LINES && !LONG_FILES.iter().any(|(p, _)| *p == rel) {
                long.push(format!("{rel}: {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these by what a reader looks for (or list them in LONG_FILES with the reason):\n{}",
        long.join("\n")
    );
}
