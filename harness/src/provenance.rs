//! Where and how a run was made: the [`Provenance`] block of `run.json`.
//!
//! A figure without its machine, commit and compiler cannot be compared with
//! anything, so every run records them. Collection never fails: anything that
//! cannot be found is recorded as `unknown`, and the external commands (git)
//! are bounded by a timeout so a wedged repository cannot hang a benchmark.
//!
//! The `/proc` parsers take text, not paths, so tests feed them recorded samples.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::results::Provenance;

/// What is recorded when a fact cannot be found.
pub const UNKNOWN: &str = "unknown";

/// Upper bound on each external command (git): they are quick, but a network
/// file system or a held lock must not stall the run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The machine's online logical CPUs (`/sys/devices/system/cpu/online`,
/// e.g. `0-1`), whatever this process's affinity; 0 if unreadable.
fn machine_cores() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .map_or(0, |text| {
            text.trim()
                .split(',')
                .filter_map(|range| match range.split_once('-') {
                    Some((a, b)) => Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?),
                    None => range.parse::<usize>().ok().map(|_| 1),
                })
                .sum()
        })
}

/// Collects the provenance of a run starting now.
///
/// `command_line` is recorded as given (normally `std::env::args()`).
pub fn collect(command_line: Vec<String>) -> Provenance {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Provenance {
        pushbench_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: git_commit(),
        host: host_name(),
        cpu_model: parse_cpu_model(&cpuinfo).unwrap_or_else(|| UNKNOWN.to_string()),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        machine_cores: machine_cores(),
        kernel: read_proc_line("/proc/sys/kernel/osrelease").unwrap_or_else(|| UNKNOWN.to_string()),
        // Set by build.rs from `$RUSTC --version`: the compiler that built this
        // binary, not whichever one is on the PATH now.
        rustc: option_env!("PUSHBENCH_RUSTC")
            .unwrap_or(UNKNOWN)
            .to_string(),
        command_line,
        started_at: format_rfc3339_utc(SystemTime::now()),
        // Filled in by the runner, which knows what was asked and what is so.
        placement: Default::default(),
    }
}

/// The CPU model named in `/proc/cpuinfo` text, if any.
///
/// x86 names it `model name`; some ARM and other kernels use `Processor`,
/// `cpu model`, `Hardware` or `cpu` instead, tried in that order.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    const KEYS: [&str; 5] = ["model name", "Processor", "cpu model", "Hardware", "cpu"];
    KEYS.iter().find_map(|wanted| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            let value = value.trim();
            (key.trim() == *wanted && !value.is_empty()).then(|| value.to_string())
        })
    })
}

/// The first line of a `/proc` file's text, trimmed; `None` if blank.
pub fn parse_proc_line(text: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// Formats a time as RFC 3339 in UTC with whole seconds, e.g. `2024-11-23T19:46:40Z`.
///
/// Hand-written (civil-from-days) rather than borrowed because it must be
/// total: a clock set before 1970 or past year 9999 still yields a string,
/// never a panic.
pub fn format_rfc3339_utc(t: SystemTime) -> String {
    let secs: i64 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Before the epoch: round towards minus infinity so the seconds field stays in 0..60.
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, valid over the whole `i64` range of seconds).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year (from March), 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i128::from(m <= 2);
    (i64::try_from(y).unwrap_or(i64::MAX), m, d)
}

/// First line of a `/proc` file, or `None` if unreadable or blank.
fn read_proc_line(path: &str) -> Option<String> {
    parse_proc_line(&std::fs::read_to_string(path).ok()?)
}

/// Host name from `/proc`, then `$HOSTNAME`, then `/etc/hostname`.
/// (`gethostname(2)` would need `unsafe`, which the workspace denies.)
fn host_name() -> String {
    read_proc_line("/proc/sys/kernel/hostname")
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .and_then(|h| parse_proc_line(&h))
        })
        .or_else(|| read_proc_line("/etc/hostname"))
        .unwrap_or_else(|| UNKNOWN.to_string())
}

/// `git rev-parse HEAD` of the source tree this binary was built from, with
/// `-dirty` when `git status --porcelain` lists anything.
///
/// The source tree (not the current directory) is asked, because the commit
/// must describe the code that produced the figures; a binary whose source
/// tree is gone records `unknown`.
fn git_commit() -> String {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !tree.is_dir() {
        return UNKNOWN.to_string();
    }
    let Some(head) = git(tree, &["rev-parse", "HEAD"]).and_then(|s| parse_proc_line(&s)) else {
        return UNKNOWN.to_string();
    };
    match git(tree, &["status", "--porcelain"]) {
        Some(status) if status.trim().is_empty() => head,
        Some(_) => format!("{head}-dirty"),
        // HEAD is known but the tree state is not: say so rather than claim clean.
        None => format!("{head}-unknown-state"),
    }
}

/// Runs `git -C dir ARGS…`, returning stdout if it succeeds within [`COMMAND_TIMEOUT`].
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        // Read-only `git status` must not take the index lock: other people
        // commit in this tree while benchmarks run.
        .env("GIT_OPTIONAL_LOCKS", "0");
    run_bounded(cmd, COMMAND_TIMEOUT)
}

