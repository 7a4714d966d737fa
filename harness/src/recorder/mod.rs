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

use crate::recorder::samples::{IdSet, Samples};
use crate::recorder::totals::KEEP_ERRORS;
use crate::recorder::window::MAX_FAULTS;
use crate::results::Counts;
use protocol::Event;
use std::sync::Arc;
use std::sync::atomic::Ordering;

mod samples;
#[cfg(test)]
mod tests;
mod totals;
mod window;

pub use samples::total_histogram;
pub use totals::{ChatTotals, Totals};
pub use window::{Phase, Presence, Window};

/// Width of a delivery-timeline bucket, µs (1 s).
pub(crate) const BUCKET_US: u64 = 1_000_000;

/// Most delivery-timeline buckets per client: a receive time later than
/// this after the window's start (a clock gone wild) is not bucketed, so a
/// bad timestamp cannot make a client allocate without bound.
pub(crate) const MAX_BUCKETS: usize = 3_600;

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
pub(crate) struct ChatRecord {
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
