//! Events fed from a broker ([`crate::broker`]): every push-server of a
//! deployment appends the same events, with the same ids, from the same
//! Redis Streams, so a client may resume on any of them.
//!
//! The ids are the schedule's (every server runs the same schedule, so a
//! server knows its live edge before the first event arrives); the log's
//! invariant (contiguous ids `next_id - len .. next_id`) holds: an event
//! already in the log is a duplicate and is dropped, and an event beyond
//! `next_id` is a gap the feeder fills from the stream first
//! ([`Fed::Gap`]), or, when the stream no longer has it, restarts the
//! log there ([`Hub::restart_fed`]): clients then see the gap and count it.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use crate::hub::Hub;

/// What [`Hub::append_fed`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Appended and fanned out.
    Appended,
    /// Already in the log (or older): dropped.
    Duplicate,
    /// Newer than the next id: the events from `expected` on must come first.
    Gap {
        /// The id the log expects next.
        expected: u64,
    },
}

impl Hub {
    /// The id `topic`'s log expects next.
    pub fn next_id(&self, topic: u32) -> u64 {
        self.topics[topic as usize]
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .next_id
    }

    /// Where a subscription to `topic` starts, given the client's cursor
    /// (`after`; `None`: the live edge) and the live edge it was read
    /// against. A cursor ahead of the edge (a client's saved id from an
    /// earlier server run whose ids went further) is clamped to the edge:
    /// the client gets the next event, whose id tells it the stream
    /// restarted, instead of waiting for ever. On a fed server the log may
    /// lag the deployment's (its reader is behind): a cursor the shared
    /// schedule has already reached, got from a faster server, is kept and
    /// waits for this log to pass it, rather than being clamped back and
    /// sent those events again.
    pub fn resume_cursor(&self, topic: u32, after: Option<u64>, live_edge: u64) -> u64 {
        match after {
            None => live_edge,
            Some(a) if a <= live_edge || !self.config.fed => a.min(live_edge),
            Some(a) => a.min(self.due_now(topic).max(live_edge)),
        }
    }

    /// The newest id the schedule has due on `topic` by now (0: none).
    fn due_now(&self, topic: u32) -> u64 {
        let now = protocol::now_us();
        self.config
            .schedules()
            .into_iter()
            .find(|(first, s)| topic >= *first && topic - first < s.topics)
            .and_then(|(first, s)| s.ids_in_window(topic - first, s.start_epoch_us, now + 1))
            .map_or(0, |(_, due)| due)
    }

    /// Appends the broker's event `id` of `topic` if it is the next one,
    /// wakes the topic's tasks and fans it out.
    pub fn append_fed(&self, topic: u32, id: u64, at_us: u64, data: &str) -> Fed {
        let t = &self.topics[topic as usize];
        let event = {
            let mut log = t.log.write().unwrap_or_else(PoisonError::into_inner);
            if id < log.next_id {
                return Fed::Duplicate;
            }
            if id > log.next_id {
                return Fed::Gap {
                    expected: log.next_id,
                };
            }
            self.push(t, &mut log, (id, at_us, data))
        };
        Self::advance_latest(t, id);
        self.events_generated.fetch_add(1, Ordering::Relaxed);
        // How late the event entered this server's log: the broker hop included.
        let lag = protocol::now_us().saturating_sub(at_us);
        self.lag_sum_us.fetch_add(lag, Ordering::Relaxed);
        self.lag_max_us.fetch_max(lag, Ordering::Relaxed);
        self.fan_out(topic, std::slice::from_ref(&event));
        Fed::Appended
    }

    /// Fills `topic`'s empty log with history from the broker: `events`
    /// (`(id, at_us, data)`, oldest first) whose ids end at `next_id - 1`
    /// and run contiguous; the newest [`HubConfig::history`] are kept.
    /// Returns how many were taken.
    ///
    /// [`HubConfig::history`]: crate::hub::HubConfig::history
    pub fn backfill(&self, topic: u32, events: &[(u64, u64, String)]) -> usize {
        let t = &self.topics[topic as usize];
        let mut log = t.log.write().unwrap_or_else(PoisonError::into_inner);
        if !log.events.is_empty() {
            return 0;
        }
        // The contiguous run that ends right before the live edge.
        let mut want = log.next_id;
        let mut kept = Vec::new();
        for (id, at_us, data) in events.iter().rev() {
            if kept.len() >= self.history || *id + 1 != want {
                break;
            }
            kept.push(t.encode(*id, *at_us, data));
            want = *id;
        }
        let n = kept.len();
        log.events.extend(kept.into_iter().rev());
        n
    }

    /// The stream no longer holds the events between the log and `id`:
    /// the log starts again at `id` (empty), and clients count the gap.
    pub fn restart_fed(&self, topic: u32, id: u64) {
        let t = &self.topics[topic as usize];
        let mut log = t.log.write().unwrap_or_else(PoisonError::into_inner);
        if id > log.next_id {
            log.events.clear();
            log.next_id = id;
        }
    }
}
