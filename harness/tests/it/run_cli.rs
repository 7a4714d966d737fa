//! The command line's refusals: bad input is a usage error (exit 2) in one
//! line naming what is wrong, never a panic or a half-made run.

use std::path::Path;
use std::process::Command;

use crate::common::pushbench;

/// Runs the binary with `args`; returns (exit code, stderr).
fn run_cli(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(pushbench())
        .args(args)
        .current_dir(cwd)
        // No server is needed to refuse a bad command line; make sure none is found either way.
        .env("PUSHBENCH_SERVER_BIN", "/nonexistent/push-server")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error(stderr: &str) {
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
}

#[test]
fn zero_clients_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["run", "--clients", "0"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("`clients` must be between 1 and"),
        "{stderr}"
    );
    assert!(!dir.path().join("results").exists(), "nothing is written");
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["run", "--duration", "abc"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("--duration") && stderr.contains("abc"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_scenario_key_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    std::fs::write(&file, "clients = 5\nwarmpu = \"1s\"\n").unwrap();
    let (code, stderr) = run_cli(&["run", "--scenario", "typo.toml"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(stderr.contains("typo.toml"), "names the file: {stderr}");
    assert!(stderr.contains("warmpu"), "names the key: {stderr}");
    assert!(stderr.contains("line 2"), "says where: {stderr}");
}

#[test]
fn a_bad_value_in_a_scenario_file_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "clients = 5\nrate = -1\n").unwrap();
    std::fs::write(
        dir.path().join("habits.toml"),
        "clients = 5\n\n[behaviour]\npause_every = \"1s\"\npause_for = \"2s\"\n",
    )
    .unwrap();
    let (code, stderr) = run_cli(&["run", "--scenario", "bad.toml"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("scenario file bad.toml: line 2: `rate`") && stderr.contains("got -1"),
        "{stderr}"
    );
    // Overridden on the command line, the file's value no longer matters.
    let (code, stderr) = run_cli(
        &["run", "--scenario", "bad.toml", "--rate", "5"],
        dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("push-server not found"),
        "validated: {stderr}"
    );
    // A key in a table.
    let (code, stderr) = run_cli(&["run", "--scenario", "habits.toml"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("habits.toml: line 5: `behaviour.pause_for` must be more than 0"),
        "{stderr}"
    );
    // A negative number on the command line is a value, not a flag.
    let (code, stderr) = run_cli(&["run", "--rate", "-1"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("`rate`") && stderr.contains("got -1"),
        "{stderr}"
    );
}

#[test]
fn a_missing_server_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["run", "--clients", "1"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(&stderr);
    assert!(
        stderr.contains("push-server not found at /nonexistent/push-server"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cargo build --release -p servers"),
        "{stderr}"
    );
}

#[test]
fn report_of_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_cli(&["report", "nope"], dir.path());
    assert_eq!(code, 2, "bad input, as for compare: {stderr}");
    assert_one_line_error(&stderr);
    assert!(stderr.contains("nope"), "{stderr}");
}
