//! Every bound and slack of a transport's run, in one place: how long the
//! harness waits for each step, and the margins it allows around them.
use std::time::Duration;

/// How often waits wake up to check the server, the fleet and Ctrl-C, and to redraw progress.
pub(super) const TICK: Duration = Duration::from_millis(200);

/// Slack beyond the ramp-up time for every client to connect.
pub(super) const CONNECT_SLACK: Duration = Duration::from_secs(10);

/// Least time between fixing the window and its start, so every recorder
/// sees the bounds before any event due in the window can arrive.
pub(super) const WINDOW_LEAD: Duration = Duration::from_millis(50);

/// Drain after the window for push transports (and beyond the poll interval for short polling).
pub(super) const DRAIN: Duration = Duration::from_secs(1);

/// Bound on waiting for the previous run's sockets to close before a baseline.
pub(super) const SETTLE: Duration = Duration::from_secs(5);

/// Bound, beyond its pause, on a restarted server coming back (its port may
/// take a moment to be free again): past it the run ends, saved as incomplete.
pub(super) const RESTART_BOUND: Duration = Duration::from_secs(15);

/// Pause between attempts to start a restarted server.
pub(super) const RESTART_RETRY: Duration = Duration::from_millis(200);

/// Events scheduled this long before a kill may not have reached a push
/// client yet when the server died (in flight, or a client resuming from an
/// earlier drop): their loss is the kill's. Short polling adds its interval
/// (the events since a client's last poll die with the server's history).
pub(super) const OUTAGE_SLACK: Duration = Duration::from_millis(200);
