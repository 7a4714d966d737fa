//! The recorder: what one client saw, counted without locks.
//!
//! Each client task owns one [`Recorder`] (it implements
//! [`clients::Observer`]), so recording an event touches only that task's
//! memory: one histogram record, a few counters and one bit. The only shared
//! state is the measured [`Window`], two atomics the runner sets and every
//! recorder reads with a relaxed load.
//!
//! An event counts when its *scheduled* emission time falls in the window
//! `[start, end)`. Latency is `received_at_us − emitted_at_us`, recorded as
//! is: the schedule is open-loop, so a slow server or a poll interval already
//! shows up in the samples (no coordinated omission), and HdrHistogram's
//! `record_correct` would count the delay twice.
//!
//! At the end, [`Recorder::finish`] compares the ids seen with the ids the
//! schedule says were due on the client's topic, and [`Totals::merge`] sums
//! clients into one result per transport.
//!
//! Chat ([`Recorder::chat`]): there is no generator, every event is a
//! client's message and senders send only in the window, so every event
//! counts whatever its stamp (the server stamps a message at receipt, which
//! for a message due just before the end falls after it). A sender also
//! recognises its own messages by their tag and records their round trip,
//! `receipt − due time`, in a histogram of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hdrhistogram::Histogram;
use protocol::Event;

use crate::results::Counts;

/// Significant digits of every histogram (DESIGN.md: µs, 3 significant digits).
const SIGFIG: u8 = 3;

/// Error messages kept per client and per total (the rest are only counted).
const KEEP_ERRORS: usize = 3;

/// Width of a delivery-timeline bucket, µs (1 s).
const BUCKET_US: u64 = 1_000_000;

/// Most delivery-timeline buckets per client: a receive time later than
/// this after the window's start (a clock gone wild) is not bucketed, so a
/// bad timestamp cannot make a client allocate without bound.
const MAX_BUCKETS: usize = 3_600;

/// The measured window, shared by the runner (writer) and every recorder
/// (readers): scheduled emission times in `[start_us, end_us)` count.
///
/// 0 means "not set yet". The runner sets both bounds *before* the window
/// opens (start a little in the future), so no event due in the window can
/// reach a recorder before the bounds are visible, and relaxed loads suffice.
#[derive(Debug, Default)]
pub struct Window {
    start_us: AtomicU64,
    end_us: AtomicU64,
    /// Faults injected so far: a recovery that completes while it is `k`
    /// is attributed to fault `k` (1-based; 0: before any fault).
    fault_epoch: AtomicUsize,
}

/// Most faults whose recoveries are told apart (later ones share the last slot's fate: ignored).
pub const MAX_FAULTS: usize = 64;

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

/// A set of event ids, one bit each, over a window of ids that grows as needed.
///
/// Ids in a window are contiguous, so a bitmap is the smallest exact record
/// of what arrived (100,000 events: 12.5 KB). `base` is a multiple of 64 so
/// growing downwards (an out-of-order first event) shifts whole words.
#[derive(Debug, Default)]
struct IdSet {
    base: u64,
    words: Vec<u64>,
    /// Largest span of ids (in bits) this set may cover; ids beyond are refused.
    max_span: u64,
}

impl IdSet {
    fn new(expected_hint: u64) -> Self {
        Self {
            base: 0,
            words: Vec::with_capacity(expected_hint.div_ceil(64).min(1 << 16) as usize + 1),
            // A misbehaving server sending id 10^18 must not make us allocate exabytes.
            max_span: expected_hint.saturating_mul(4).max(1 << 20),
        }
    }

    /// Inserts `id`; `Some(true)` if new, `Some(false)` if already present,
    /// `None` if it lies too far from the ids seen so far.
    fn insert(&mut self, id: u64) -> Option<bool> {
        if self.words.is_empty() {
            self.base = id - id % 64;
            self.words.push(0);
        }
        if id < self.base {
            let new_base = id - id % 64;
            let extra = (self.base - new_base) / 64;
            if (self.words.len() as u64 + extra) * 64 > self.max_span {
                return None;
            }
            // Rare: an event older than the first one seen. Shift by whole words.
            self.words
                .splice(0..0, std::iter::repeat_n(0, extra as usize));
            self.base = new_base;
        }
        let off = id - self.base;
        if off >= self.max_span {
            return None;
        }
        let word = (off / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (off % 64);
        let new = self.words[word] & bit == 0;
        self.words[word] |= bit;
        Some(new)
    }

    /// Number of ids in `lo..=hi` present.
    fn count_in(&self, lo: u64, hi: u64) -> u64 {
        if self.words.is_empty() || hi < lo {
            return 0;
        }
        let top = self.base + self.words.len() as u64 * 64; // exclusive
        let lo = lo.max(self.base);
        let hi = hi.min(top - 1);
        if hi < lo {
            return 0;
        }
        let (a, b) = (lo - self.base, hi - self.base);
        let (wa, wb) = ((a / 64) as usize, (b / 64) as usize);
        let mut n = 0u64;
        for w in wa..=wb {
            let mut bits = self.words[w];
            if w == wa {
                bits &= u64::MAX << (a % 64);
            }
            if w == wb && b % 64 != 63 {
                bits &= (1u64 << (b % 64 + 1)) - 1;
            }
            n += u64::from(bits.count_ones());
        }
        n
    }

    /// Number of ids present.
    fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// A µs histogram that starts small and grows as needed: where a client
/// with many samples folds them ([`Samples`]). It starts at the smallest
/// range (8 KB) and auto-resizes to the largest value actually seen (≈36 KB
/// for 100 ms, ≈45 KB for 1 s) rather than allocating 1 µs..60 s (70 KB) up
/// front. Counts are `u32` per client; totals are `u64`.
fn client_histogram() -> Histogram<u32> {
    // `new` is auto-resizing, lowest discernible value 1.
    Histogram::new(SIGFIG).expect("3 significant digits are valid")
}

/// An empty total histogram, µs, 1 µs to 60 s at 3 significant digits, growing beyond.
pub fn total_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 60_000_000, SIGFIG)
        .expect("constant histogram bounds are valid");
    h.auto(true);
    h
}