/// Runs a command with stdin closed and stderr discarded; returns its stdout
/// if it exits successfully before `timeout`, and kills it otherwise.
fn run_bounded(mut cmd: Command, timeout: Duration) -> Option<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Drain stdout on a thread: a child blocked on a full pipe would never exit.
    let mut stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let out = rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok()?;
    if !status.success() {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n\
        model\t\t: 1\nmodel name\t: AMD EPYC 7B13\nstepping\t: 0\n\nprocessor\t: 1\n\
        vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";

    const ARM_CPUINFO: &str = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\n\
        CPU implementer\t: 0x41\n\nHardware\t: BCM2835\nRevision\t: c03111\n";

    #[test]
    fn cpu_model_is_read_from_recorded_cpuinfo() {
        assert_eq!(
            parse_cpu_model(X86_CPUINFO).as_deref(),
            Some("AMD EPYC 7B13")
        );
        // `model` (a number) must not be mistaken for `model name`.
        assert_eq!(
            parse_cpu_model("model\t\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n")
                .as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(parse_cpu_model(ARM_CPUINFO).as_deref(), Some("BCM2835"));
        assert_eq!(parse_cpu_model(""), None);
        assert_eq!(parse_cpu_model("model name\t:   \n"), None);
        assert_eq!(parse_cpu_model("garbage without colons\n\n"), None);
    }

    #[test]
    fn proc_lines_are_trimmed() {
        assert_eq!(
            parse_proc_line("6.8.0-45-generic\n").as_deref(),
            Some("6.8.0-45-generic")
        );
        assert_eq!(parse_proc_line("  vm \nsecond\n").as_deref(), Some("vm"));
        assert_eq!(parse_proc_line("\n"), None);
        assert_eq!(parse_proc_line(""), None);
    }

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    #[test]
    fn rfc3339_on_fixed_instants() {
        assert_eq!(format_rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_utc(at(1_732_390_000)),
            "2024-11-23T19:26:40Z"
        );
        // Leap day of a year divisible by 400, and the day after.
        assert_eq!(format_rfc3339_utc(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339_utc(at(951_868_799)), "2000-02-29T23:59:59Z");
        assert_eq!(format_rfc3339_utc(at(951_868_800)), "2000-03-01T00:00:00Z");
        // 2100 is not a leap year.
        assert_eq!(
            format_rfc3339_utc(at(4_107_542_400)),
            "2100-03-01T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339_utc(at(253_402_300_799)),
            "9999-12-31T23:59:59Z"
        );
        // Sub-second parts are dropped, not rounded up.
        assert_eq!(
            format_rfc3339_utc(UNIX_EPOCH + Duration::from_millis(1_999)),
            "1970-01-01T00:00:01Z"
        );
    }

    #[test]
    fn rfc3339_before_the_epoch_does_not_panic() {
        assert_eq!(format_rfc3339_utc(at(-1)), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_rfc3339_utc(UNIX_EPOCH - Duration::from_millis(500)),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            format_rfc3339_utc(at(-86_400 * 365)),
            "1969-01-01T00:00:00Z"
        );
    }

    #[test]
    fn collect_fills_every_field() {
        let p = collect(vec!["pushbench".into(), "run".into()]);
        eprintln!("{p:#?}"); // Shown on failure: what this machine reported.
        assert_eq!(p.pushbench_version, env!("CARGO_PKG_VERSION"));
        assert!(p.cores >= 1);
        assert!(
            p.machine_cores >= p.cores,
            "{} of {}",
            p.cores,
            p.machine_cores
        );
        assert!(!p.host.is_empty() && !p.kernel.is_empty() && !p.cpu_model.is_empty());
        assert!(
            p.rustc.starts_with("rustc ") || p.rustc == UNKNOWN,
            "{}",
            p.rustc
        );
        assert_eq!(p.command_line, ["pushbench", "run"]);
        assert_eq!(p.started_at.len(), "2024-11-23T19:26:40Z".len());
        assert!(p.started_at.ends_with('Z'));
        // A commit is 40 hex digits (optionally suffixed), or `unknown` outside git.
        let hex = p.git_commit.split('-').next().unwrap();
        assert!(
            p.git_commit == UNKNOWN
                || (hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
            "{}",
            p.git_commit
        );
    }

    #[test]
    fn bounded_commands_time_out_and_report_failure() {
        let mut sleeper = Command::new("sleep");
        sleeper.arg("10");
        let started = Instant::now();
        assert_eq!(run_bounded(sleeper, Duration::from_millis(100)), None);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(run_bounded(Command::new("false"), COMMAND_TIMEOUT), None);
        let mut echo = Command::new("echo");
        echo.arg("hi");
        assert_eq!(run_bounded(echo, COMMAND_TIMEOUT).as_deref(), Some("hi\n"));
        assert_eq!(
            run_bounded(
                Command::new("/nonexistent/pushbench-no-such-binary"),
                COMMAND_TIMEOUT
            ),
            None
        );
    }
}
