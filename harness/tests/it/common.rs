//! Helpers shared by the harness's integration tests: the binaries under
//! test, the repository root, bounded child processes and test histograms.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The `pushbench` binary cargo built for these tests.
pub fn pushbench() -> &'static str {
    env!("CARGO_BIN_EXE_pushbench")
}

/// The `push-server` binary beside `pushbench` (`cargo test --workspace`
/// builds it).
pub fn server_bin() -> PathBuf {
    let bin = harness::server_process::beside(Path::new(pushbench()));
    assert!(
        bin.is_file(),
        "build push-server first (cargo test --workspace builds it): {} is missing",
        bin.display()
    );
    bin
}

/// The repository's root (the harness crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate sits in the repository")
        .to_path_buf()
}

/// A latency histogram (µs) with `n` samples spread evenly over `lo..=hi` µs.
pub fn spread(lo: u64, hi: u64, n: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..n {
        h.record(lo + (hi - lo) * i / (n - 1)).unwrap();
    }
    h
}

/// What a bounded child run produced.
pub struct Run {
    /// `None` if it was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Whether it exited successfully.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Its status and output, for a failure message.
    pub fn report(&self) -> String {
        let status = self
            .status
            .map_or("killed at the timeout".to_string(), |s| s.to_string());
        format!(
            "status: {status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` in its own process group until it exits or `timeout` passes,
/// then kills the whole group (node and the Chromium it started, say).
/// Output goes to files, so a chatty child can never block on a full pipe;
/// colour codes are turned off so messages can be asserted on.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Run {
    let out_dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (out_dir.path().join("out"), out_dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                // Negative pid: the whole group.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Run {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// The options of a run into `out` against the push-server beside the test
/// binary: plain progress, no pinning, its own Ctrl-C token.
pub fn run_options(out: &Path) -> harness::runner::RunOptions {
    harness::runner::RunOptions {
        out_dir: out.to_path_buf(),
        target: None,
        server_bin: Some(server_bin()),
        command_line: vec!["pushbench-test".into()],
        interrupt: tokio_util::sync::CancellationToken::new(),
        progress: harness::progress::Progress::new(harness::progress::Mode::Plain),
        placement: harness::placement::Placement::default(),
    }
}
