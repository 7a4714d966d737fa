//! The committed reference reports are a golden set: every `run.json` under
//! `results/reference/` re-renders (with `report::render_dir`, exactly what
//! `pushbench report DIR` does) to byte-identical `report.md`, `report.html`
//! and charts. A change to the report code that changes a committed report
//! fails here until the reference is re-rendered on purpose
//! (`for d in results/reference/*/; do pushbench report "$d"; done`) and the
//! change reviewed in the diff.

use std::fs;
use std::path::{Path, PathBuf};

use harness::report;

fn reference_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    let mut dirs = Vec::new();
    for entry in fs::read_dir(&root).expect("results/reference is committed") {
        let dir = entry.unwrap().path();
        if dir.join("run.json").is_file() && dir.join("report.md").is_file() {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn reference_reports_render_byte_identical() {
    let dirs = reference_dirs();
    assert!(
        dirs.len() >= 10,
        "expected the reference folders, found {}",
        dirs.len()
    );
    let scratch = tempfile::tempdir().unwrap();
    let mut compared = 0;
    let mut differ = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = scratch.path().join(&name);
        fs::create_dir_all(&out).unwrap();
        fs::copy(dir.join("run.json"), out.join("run.json")).unwrap();
        report::render_dir(&out).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        for entry in fs::read_dir(&out).unwrap() {
            let file = entry.unwrap().path();
            let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
            let committed = dir.join(&file_name);
            if file_name == "run.json" || !committed.is_file() {
                continue;
            }
            compared += 1;
            if fs::read(&file).unwrap() != fs::read(&committed).unwrap() {
                differ.push(format!("{name}/{file_name}"));
            }
        }
    }
    assert!(compared >= 5 * dirs.len(), "only {compared} files compared");
    assert!(
        differ.is_empty(),
        "re-rendered reports differ from the committed ones: {differ:?}"
    );
}