/// Raw samples a client keeps before folding them into a histogram: 32 KiB.
const RAW_SAMPLES: usize = 4096;

/// One client's samples of one quantity, µs.
///
/// A fleet has thousands of clients, each recording on its own; per-client
/// histograms (tens of KB each, resized as latencies grow) made the hot path
/// a random walk over hundreds of MB — page faults and cache misses that
/// profiles showed as a large share of the fleet's CPU at 5,000 clients. So
/// a client appends each sample to a plain vector (sized up front from the
/// events it expects, so it never reallocates in a normal run) and only a
/// client with more than [`RAW_SAMPLES`] folds them into a histogram; the
/// samples reach the totals' histogram at the end, unchanged.
#[derive(Debug, Default)]
struct Samples {
    raw: Vec<u64>,
    folded: Option<Histogram<u32>>,
}

impl Samples {
    fn with_capacity(n: u64) -> Self {
        Self {
            raw: Vec::with_capacity((n as usize).min(RAW_SAMPLES)),
            folded: None,
        }
    }

    #[inline]
    fn record(&mut self, us: u64) {
        if self.raw.len() >= RAW_SAMPLES {
            let h = self.folded.get_or_insert_with(client_histogram);
            for v in self.raw.drain(..) {
                record_n(h, v, 1);
            }
        }
        self.raw.push(us);
    }

    /// Every sample, in a total histogram.
    fn total(&self) -> Histogram<u64> {
        let mut total = total_histogram();
        if let Some(h) = &self.folded {
            add_into(&mut total, h);
        }
        for &v in &self.raw {
            record_n(&mut total, v, 1);
        }
        total
    }
}

/// Records `n` samples of `value`, growing the histogram as needed.
///
/// (`saturating_record` would clamp to the current range instead of growing,
/// hiding outliers; it is only the fallback for values beyond any range.)
fn record_n<T: hdrhistogram::Counter>(h: &mut Histogram<T>, value: u64, n: T) {
    if h.record_n(value, n).is_err() {
        h.saturating_record_n(value, n);
    }
}

/// Adds a per-client `u32` histogram into a `u64` total.
fn add_into(total: &mut Histogram<u64>, h: &Histogram<u32>) {
    for v in h.iter_recorded() {
        record_n(total, v.value_iterated_to(), u64::from(v.count_at_value()));
    }
}

/// How many of a fleet's clients have connected, shared by its recorders
/// (written once per connection and disconnection, never per event).
#[derive(Debug, Default)]
pub struct Presence {
    ever: AtomicUsize,
    now: AtomicUsize,
}

