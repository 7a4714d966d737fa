//! The fleet's totals: every client's recorder merged at the end (counts,
//! histograms, recovery from faults, chat round trips).

use crate::recorder::samples::total_histogram;
use crate::results::Counts;
use hdrhistogram::Histogram;

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
    pub(super) fn new() -> Self {
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

    pub(super) fn merge(&mut self, other: &ChatTotals) {
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

/// Error messages kept per client and per total (the rest are only counted).
pub(super) const KEEP_ERRORS: usize = 3;
