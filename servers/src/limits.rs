//! The server's own ceiling: how many connections fit in its open-file
//! limit, and saying so before and when it is reached.
//!
//! Every connection costs one file descriptor, and `RLIMIT_NOFILE` (20,000
//! per process on the benchmark machine, hard) caps them. A server that
//! reaches it fails `accept` with `EMFILE`; without a word that looks like a
//! client problem (connects that hang in the listen backlog). So the server
//! reads its limit once at start, counts what it already holds then (the
//! listeners, stdio, the runtime's epoll and event descriptors), and:
//!
//! - logs one warning when its open connections pass 90 % of what is left
//!   ([`FdBudget::check_open`]), so an operator knows the next failures are
//!   the server's own;
//! - turns each accept failure into one clear, rate-limited log line
//!   ([`AcceptErrorLog`]), while the listener backs off and the existing
//!   connections keep being served.
//!
//! `/stats` reports the limit (`config.open_files_limit`), the connections
//! open now (`connections_open`) and the failed accepts (`accept_errors`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Warn when open connections reach this share of the descriptors left at start.
const WARN_PERCENT: u64 = 90;

/// At most one accept-error line per this interval; the rest are counted
/// and reported in the next line.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The soft `RLIMIT_NOFILE` of this process (what `accept` is held to), or
/// `None` if it cannot be read or is unlimited.
pub fn open_file_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which is valid
    // and properly aligned for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    (rc == 0 && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
}

/// Descriptors this process holds now (`/proc/self/fd`), or 0 where that
/// cannot be read (the warning then comes a little late, never early).
fn open_files_now() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64)
}

/// How many connections the open-file limit leaves room for, and whether
/// the near-limit warning was given.
#[derive(Debug)]
pub struct FdBudget {
    /// The soft `RLIMIT_NOFILE` read at start (`None`: unlimited or unknown).
    limit: Option<u64>,
    /// Connections the limit leaves room for, after what was held at start.
    capacity: Option<u64>,
    warned: AtomicBool,
}

impl FdBudget {
    /// Reads this process's limit and the descriptors it holds now; call it
    /// once the listeners are bound.
    pub fn read() -> Self {
        Self::new(open_file_limit(), open_files_now())
    }

    /// A budget of `limit` descriptors of which `held` are taken by other
    /// things than connections.
    pub fn new(limit: Option<u64>, held: u64) -> Self {
        Self {
            limit,
            capacity: limit.map(|l| l.saturating_sub(held)),
            warned: AtomicBool::new(false),
        }
    }

    /// The open-file limit read at start.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Called with the number of open connections after each accept: logs
    /// the near-limit warning the first time it is reached, and says
    /// whether it did.
    pub fn check_open(&self, open: u64) -> bool {
        let (Some(limit), Some(capacity)) = (self.limit, self.capacity) else {
            return false;
        };
        let warn_at = (capacity * WARN_PERCENT / 100).max(1);
        if open < warn_at || self.warned.swap(true, Ordering::Relaxed) {
            return false;
        }
        tracing::warn!(
            "{open} connections open: over {WARN_PERCENT}% of the {capacity} that the \
             open-file limit of {limit} leaves; accepts fail (EMFILE) beyond that"
        );
        true
    }
}

/// Rate-limited logging of failed accepts: the first failure is logged at
/// once, later ones at most every [`ERROR_LOG_INTERVAL`], each line saying
/// how many were not logged since the last.
#[derive(Debug, Default)]
pub struct AcceptErrorLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrorLog {
    /// Records one failed accept at `now`; returns the line to log, if this
    /// one is to be logged.
    pub fn failed(
        &mut self,
        e: &io::Error,
        open: u64,
        limit: Option<u64>,
        backoff: Duration,
        now: Instant,
    ) -> Option<String> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < ERROR_LOG_INTERVAL)
        {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        let unlogged = std::mem::take(&mut self.unlogged);
        let cause = match e.raw_os_error() {
            Some(libc::EMFILE) => "out of file descriptors for this process (EMFILE)",
            Some(libc::ENFILE) => "out of file descriptors system-wide (ENFILE)",
            _ => "accept error",
        };
        let limit = limit.map_or_else(|| "unknown".to_string(), |l| l.to_string());
        Some(format!(
            "accept failed: {cause}: {e}; {open} connections open, open-file limit {limit}; \
             retrying in {backoff:?}, open connections are still served \
             ({unlogged} more failures since the last line)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_comes_once_at_ninety_percent_of_what_is_left() {
        // 48 files, 8 held at start: 40 for connections, warn at 36.
        let budget = FdBudget::new(Some(48), 8);
        assert!(!budget.check_open(35));
        assert!(budget.check_open(36));
        assert!(!budget.check_open(37), "once only");
        let unlimited = FdBudget::new(None, 8);
        assert!(!unlimited.check_open(u64::MAX));
    }

    #[test]
    fn accept_errors_are_logged_at_most_once_a_second_with_the_count_skipped() {
        let mut log = AcceptErrorLog::default();
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        let t0 = Instant::now();
        let backoff = Duration::from_millis(5);
        let first = log.failed(&e, 40, Some(48), backoff, t0).unwrap();
        assert!(first.contains("EMFILE"), "{first}");
        assert!(
            first.contains("40 connections open, open-file limit 48"),
            "{first}"
        );
        assert!(first.contains("(0 more failures"), "{first}");
        assert!(!first.contains('\n'));
        for ms in [1, 500, 999] {
            assert_eq!(
                log.failed(&e, 40, Some(48), backoff, t0 + Duration::from_millis(ms)),
                None
            );
        }
        let next = log
            .failed(&e, 41, None, backoff, t0 + Duration::from_secs(1))
            .unwrap();
        assert!(next.contains("(3 more failures"), "{next}");
        assert!(next.contains("open-file limit unknown"), "{next}");
    }
}