impl Presence {
    /// A fleet's counters, all zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
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

/// What one client saw. Implements [`clients::Observer`]; owned by the client's task.
#[derive(Debug)]
pub struct Recorder {
    window: Arc<Window>,
    /// The fleet's connection counters (shared, for progress and the timeline).
    presence: Arc<Presence>,
    /// Whether this client ever connected.
    connected: bool,
    /// Whether this client is connected now (counted in `presence.now`).
    online: bool,
    latency: Samples,
    connect: Samples,
    seen: IdSet,
    /// Highest id received in the window so far (for out-of-order detection).
    max_id: u64,
    duplicated: u64,
    out_of_order: u64,
    /// In-window events whose id was too far from the others to record.
    wild_ids: u64,
    requests: u64,
    reconnects: u64,
    errors: u64,
    warmup_events: u64,
    drain_events: u64,
    first_errors: Vec<String>,
    /// Disconnect → first event after it, µs.
    reconnect: Samples,
    reconnect_attempts: u64,
    /// Distinct in-window events received per second since the window's
    /// start (receive time), grown as needed: a few dozen `u32` per client.
    buckets: Vec<u32>,
    /// Per fault (index = epoch − 1): recoveries completed and the slowest, µs.
    per_fault: Vec<(u32, u64)>,
    /// Fault epoch as of this client's latest event.
    epoch_seen: usize,
    /// Per fault (index = epoch − 1): the highest id this client had received
    /// when the fault happened (read at its first event after it, before
    /// recording that event). A restart's losses start right after it.
    max_at_fault: Vec<u64>,
    /// Chat run: what this client sent and got back (`None`: not chat).
    chat: Option<ChatRecord>,
    /// What this client's habits did ([`Recorder::add_habits`]).
    habits: crate::results::Habits,
}

/// One client's part of a chat run.
#[derive(Debug)]
struct ChatRecord {
    /// Its sender number (`None`: it only listens).
    own: Option<u32>,
    /// Its own messages back: receipt − due time, µs.
    round_trip: Samples,
    echoed: u64,
    sent: u64,
    send_errors: u64,
}

impl Recorder {
    /// A recorder reading `window` and counting its connections in
    /// `presence`. `expected_hint` (events this client should see in the
    /// window) sizes the id bitmap.
    pub fn new(window: Arc<Window>, presence: Arc<Presence>, expected_hint: u64) -> Self {
        Self {
            window,
            presence,
            connected: false,
            online: false,
            latency: Samples::with_capacity(expected_hint),
            connect: Samples::default(),
            seen: IdSet::new(expected_hint),
            max_id: 0,
            epoch_seen: 0,
            max_at_fault: Vec::new(),
            duplicated: 0,
            out_of_order: 0,
            wild_ids: 0,
            requests: 0,
            reconnects: 0,
            errors: 0,
            warmup_events: 0,
            drain_events: 0,
            first_errors: Vec::new(),
            reconnect: Samples::default(),
            reconnect_attempts: 0,
            buckets: Vec::new(),
            per_fault: Vec::new(),
            chat: None,
            habits: Default::default(),
        }
    }

    /// Makes this a chat run's recorder: every event counts (see the module
    /// documentation), and a sender (`own`: its sender number) times its
    /// own messages' round trip.
    pub fn chat(mut self, own: Option<u32>) -> Self {
        self.chat = Some(ChatRecord {
            own,
            round_trip: Samples::default(),
            echoed: 0,
            sent: 0,
            send_errors: 0,
        });
        self
    }

    /// Adds what this client's habits did (pings, pauses, unexpected messages).
    pub fn add_habits(&mut self, counts: clients::HabitCounts) {
        self.habits.merge(&counts.into());
    }

    /// Adds what this client's sender did (its publish loop, or its
    /// WebSocket); the first failures join the client's error messages.
    pub fn add_sends(&mut self, counts: &clients::chat::SendCounts) {
        let Some(chat) = self.chat.as_mut() else {
            return;
        };
        chat.sent += counts.sent;
        chat.send_errors += counts.failed;
        for e in &counts.first_errors {
            if self.first_errors.len() < KEEP_ERRORS {
                self.first_errors.push(e.clone());
            }
        }
    }

    /// Whether this client ever connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Records an error that did not come from the subscriber (e.g. it could not be built).
    pub fn note_error(&mut self, message: &str) {
        self.errors += 1;
        if self.first_errors.len() < KEEP_ERRORS {
            self.first_errors.push(message.to_string());
        }
    }

    /// Ends the recording: compares the ids seen with `expected`, the
    /// inclusive id range the schedule put in the window on this client's
    /// topic (`None`: nothing was due).
    pub fn finish(self, expected: Option<(u64, u64)>) -> Totals {
        self.finish_with_outages(expected, &[])
    }

    /// Records, once per fault, the highest id received before it (cold:
    /// runs at the first event after each fault).
    #[cold]
    fn note_faults(&mut self, epoch: usize) {
        let epoch = epoch.min(MAX_FAULTS);
        while self.max_at_fault.len() < epoch {
            self.max_at_fault.push(self.max_id);
        }
        self.epoch_seen = epoch;
    }

