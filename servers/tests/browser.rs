//! push-server against clients that are not ours: a real browser (headless
//! Chromium's `EventSource` and `WebSocket`) and Node's standard `eventsource`
//! and `ws` packages, all resuming across server-ended streams.
//!
//! The checks live in `browser/compat.mjs` (see there); this test runs it on
//! the freshly built binary and fails, never skips, when Node or Chromium is
//! missing: a compatibility check that silently does not run proves nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Bound of the whole compat run (the script bounds itself at ~45 s).
const COMPAT_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound of `npm ci` (a few small packages; mostly network time).
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
const CHROMIUM: &str = "/usr/bin/chromium";
/// The npm packages (`eventsource` 4, `playwright-core`) require Node 20.
const MIN_NODE_MAJOR: u32 = 20;

/// What a bounded child run produced.
struct Run {
    /// `None` if it was killed at the deadline.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn report(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at the timeout".to_string(),
        };
        format!(
            "status: {status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion or until `timeout`, then kills its whole process
/// group: compat.mjs starts push-server and Chromium, which must not outlive a
/// hung run.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> Run {
    use std::os::unix::process::CommandExt;

    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Pipes are drained on their own threads so a chatty child cannot block.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                // Negative pid: the whole group (node, push-server, Chromium).
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    // Grandchildren could keep the pipes open after a kill; give up on them
    // rather than wait forever.
    let join = |h: thread::JoinHandle<String>| {
        let until = Instant::now() + Duration::from_secs(5);
        while !h.is_finished() && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
        if h.is_finished() {
            h.join().unwrap_or_default()
        } else {
            "(output not collected: pipe still held open)".to_string()
        }
    };
    Run {
        status,
        stdout: join(out),
        stderr: join(err),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("servers/ has a parent")
        .to_path_buf()
}

/// Fails with install instructions unless Node ≥ 20 and Chromium are present.
fn require_node_and_chromium() {
    let node = Command::new("node").arg("--version").output();
    let version = match node {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => panic!(
            "node not found: install Node.js >= {MIN_NODE_MAJOR} with npm \
             (e.g. from https://nodejs.org or `apt-get install -y nodejs npm` on a \
             distribution that ships it) to run the browser compatibility test"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= MIN_NODE_MAJOR,
        "node {version} is too old: install Node.js >= {MIN_NODE_MAJOR}"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install it with `apt-get install -y chromium` \
         (the browser compatibility test needs a real browser)"
    );
}

#[test]
fn standard_clients_and_a_real_browser_resume_without_gaps() {
    require_node_and_chromium();
    let root = repo_root();
    ensure_node_modules(&root);

    let server = env!("CARGO_BIN_EXE_push-server");
    let run = run_bounded(
        Command::new("node")
            .arg("browser/compat.mjs")
            .arg(server)
            .current_dir(&root),
        COMPAT_TIMEOUT,
    );
    assert!(
        run.status.is_some_and(|s| s.success()),
        "browser/compat.mjs failed:\n{}",
        run.report()
    );
    // Belt and braces: a zero exit must come with the script's own verdict.
    assert!(
        run.stdout.contains("\"ok\": true"),
        "compat.mjs exited 0 without an ok summary:\n{}",
        run.report()
    );
    // Keep the figures visible with `cargo test -- --nocapture`.
    println!("{}", run.stdout);
}

/// `npm ci` in `browser/` unless its packages are there (scripts/test.sh
/// installs them first; this is for a bare `cargo test`).
fn ensure_node_modules(root: &Path) {
    let browser_dir = root.join("browser");
    if !browser_dir.join("node_modules").is_dir() {
        let run = run_bounded(
            Command::new("npm").arg("ci").current_dir(&browser_dir),
            NPM_CI_TIMEOUT,
        );
        assert!(
            run.status.is_some_and(|s| s.success()),
            "`npm ci` in {} failed:\n{}",
            browser_dir.display(),
            run.report()
        );
    }
}

/// The live demo page (`push-server --demo-page`, what `pushbench demo`
/// serves) in headless Chromium: no console errors, contiguous ids on every
/// transport's panel across a drop of every connection, the heartbeat's
/// lock overlay on silence and on "expired", a Web Notification for a new
/// message. The checks live in `browser/demo.mjs`. With
/// `PUSHBENCH_DEMO_SCREENSHOT=PATH` it also saves a screenshot there (how
/// `docs/demo.png` is made).
#[test]
fn the_demo_page_works_in_a_real_browser() {
    require_node_and_chromium();
    let root = repo_root();
    ensure_node_modules(&root);
    let server = env!("CARGO_BIN_EXE_push-server");
    let mut cmd = Command::new("node");
    cmd.arg("browser/demo.mjs").arg(server).current_dir(&root);
    if let Ok(shot) = std::env::var("PUSHBENCH_DEMO_SCREENSHOT") {
        cmd.arg(shot);
    }
    let run = run_bounded(&mut cmd, COMPAT_TIMEOUT);
    assert!(
        run.status.is_some_and(|s| s.success()),
        "browser/demo.mjs failed:\n{}",
        run.report()
    );
    assert!(
        run.stdout.contains("\"ok\": true"),
        "demo.mjs exited 0 without an ok summary:\n{}",
        run.report()
    );
    println!("{}", run.stdout);
}
