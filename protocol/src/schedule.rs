//! The open-loop schedule shared by the generator and the harness.
//!
//! Events of all topics are spread evenly in time: with `topics` topics at
//! `rate` events per second each, the *global* sequence number `g = 0, 1, 2, …`
//! is scheduled at `start_epoch_us + g * 1e6 / (rate * topics)` and belongs to
//! topic `g % topics` with id `g / topics + 1`. Topics are therefore staggered
//! (a thousand per-user topics do not all fire at the same instant) and every
//! topic's ids are contiguous from 1.
//!
//! Because ids and times derive only from the start epoch, a server restarted
//! with the same epoch continues the same ids, and the harness knows exactly
//! which events were due in a measured window without asking the server.

use serde::{Deserialize, Serialize};

/// An open-loop emission schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Time of global sequence number 0, µs since the Unix epoch.
    pub start_epoch_us: u64,
    /// Events per second per topic (may be fractional; 0 means no events).
    pub rate: f64,
    /// Number of topics, named `t0 … t{topics-1}`.
    pub topics: u32,
}

/// One scheduled event: which topic, which id, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Global sequence number (0-based, across all topics).
    pub seq: u64,
    /// Topic index.
    pub topic: u32,
    /// Event id within the topic (from 1).
    pub id: u64,
    /// Scheduled emission time, µs since the Unix epoch.
    pub at_us: u64,
}

impl Schedule {
    /// Interval between consecutive events of all topics together, in µs (fractional).
    fn step_us(&self) -> f64 {
        1e6 / (self.rate * f64::from(self.topics))
    }

    /// Whether this schedule emits anything at all.
    pub fn is_active(&self) -> bool {
        self.rate > 0.0 && self.rate.is_finite() && self.topics > 0
    }

    /// The slot of global sequence number `seq`.
    pub fn slot(&self, seq: u64) -> Slot {
        let topics = u64::from(self.topics.max(1));
        Slot {
            seq,
            topic: (seq % topics) as u32,
            id: seq / topics + 1,
            at_us: self.start_epoch_us + (seq as f64 * self.step_us()).round() as u64,
        }
    }

    /// Scheduled emission time of event `id` (from 1) of topic `topic`.
    pub fn scheduled_at(&self, topic: u32, id: u64) -> u64 {
        debug_assert!(id >= 1);
        let seq = (id - 1) * u64::from(self.topics) + u64::from(topic);
        self.slot(seq).at_us
    }

    /// The first global sequence number scheduled at or after `t_us`.
    pub fn first_seq_at_or_after(&self, t_us: u64) -> u64 {
        if t_us <= self.start_epoch_us || !self.is_active() {
            return 0;
        }
        let approx = ((t_us - self.start_epoch_us) as f64 / self.step_us()).floor() as u64;
        // Rounding in `slot` may put the true answer one either side of the estimate.
        let mut seq = approx.saturating_sub(1);
        while self.slot(seq).at_us < t_us {
            seq += 1;
        }
        seq
    }

    /// The ids of topic `topic` scheduled in `[from_us, to_us)`, as an
    /// inclusive range `first..=last`; `None` when there are none.
    pub fn ids_in_window(&self, topic: u32, from_us: u64, to_us: u64) -> Option<(u64, u64)> {
        if !self.is_active() || from_us >= to_us || topic >= self.topics {
            return None;
        }
        let first = self.first_id_at_or_after(topic, from_us);
        let end = self.first_id_at_or_after(topic, to_us); // exclusive
        (end > first).then(|| (first, end - 1))
    }

    /// The smallest id of `topic` scheduled at or after `t_us`.
    fn first_id_at_or_after(&self, topic: u32, t_us: u64) -> u64 {
        let seq = self.first_seq_at_or_after(t_us);
        let topics = u64::from(self.topics);
        // First seq >= `seq` that belongs to `topic`.
        let base = seq - seq % topics + u64::from(topic);
        let seq = if base >= seq { base } else { base + topics };
        seq / topics + 1
    }

    /// Number of events of `topic` scheduled in `[from_us, to_us)`.
    pub fn count_in_window(&self, topic: u32, from_us: u64, to_us: u64) -> u64 {
        self.ids_in_window(topic, from_us, to_us)
            .map_or(0, |(a, b)| b - a + 1)
    }
}