    /// [`Recorder::finish`], with `outages`: inclusive id ranges on this
    /// client's topic that a killed server took with it, in order, each with
    /// the epoch of the restart fault that caused it (0 = none known). The
    /// range starts where the schedule says (a little before the kill); for
    /// a client that knew of the fault it starts right after the highest id
    /// it had received when the server died instead, when that is earlier:
    /// events still queued for it in the dead server went with it, however
    /// far behind delivery was. Ids of `expected` in those ranges that never
    /// arrived count as `lost_outage`, not as `missing`: the loss is the
    /// fault's, not the transport's.
    pub fn finish_with_outages(
        self,
        expected: Option<(u64, u64)>,
        outages: &[(u64, u64, usize)],
    ) -> Totals {
        let (expected_n, delivered) = match expected {
            Some((lo, hi)) if hi >= lo => (hi - lo + 1, self.seen.count_in(lo, hi)),
            _ => (0, 0),
        };
        let mut lost_outage = 0;
        if let Some((lo, hi)) = expected.filter(|(lo, hi)| hi >= lo) {
            // Ranges never overlap: each starts after the previous one ended.
            let mut floor = lo;
            for &(a, b, epoch) in outages {
                let before = epoch
                    .checked_sub(1)
                    .and_then(|i| self.max_at_fault.get(i))
                    .map_or(a, |&m| a.min(m + 1));
                let (a, b) = (before.max(floor), b.min(hi));
                if b >= a {
                    lost_outage += (b - a + 1) - self.seen.count_in(a, b);
                    floor = b + 1;
                }
            }
        }
        let reconnect = self.reconnect.total();
        let latency = self.latency.total();
        let connect = self.connect.total();
        Totals {
            clients: 1,
            clients_connected: usize::from(self.connected),
            counts: Counts {
                expected: expected_n,
                delivered,
                missing: expected_n - delivered - lost_outage,
                duplicated: self.duplicated,
                out_of_order: self.out_of_order,
                requests: self.requests,
                reconnects: self.reconnects,
                errors: self.errors,
            },
            unexpected: self.seen.len() - delivered + self.wild_ids,
            warmup_events: self.warmup_events,
            drain_events: self.drain_events,
            latency,
            connect,
            first_errors: self.first_errors,
            reconnect,
            reconnect_attempts: self.reconnect_attempts,
            lost_outage,
            delivered_per_s: self.buckets.iter().map(|&n| u64::from(n)).collect(),
            per_fault: self
                .per_fault
                .iter()
                .map(|&(n, max)| (u64::from(n), max))
                .collect(),
            chat: self.chat.map(|c| {
                let round_trip = c.round_trip.total();
                ChatTotals {
                    senders: u64::from(c.own.is_some()),
                    sent: c.sent,
                    echoed: c.echoed,
                    send_errors: c.send_errors,
                    round_trip,
                }
            }),
            habits: self.habits,
        }
    }
}

impl clients::Observer for Recorder {
    fn connected(&mut self, connect_us: u64) {
        self.connect.record(connect_us);
        if !self.connected {
            self.connected = true;
            self.presence.ever.fetch_add(1, Ordering::Relaxed);
        }
        if !self.online {
            self.online = true;
            self.presence.now.fetch_add(1, Ordering::Relaxed);
        }
    }

    // The hot path: once per event per client. A relaxed load or two, one
    // histogram record, one bit, a couple of counters; no lock, no log.
    #[inline]
    fn event(&mut self, event: &Event, received_at_us: u64) {
        let epoch = self.window.fault_epoch();
        if epoch != self.epoch_seen {
            self.note_faults(epoch);
        }
        let phase = if self.chat.is_some() {
            Phase::Measured
        } else {
            self.window.phase(event.emitted_at_us)
        };
        match phase {
            Phase::WarmUp => self.warmup_events += 1,
            Phase::Drain => self.drain_events += 1,
            Phase::Measured => match self.seen.insert(event.id) {
                None => self.wild_ids += 1,
                Some(false) => self.duplicated += 1,
                Some(true) => {
                    if event.id < self.max_id {
                        self.out_of_order += 1;
                    } else {
                        self.max_id = event.id;
                    }
                    let latency_us = received_at_us.saturating_sub(event.emitted_at_us);
                    self.latency.record(latency_us);
                    if let Some(chat) = self.chat.as_mut() {
                        chat.echo(event, received_at_us);
                    }
                    let since = received_at_us.saturating_sub(self.window.start_us());
                    let bucket = (since / BUCKET_US) as usize;
                    if bucket < MAX_BUCKETS {
                        if bucket >= self.buckets.len() {
                            // Once per second per client at most: the timeline grows with the run.
                            self.buckets.resize(bucket + 1, 0);
                        }
                        self.buckets[bucket] += 1;
                    }
                }
            },
        }
    }

    fn request(&mut self) {
        if self.window.phase(protocol::now_us()) == Phase::Measured {
            self.requests += 1;
        }
    }

