//! What every recorder shares: the measured window (fixed before it opens,
//! cut when a run ends early, with the faults' outage epochs) and the
//! fleet's presence (how many clients are connected now).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Most faults whose recoveries are told apart (later ones share the last slot's fate: ignored).
pub const MAX_FAULTS: usize = 64;

/// The measured window, shared by the runner (writer) and every recorder
/// (readers): scheduled emission times in `[start_us, end_us)` count.
///
/// 0 means "not set yet". The runner sets both bounds *before* the window
/// opens (start a little in the future), so no event due in the window can
/// reach a recorder before the bounds are visible, and relaxed loads suffice.
#[derive(Debug, Default)]
pub struct Window {
    pub(super) start_us: AtomicU64,
    pub(super) end_us: AtomicU64,
    /// Faults injected so far: a recovery that completes while it is `k`
    /// is attributed to fault `k` (1-based; 0: before any fault).
    pub(super) fault_epoch: AtomicUsize,
}

/// Where a scheduled time falls relative to the [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the window (or the window is not set yet): warm-up.
    WarmUp,
    /// In the window: counted.
    Measured,
    /// At or after the window's end: drain.
    Drain,
}

impl Window {
    /// A window with neither bound set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets both bounds (µs since the Unix epoch; `start_us > 0`, `end_us > start_us`).
    pub fn set(&self, start_us: u64, end_us: u64) {
        debug_assert!(start_us > 0 && end_us > start_us);
        self.end_us.store(end_us, Ordering::Relaxed);
        self.start_us.store(start_us, Ordering::Relaxed);
    }

    /// Moves the end earlier (a run interrupted or a server that died).
    pub fn cut(&self, end_us: u64) {
        self.end_us.fetch_min(end_us.max(1), Ordering::Relaxed);
    }

    /// Marks the injection of the next fault (called just before it happens).
    pub fn begin_fault(&self) {
        self.fault_epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// Faults injected so far.
    pub fn fault_epoch(&self) -> usize {
        self.fault_epoch.load(Ordering::Relaxed)
    }

    /// Start of the window, µs (0 = not set).
    pub fn start_us(&self) -> u64 {
        self.start_us.load(Ordering::Relaxed)
    }

    /// End of the window, µs (0 = not set).
    pub fn end_us(&self) -> u64 {
        self.end_us.load(Ordering::Relaxed)
    }

    /// Classifies a scheduled time (or, for requests and errors, a wall-clock time).
    #[inline]
    pub fn phase(&self, t_us: u64) -> Phase {
        let start = self.start_us.load(Ordering::Relaxed);
        if start == 0 || t_us < start {
            return Phase::WarmUp;
        }
        let end = self.end_us.load(Ordering::Relaxed);
        if end != 0 && t_us >= end {
            return Phase::Drain;
        }
        Phase::Measured
    }
}

/// How many of a fleet's clients have connected, shared by its recorders
/// (written once per connection and disconnection, never per event).
#[derive(Debug, Default)]
pub struct Presence {
    pub(super) ever: AtomicUsize,
    pub(super) now: AtomicUsize,
}

impl Presence {
    /// A fleet's counters, all zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sets both counters (a fleet whose clients run in agents, summed).
    pub fn set_counts(&self, ever: usize, now: usize) {
        self.ever.store(ever, Ordering::Relaxed);
        self.now.store(now, Ordering::Relaxed);
    }

    /// Clients that have connected at least once (progress; the connect wait).
    pub fn ever(&self) -> usize {
        self.ever.load(Ordering::Relaxed)
    }

    /// Clients connected right now: connected and not yet seen to
    /// disconnect. A client learns of a dead connection only when its read
    /// fails or times out, so around a fault this lags the server's view by
    /// that detection time (which is part of what a reconnect costs).
    pub fn now(&self) -> usize {
        self.now.load(Ordering::Relaxed)
    }
}