/// A named range of topics with a rate of its own (`push-server
/// --topic-group NAME:COUNT:RATE`).
///
/// Groups split one server's topics into consecutive, disjoint ranges: the
/// first group holds `t0 … t{count-1}`, the next starts where it ends, and
/// so on. Names stay `tN` (the wire contract is unchanged); each range runs
/// its own [`Schedule`] from the one start epoch, so a hot topic at 20/s and
/// a thousand per-user topics at one event per 30 s share a server without
/// sharing a rate. The name is a label (logs, `/stats`, reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicGroup {
    /// The group's label.
    pub name: String,
    /// Number of topics in the group.
    pub topics: u32,
    /// Events per second per topic of the group (0: none are generated).
    pub rate: f64,
    /// The group's named SSE event type (`event: status`), replacing the
    /// server's for its topics; `None`: the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
}

impl TopicGroup {
    /// The schedule of each group from `start_epoch_us`, with the index of
    /// its first topic (topic `j` of a group's schedule is `t{first + j}`).
    pub fn schedules(groups: &[TopicGroup], start_epoch_us: u64) -> Vec<(u32, Schedule)> {
        let mut first = 0u32;
        groups
            .iter()
            .map(|g| {
                let at = first;
                first = first.saturating_add(g.topics);
                let schedule = Schedule {
                    start_epoch_us,
                    rate: g.rate,
                    topics: g.topics,
                };
                (at, schedule)
            })
            .collect()
    }
}

/// The name of topic `index`: `t0`, `t1`, ….
pub fn topic_name(index: u32) -> String {
    format!("t{index}")
}

/// The index of a topic name `tN`, if it is one.
pub fn topic_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('t')?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(rate: f64, topics: u32) -> Schedule {
        Schedule {
            start_epoch_us: 1_000_000,
            rate,
            topics,
        }
    }

    #[test]
    fn one_topic_is_evenly_spaced_from_id_1() {
        let s = sched(10.0, 1);
        assert_eq!(s.scheduled_at(0, 1), 1_000_000);
        assert_eq!(s.scheduled_at(0, 2), 1_100_000);
        assert_eq!(
            s.slot(10),
            Slot {
                seq: 10,
                topic: 0,
                id: 11,
                at_us: 2_000_000
            }
        );
    }

    #[test]
    fn topics_are_staggered_and_ids_contiguous_per_topic() {
        let s = sched(1.0, 4);
        let slots: Vec<_> = (0..8).map(|g| s.slot(g)).collect();
        assert_eq!(slots[1].topic, 1);
        assert_eq!(slots[1].at_us, 1_250_000);
        assert_eq!(slots[5].topic, 1);
        assert_eq!(slots[5].id, 2);
        assert_eq!(s.scheduled_at(1, 2), 2_250_000);
    }

    #[test]
    fn window_counts_match_brute_force() {
        for (rate, topics) in [(10.0, 1), (3.0, 7), (0.5, 3), (1000.0, 2)] {
            let s = sched(rate, topics);
            for (from, to) in [
                (0, 5_000_000),
                (1_000_000, 1_000_001),
                (1_333_333, 4_777_777),
            ] {
                for topic in 0..topics {
                    let brute: Vec<u64> = (0..20_000)
                        .map(|g| s.slot(g))
                        .filter(|sl| sl.topic == topic && sl.at_us >= from && sl.at_us < to)
                        .map(|sl| sl.id)
                        .collect();
                    let expect = brute.first().map(|&a| (a, *brute.last().unwrap()));
                    assert_eq!(
                        s.ids_in_window(topic, from, to),
                        expect,
                        "{rate} {topics} {from} {to} {topic}"
                    );
                }
            }
        }
    }

    #[test]
    fn inactive_schedule_has_no_events() {
        assert_eq!(sched(0.0, 1).ids_in_window(0, 0, u64::MAX), None);
    }

    #[test]
    fn topic_names_round_trip() {
        assert_eq!(topic_name(12), "t12");
        assert_eq!(topic_index("t12"), Some(12));
        assert_eq!(topic_index("t"), None);
        assert_eq!(topic_index("t01"), None);
        assert_eq!(topic_index("x1"), None);
    }

    #[test]
    fn topic_groups_take_consecutive_disjoint_ranges_with_their_own_rates() {
        let groups = [
            TopicGroup {
                name: "idle".into(),
                topics: 3,
                rate: 0.5,
                event_type: None,
            },
            TopicGroup {
                name: "busy".into(),
                topics: 1,
                rate: 20.0,
                event_type: None,
            },
        ];
        let s = TopicGroup::schedules(&groups, 7);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].0, s[0].1.topics, s[0].1.rate), (0, 3, 0.5));
        assert_eq!((s[1].0, s[1].1.topics, s[1].1.rate), (3, 1, 20.0));
        assert!(s.iter().all(|(_, sc)| sc.start_epoch_us == 7));
    }
}