    fn disconnected(&mut self) {
        self.reconnects += 1;
        if self.online {
            self.online = false;
            self.presence.now.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn error(&mut self, message: &str) {
        self.note_error(message);
    }

    fn reconnect_attempt(&mut self) {
        self.reconnect_attempts += 1;
    }

    fn reconnected(&mut self, disconnect_to_first_event_us: u64) {
        self.reconnect.record(disconnect_to_first_event_us);
        let epoch = self.window.fault_epoch();
        if (1..=MAX_FAULTS).contains(&epoch) {
            if self.per_fault.len() < epoch {
                self.per_fault.resize(epoch, (0, 0));
            }
            let slot = &mut self.per_fault[epoch - 1];
            slot.0 += 1;
            slot.1 = slot.1.max(disconnect_to_first_event_us);
        }
    }
}

impl ChatRecord {
    /// Times the event if it is one of this client's own messages.
    #[inline]
    fn echo(&mut self, event: &Event, received_at_us: u64) {
        let Some(own) = self.own else {
            return;
        };
        match clients::chat::parse_tag(&event.data) {
            Some(tag) if tag.sender == own => {
                self.echoed += 1;
                self.round_trip
                    .record(received_at_us.saturating_sub(tag.due_us));
            }
            _ => {}
        }
    }
}

/// A chat run's figures over a set of clients.
#[derive(Debug, Clone)]
pub struct ChatTotals {
    /// Clients that send.
    pub senders: u64,
    /// Messages handed to the server.
    pub sent: u64,
    /// Of those, received back by their own sender.
    pub echoed: u64,
    /// Messages that could not be sent.
    pub send_errors: u64,
    /// Round trip of each echoed message (receipt − due time), µs.
    pub round_trip: Histogram<u64>,
}

impl ChatTotals {
    fn new() -> Self {
        Self {
            senders: 0,
            sent: 0,
            echoed: 0,
            send_errors: 0,
            round_trip: total_histogram(),
        }
    }

    /// Sent messages that never came back to their sender.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.echoed)
    }

    fn merge(&mut self, other: &ChatTotals) {
        self.senders += other.senders;
        self.sent += other.sent;
        self.echoed += other.echoed;
        self.send_errors += other.send_errors;
        let _ = self.round_trip.add(&other.round_trip);
    }
}

/// Everything measured for a set of clients (one after [`Recorder::finish`],
/// a whole fleet after [`Totals::merge`]).
#[derive(Debug, Clone)]
pub struct Totals {
    /// Clients summed.
    pub clients: usize,
    /// Clients that connected at least once.
    pub clients_connected: usize,
    /// Counters over the window (`requests` counted by wall clock in the window;
    /// `reconnects` and `errors` over the whole run, since any of them may explain a loss).
    pub counts: Counts,
    /// In-window events whose id was not among those due (a schedule mismatch).
    pub unexpected: u64,
    /// Events scheduled before the window (ignored).
    pub warmup_events: u64,
    /// Events scheduled after the window (ignored).
    pub drain_events: u64,
    /// Latency, µs.
    pub latency: Histogram<u64>,
    /// Connect time, µs.
    pub connect: Histogram<u64>,
    /// The first few error messages.
    pub first_errors: Vec<String>,
    /// Disconnect → first event after it, µs.
    pub reconnect: Histogram<u64>,
    /// Reconnection attempts, failed ones included.
    pub reconnect_attempts: u64,
    /// Expected events a killed server took with it (not in `counts.missing`).
    pub lost_outage: u64,
    /// Distinct in-window events received per second since the window's start.
    pub delivered_per_s: Vec<u64>,
    /// Per fault (in order): recoveries completed after it (before the next
    /// one), and the slowest of them, µs: when the last client was back.
    pub per_fault: Vec<(u64, u64)>,
    /// Chat figures (`None`: not a chat run).
    pub chat: Option<ChatTotals>,
    /// What the clients' habits did.
    pub habits: crate::results::Habits,
}

impl Default for Totals {
    fn default() -> Self {
        Self::new()
    }
}

impl Totals {
    /// Nothing yet.
    pub fn new() -> Self {
        Self {
            clients: 0,
            clients_connected: 0,
            counts: Counts::default(),
            unexpected: 0,
            warmup_events: 0,
            drain_events: 0,
            latency: total_histogram(),
            connect: total_histogram(),
            first_errors: Vec::new(),
            reconnect: total_histogram(),
            reconnect_attempts: 0,
            lost_outage: 0,
            delivered_per_s: Vec::new(),
            per_fault: Vec::new(),
            chat: None,
            habits: Default::default(),
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Totals) {
        self.clients += other.clients;
        self.clients_connected += other.clients_connected;
        let (a, b) = (&mut self.counts, &other.counts);
        a.expected += b.expected;
        a.delivered += b.delivered;
        a.missing += b.missing;
        a.duplicated += b.duplicated;
        a.out_of_order += b.out_of_order;
        a.requests += b.requests;
        a.reconnects += b.reconnects;
        a.errors += b.errors;
        self.unexpected += other.unexpected;
        self.warmup_events += other.warmup_events;
        self.drain_events += other.drain_events;
        // Both auto-resize, so adding cannot fail for lack of range.
        let _ = self.latency.add(&other.latency);
        let _ = self.connect.add(&other.connect);
        let _ = self.reconnect.add(&other.reconnect);
        self.reconnect_attempts += other.reconnect_attempts;
        self.lost_outage += other.lost_outage;
        if self.delivered_per_s.len() < other.delivered_per_s.len() {
            self.delivered_per_s.resize(other.delivered_per_s.len(), 0);
        }
        for (a, b) in self.delivered_per_s.iter_mut().zip(&other.delivered_per_s) {
            *a += b;
        }
        if self.per_fault.len() < other.per_fault.len() {
            self.per_fault.resize(other.per_fault.len(), (0, 0));
        }
        for (a, b) in self.per_fault.iter_mut().zip(&other.per_fault) {
            a.0 += b.0;
            a.1 = a.1.max(b.1);
        }
        if let Some(chat) = &other.chat {
            self.chat.get_or_insert_with(ChatTotals::new).merge(chat);
        }
        self.habits.merge(&other.habits);
        for e in &other.first_errors {
            if self.first_errors.len() >= KEEP_ERRORS {
                break;
            }
            self.first_errors.push(e.clone());
        }
    }

    /// Counts `n` clients that never reported (their task did not stop in
    /// time): their expected events are missing.
    pub fn add_lost_clients(&mut self, n: usize, expected: u64) {
        self.clients += n;
        self.counts.expected += expected;
        self.counts.missing += expected;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clients::Observer as _;

    const T0: u64 = 1_700_000_000_000_000;

    fn ev(id: u64, at_us: u64) -> Event {
        Event {
            id,
            topic: "t0".into(),
            emitted_at_us: at_us,
            data: String::new(),
        }
    }

    /// A recorder whose window covers ids 1..=10 scheduled at T0 + id ms.
    fn recorder() -> (Recorder, Arc<Window>, Arc<Presence>) {
        let w = Arc::new(Window::new());
        w.set(T0 + 1_000, T0 + 11_000);
        let c = Presence::new();
        (Recorder::new(w.clone(), c.clone(), 10), w, c)
    }

    fn feed(r: &mut Recorder, ids: &[u64]) {
        for &id in ids {
            r.event(&ev(id, T0 + id * 1_000), T0 + id * 1_000 + 500);
        }
    }

    #[test]
    fn all_delivered_in_order() {
        let (mut r, _, c) = recorder();
        r.connected(700);
        assert_eq!((c.ever(), c.now()), (1, 1));
        r.disconnected();
        assert_eq!((c.ever(), c.now()), (1, 0), "gone, but it did connect");
        r.disconnected(); // a failed attempt after it: not counted twice
        assert_eq!(c.now(), 0);
        r.connected(900); // a reconnect: still one client, online again
        assert_eq!((c.ever(), c.now()), (1, 1));
        feed(&mut r, &(1..=10).collect::<Vec<_>>());
        let t = r.finish(Some((1, 10)));
        assert_eq!(t.counts.expected, 10);
        assert_eq!(t.counts.delivered, 10);
        assert_eq!(t.counts.missing, 0);
        assert_eq!(
            t.counts.duplicated + t.counts.out_of_order + t.unexpected,
            0
        );
        assert_eq!(t.latency.len(), 10);
        assert_eq!(t.latency.value_at_quantile(0.5), 500);
        assert_eq!(t.connect.len(), 2);
        assert_eq!(t.clients_connected, 1);
    }

    #[test]
    fn a_chat_sender_times_its_own_messages_and_counts_every_event() {
        let w = Arc::new(Window::new());
        w.set(T0 + 1_000, T0 + 11_000);
        let c = Presence::new();
        let mut r = Recorder::new(w.clone(), c.clone(), 10).chat(Some(2));
        let msg = |id: u64, sender: u32, due_us: u64, stamped_us: u64| Event {
            id,
            topic: "t0".into(),
            emitted_at_us: stamped_us,
            data: clients::chat::tag(sender, id, due_us),
        };
        // Own message due in the window, stamped in it: 300 µs round trip.
        r.event(&msg(1, 2, T0 + 2_000, T0 + 2_100), T0 + 2_300);
        // Another sender's message: counted, not timed as ours.
        r.event(&msg(2, 5, T0 + 3_000, T0 + 3_100), T0 + 3_200);
        // Own message due before the end but stamped after it: still counted.
        r.event(&msg(3, 2, T0 + 10_900, T0 + 11_500), T0 + 12_000);
        // A duplicate of it is not timed twice.
        r.event(&msg(3, 2, T0 + 10_900, T0 + 11_500), T0 + 12_500);
        r.add_sends(&clients::chat::SendCounts {
            sent: 3,
            failed: 1,
            first_errors: vec!["publish: status 503".into()],
        });
        let t = r.finish(Some((1, 3)));
        assert_eq!((t.counts.delivered, t.counts.missing), (3, 0));
        assert_eq!((t.counts.duplicated, t.drain_events), (1, 0));
        let chat = t.chat.as_ref().unwrap();
        assert_eq!((chat.senders, chat.sent, chat.echoed), (1, 3, 2));
        assert_eq!((chat.lost(), chat.send_errors), (1, 1));
        assert_eq!(chat.round_trip.len(), 2);
        assert_eq!(chat.round_trip.min(), 300);
        assert_eq!(chat.round_trip.max(), 1_100);
        assert_eq!(t.first_errors, ["publish: status 503"]);

        // A listener merges into the same totals without being a sender.
        let mut listener = Recorder::new(w, c, 10).chat(None);
        listener.event(&msg(1, 2, T0 + 2_000, T0 + 2_100), T0 + 2_400);
        let mut all = Totals::new();
        all.merge(&listener.finish(Some((1, 3))));
        all.merge(&t);
        let chat = all.chat.unwrap();
        assert_eq!((chat.senders, chat.sent, chat.echoed), (1, 3, 2));
        assert_eq!(chat.round_trip.len(), 2);
        assert_eq!(all.counts.delivered, 4);
    }

    #[test]
    fn duplicates_are_counted_once_each_and_not_timed_again() {
        let (mut r, _, _) = recorder();
        feed(&mut r, &[1, 2, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10]);
        let t = r.finish(Some((1, 10)));
        assert_eq!(t.counts.delivered, 10);
        assert_eq!(t.counts.duplicated, 3);
        assert_eq!(t.counts.out_of_order, 0);
        assert_eq!(t.latency.len(), 10);
    }

    #[test]
    fn reordering_is_detected_and_not_confused_with_duplicates() {
        let (mut r, _, _) = recorder();
        // 5 arrives first (the bitmap grows downwards), 3 and 4 after 6.
        feed(&mut r, &[5, 1, 2, 6, 3, 4, 7, 8, 9, 10, 4]);
        let t = r.finish(Some((1, 10)));
        assert_eq!(t.counts.delivered, 10);
        assert_eq!(
            t.counts.out_of_order, 4,
            "1, 2, 3 and 4 came after a higher id"
        );
        assert_eq!(t.counts.duplicated, 1);
        assert_eq!(t.counts.missing, 0);
    }

    #[test]
    fn missing_ids_are_counted_against_the_expected_range() {
        let (mut r, _, _) = recorder();
        feed(&mut r, &[1, 2, 4, 5, 9]);
        let t = r.finish(Some((1, 10)));
        assert_eq!(t.counts.expected, 10);
        assert_eq!(t.counts.delivered, 5);
        assert_eq!(t.counts.missing, 5);
        let (r, _, _) = recorder();
        let t = r.finish(None);
        assert_eq!((t.counts.expected, t.counts.missing), (0, 0));
    }

    #[test]
    fn events_outside_the_window_are_ignored() {
        let w = Arc::new(Window::new());
        let mut r = Recorder::new(w.clone(), Presence::new(), 10);
        // Window not set yet: warm-up.
        r.event(&ev(1, T0), T0 + 10);
        w.set(T0 + 1_000, T0 + 3_000);
        r.event(&ev(2, T0 + 999), T0 + 1_010); // scheduled before: warm-up
        r.event(&ev(3, T0 + 1_000), T0 + 1_010); // start is inclusive
        r.event(&ev(4, T0 + 2_999), T0 + 3_500);
        r.event(&ev(5, T0 + 3_000), T0 + 3_100); // end is exclusive: drain
        let t = r.finish(Some((3, 4)));
        assert_eq!(t.warmup_events, 2);
        assert_eq!(t.drain_events, 1);
        assert_eq!(t.counts.delivered, 2);
        assert_eq!(t.latency.len(), 2);
        assert_eq!(t.latency.max(), 501);
    }

    #[test]
    fn ids_outside_the_expected_range_and_wild_ids_are_unexpected() {
        let (mut r, _, _) = recorder();
        feed(&mut r, &[1, 2, 3]);
        r.event(&ev(u64::MAX / 2, T0 + 5_000), T0 + 5_001);
        let t = r.finish(Some((2, 3)));
        assert_eq!(t.counts.delivered, 2);
        assert_eq!(t.unexpected, 2, "id 1 was not due, and the wild id");
    }

    #[test]
    fn merge_sums_clients() {
        let mut total = Totals::new();
        for missing_tail in [0u64, 3] {
            let (mut r, _, _) = recorder();
            r.connected(1_000);
            r.request();
            r.error("boom");
            feed(&mut r, &(1..=10 - missing_tail).collect::<Vec<_>>());
            total.merge(&r.finish(Some((1, 10))));
        }
        total.add_lost_clients(1, 10);
        assert_eq!(total.clients, 3);
        assert_eq!(total.clients_connected, 2);
        assert_eq!(total.counts.expected, 30);
        assert_eq!(total.counts.delivered, 17);
        assert_eq!(total.counts.missing, 13);
        assert_eq!(total.counts.errors, 2);
        assert_eq!(total.first_errors, vec!["boom", "boom"]);
        assert_eq!(total.latency.len(), 17);
        assert_eq!(total.connect.len(), 2);
    }

    #[test]
    fn samples_fold_beyond_the_raw_limit_and_lose_none() {
        let mut s = Samples::with_capacity(10);
        let n = RAW_SAMPLES as u64 * 2 + 7;
        for v in 1..=n {
            s.record(v);
        }
        assert!(s.folded.is_some(), "folded past {RAW_SAMPLES}");
        assert!(s.raw.len() <= RAW_SAMPLES);
        let t = s.total();
        assert_eq!(t.len(), n);
        assert_eq!((t.min(), t.max()), (1, t.highest_equivalent(n)));
        let mut direct = total_histogram();
        for v in 1..=n {
            record_n(&mut direct, v, 1);
        }
        assert_eq!(
            t, direct,
            "same histogram as recording each sample directly"
        );
    }

    #[test]
    fn latency_never_underflows_and_large_values_fit() {
        let (mut r, _, _) = recorder();
        r.event(&ev(1, T0 + 1_000), T0 + 900); // clock skew: 0, not a wrap-around
        r.event(&ev(2, T0 + 2_000), T0 + 2_000 + 90_000_000); // 90 s: histogram grows
        let t = r.finish(Some((1, 2)));
        assert_eq!(t.latency.min(), 0);
        assert!(t.latency.max() >= 89_900_000);
    }

    #[test]
    fn a_restart_takes_what_was_still_queued_for_a_client_behind() {
        let (mut r, w, _) = recorder();
        feed(&mut r, &[1, 2, 3]);
        w.begin_fault(); // restart: the server dies while 4..=7 are still queued
        // The first event after the fault comes from the new server.
        feed(&mut r, &[9, 10]);
        // The schedule's span starts at 6 (slack before the kill), ends at 8.
        let t = r.finish_with_outages(Some((1, 10)), &[(6, 8, 1)]);
        assert_eq!(
            t.lost_outage, 5,
            "4..=8: queued in the dead server or due while it was down"
        );
        assert_eq!(t.counts.missing, 0);
        // Without the fault's epoch only the schedule's span counts.
        let (mut r, w, _) = recorder();
        feed(&mut r, &[1, 2, 3]);
        w.begin_fault();
        feed(&mut r, &[9, 10]);
        let t = r.finish_with_outages(Some((1, 10)), &[(6, 8, 0)]);
        assert_eq!((t.lost_outage, t.counts.missing), (3, 2));
    }

    #[test]
    fn outage_losses_are_counted_apart_from_missing() {
        let (mut r, w, _) = recorder();
        r.reconnect_attempt();
        r.reconnect_attempt();
        r.reconnected(9_000); // before any fault: in the histogram, no fault's
        w.begin_fault();
        w.begin_fault();
        r.reconnected(250_000);
        // 4..=6 were due while the server was down; 9 is a transport's loss.
        feed(&mut r, &[1, 2, 3, 5, 7, 8, 10]);
        let t = r.finish_with_outages(Some((1, 10)), &[(4, 6, 0), (20, 30, 0)]);
        assert_eq!(t.counts.delivered, 7);
        assert_eq!(t.lost_outage, 2, "4 and 6 (5 arrived after all)");
        assert_eq!(t.counts.missing, 1, "only 9");
        assert_eq!(t.reconnect_attempts, 2);
        assert_eq!(t.reconnect.len(), 2);
        assert_eq!(t.per_fault, vec![(0, 0), (1, 250_000)]);
        assert!(t.reconnect.equivalent(t.reconnect.max(), 250_000));
        let mut total = Totals::new();
        total.merge(&t);
        total.merge(&t);
        assert_eq!((total.lost_outage, total.counts.missing), (4, 2));
        assert_eq!(total.reconnect.len(), 4);
        assert_eq!(total.per_fault, vec![(0, 0), (2, 250_000)]);
    }

    #[test]
    fn deliveries_are_bucketed_per_second_of_receive_time() {
        let w = Arc::new(Window::new());
        w.set(T0, T0 + 10_000_000);
        let mut r = Recorder::new(w, Presence::new(), 10);
        r.event(&ev(1, T0), T0 + 10);
        r.event(&ev(2, T0 + 100), T0 + 999_999);
        r.event(&ev(2, T0 + 100), T0 + 999_999); // a duplicate is not a delivery
        r.event(&ev(3, T0 + 200), T0 + 2_500_000);
        r.event(&ev(4, T0 + 300), T0 + 1_000_000_000_000); // wild clock: not bucketed
        let mut total = Totals::new();
        total.merge(&r.finish(Some((1, 4))));
        assert_eq!(total.delivered_per_s, vec![2, 0, 1]);
    }

    #[test]
    fn id_set_counts_ranges() {
        let mut s = IdSet::new(10);
        for id in [63, 64, 65, 127, 128, 200] {
            assert_eq!(s.insert(id), Some(true));
        }
        assert_eq!(s.insert(64), Some(false));
        assert_eq!(s.count_in(0, 1000), 6);
        assert_eq!(s.count_in(64, 127), 3);
        assert_eq!(s.count_in(65, 65), 1);
        assert_eq!(s.count_in(66, 126), 0);
        assert_eq!(s.count_in(129, 199), 0);
        assert_eq!(s.insert(1), Some(true));
        assert_eq!(s.count_in(0, 1000), 7);
        assert_eq!(s.insert(u64::MAX), None);
    }
}
