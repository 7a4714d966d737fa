//! The hub: one generator, one event log per topic, one wakeup per topic.
//!
//! Every transport is a cursor over the same log, so they differ only in how
//! they put bytes on the wire:
//!
//! - **Generator** ([`Hub::spawn_generator`]): one thread, open loop over
//!   [`Schedule::slot`]. It sleeps until the next slot is due, then emits every
//!   slot that is due, stamped with the slot's *scheduled* time. It never waits
//!   for clients, so a stalled generator or a slow server shows up as latency
//!   (no coordinated omission).
//! - **Log**: per topic, a bounded ring of [`EncodedEvent`]s with contiguous
//!   ids, so finding "everything after cursor N" is index arithmetic. Each
//!   event is encoded once, when it enters the log; fan-out only clones
//!   reference-counted bytes.
//! - **Wakeups**: per topic a `watch` channel carrying the latest id. A
//!   `watch` holds only the newest value, so a connection that was busy when
//!   several events arrived wakes once and takes them all in one read
//!   ([`Hub::read`]): no per-event wake per client, and one write per wake.
//! - **Direct fan-out** (the default, [`crate::direct`]): streaming
//!   connections that are caught up are not woken at all; whoever appends
//!   writes the event to their sockets itself, one `send` each, and the
//!   generator fans out everything that was due at once in one write per
//!   socket; a task the appender must hand a socket back to is woken
//!   through its own connection. The `watch` then wakes only long polls
//!   (and every streaming task with `--fanout tasks`).
//!
//! - **Publishing** ([`Hub::publish`]): `POST /publish` and WebSocket
//!   upstream messages append to the same log through the same path as the
//!   generator, which takes the next id under the topic's lock, so ids stay
//!   contiguous whoever appends.
//!
//! The log is behind a `std::sync::RwLock` held only to clone a few `Arc`s
//! (readers) or encode and push one event (the generator, a publisher);
//! nothing awaits while holding it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use protocol::Schedule;
use protocol::schedule::{Slot, TopicGroup, topic_index, topic_name};
use slab::Slab;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::conns::ConnHandle;
use crate::direct::{Batch, FanoutCounters};
use crate::event::EncodedEvent;

mod fed;
pub use fed::Fed;

/// What the generator produces.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The open-loop schedule: rate per topic, number of topics, start epoch.
    /// With `groups`, only its start epoch applies (its `topics` should be
    /// the groups' total, which `/stats` reports).
    pub schedule: Schedule,
    /// Topic groups, each a range of topics with its own rate (see
    /// [`TopicGroup`]); empty: one group of `schedule.topics` at `schedule.rate`.
    pub groups: Vec<TopicGroup>,
    /// Size of each event's `data` filler, in bytes (default 64).
    pub payload_bytes: usize,
    /// Events kept per topic for resuming clients (default 1024; at least 1 is kept).
    pub history: usize,
    /// Named SSE event type for all topics; `None` sends the default
    /// `message` type (no `event:` line), which a browser's `onmessage` sees.
    pub event_type: Option<String>,
    /// Events come from a broker ([`crate::broker`]) through
    /// [`Hub::append_fed`], not from this hub's own generator.
    pub fed: bool,
}

impl Default for HubConfig {
    /// 5 events/s on one topic, 64-byte payloads, 1024 events of history,
    /// schedule starting now.
    fn default() -> Self {
        Self {
            schedule: Schedule {
                start_epoch_us: protocol::now_us(),
                rate: 5.0,
                topics: 1,
            },
            payload_bytes: 64,
            history: 1024,
            event_type: None,
            groups: Vec::new(),
            fed: false,
        }
    }
}

impl HubConfig {
    /// Each topic group's schedule with the index of its first topic: the
    /// groups', or the one of `schedule` when there are none.
    pub fn schedules(&self) -> Vec<(u32, Schedule)> {
        if self.groups.is_empty() {
            vec![(0, self.schedule)]
        } else {
            TopicGroup::schedules(&self.groups, self.schedule.start_epoch_us)
        }
    }
}

/// One topic's ring of recent events. Invariant: the events hold the
/// contiguous ids `next_id - len .. next_id`.
#[derive(Debug)]
struct Log {
    next_id: u64,
    events: VecDeque<Arc<EncodedEvent>>,
}

#[derive(Debug)]
struct Topic {
    name: String,
    /// Its named SSE event type: its group's, else the server's.
    event_type: Option<String>,
    log: RwLock<Log>,
    /// Latest id in the log (the id before the first event while empty).
    latest: watch::Sender<u64>,
    /// Connections streaming this topic with direct fan-out ([`crate::direct`]).
    sinks: Mutex<Slab<Arc<ConnHandle>>>,
}

impl Topic {
    /// Event `id` of this topic, encoded once for every transport.
    fn encode(&self, id: u64, at_us: u64, data: &str) -> Arc<EncodedEvent> {
        Arc::new(EncodedEvent::new(
            id,
            at_us,
            &self.name,
            data,
            self.event_type.as_deref(),
        ))
    }
}

/// Generator, per-topic event logs and wakeups. Shared by every connection.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    history: usize,
    topics: Box<[Topic]>,
    payload: String,
    /// Per topic group: the index of its first topic, its schedule, and the
    /// global sequence number its generator starts at (decided at creation,
    /// so every topic's live edge is known before the first event).
    groups: Vec<(u32, Schedule, u64)>,
    events_generated: AtomicU64,
    events_published: AtomicU64,
    lag_sum_us: AtomicU64,
    lag_max_us: AtomicU64,
    fanout: FanoutCounters,
}

/// Longest single sleep of the generator thread, so it notices shutdown.
const MAX_NAP: Duration = Duration::from_millis(20);

impl Hub {
    /// A hub whose schedule continues from now: events scheduled before this
    /// moment are absent, so a server restarted with the same start epoch
    /// continues the same ids.
    pub fn new(config: HubConfig) -> Self {
        let now = protocol::now_us();
        let groups: Vec<(u32, Schedule, u64)> = config
            .schedules()
            .into_iter()
            .map(|(first, schedule)| (first, schedule, schedule.first_seq_at_or_after(now)))
            .collect();
        let history = config.history.max(1);
        let topics = groups
            .iter()
            .enumerate()
            .flat_map(|(g, &(first, schedule, start_seq))| {
                let event_type = config
                    .groups
                    .get(g)
                    .and_then(|g| g.event_type.clone())
                    .or_else(|| config.event_type.clone());
                (0..schedule.topics).map(move |t| {
                    // The first id this topic will get is the one of its first slot
                    // at or after `start_seq`; the live edge is the id before it.
                    let first_id = Self::first_id_from(&schedule, t, start_seq);
                    let (latest, _) = watch::channel(first_id - 1);
                    Topic {
                        name: topic_name(first + t),
                        event_type: event_type.clone(),
                        log: RwLock::new(Log {
                            next_id: first_id,
                            // Grows with use: thousands of idle topics cost nothing up front.
                            events: VecDeque::new(),
                        }),
                        latest,
                        sinks: Mutex::new(Slab::new()),
                    }
                })
            })
            .collect();
        Self {
            payload: protocol::encode::payload(config.payload_bytes),
            history,
            topics,
            groups,
            config,
            events_generated: AtomicU64::new(0),
            events_published: AtomicU64::new(0),
            lag_sum_us: AtomicU64::new(0),
            lag_max_us: AtomicU64::new(0),
            fanout: FanoutCounters::default(),
        }
    }

    fn first_id_from(schedule: &Schedule, topic: u32, seq: u64) -> u64 {
        let topics = u64::from(schedule.topics.max(1));
        let base = seq - seq % topics + u64::from(topic);
        let first_seq = if base >= seq { base } else { base + topics };
        first_seq / topics + 1
    }

    /// The configuration this hub was built with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Number of topics.
    pub fn topics(&self) -> u32 {
        self.topics.len() as u32
    }

    /// The index of topic `name` (`t0`, `t1`, …) if this hub has it.
    pub fn topic(&self, name: &str) -> Option<u32> {
        topic_index(name).filter(|&t| t < self.topics())
    }

    /// The latest id of `topic` (the live edge). Panics on an unknown index:
    /// callers validate topics with [`Hub::topic`].
    pub fn latest(&self, topic: u32) -> u64 {
        *self.topics[topic as usize].latest.borrow()
    }

    /// A wakeup for `topic`: changes whenever new events enter its log.
    /// Mark it seen (`borrow_and_update`) *before* [`Hub::read`], then a
    /// change can never be missed.
    pub fn subscribe(&self, topic: u32) -> watch::Receiver<u64> {
        self.topics[topic as usize].latest.subscribe()
    }

    /// Enters `conn` among the direct-write subscribers of `topic`; returns
    /// the key that [`Hub::detach`] takes.
    pub(crate) fn attach(&self, topic: u32, conn: Arc<ConnHandle>) -> usize {
        self.sinks(topic).insert(conn)
    }

    /// Removes a subscriber entered by [`Hub::attach`].
    pub(crate) fn detach(&self, topic: u32, key: usize) {
        self.sinks(topic).try_remove(key);
    }

    fn sinks(&self, topic: u32) -> std::sync::MutexGuard<'_, Slab<Arc<ConnHandle>>> {
        self.topics[topic as usize]
            .sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Direct fan-out counters.
    pub fn fanout(&self) -> &FanoutCounters {
        &self.fanout
    }

    /// Appends to `out` the events of `topic` with id > `after` still in the
    /// log, oldest first, at most `limit`; returns the new cursor (the id of
    /// the last event appended, or `after` when none was).
    ///
    /// A cursor older than the log delivers from the oldest event held (the
    /// client sees and counts the gap); a cursor beyond the latest id
    /// delivers nothing (the caller waits for events after it).
    pub fn read(
        &self,
        topic: u32,
        after: u64,
        limit: usize,
        out: &mut Vec<Arc<EncodedEvent>>,
    ) -> u64 {
        let log = self.topics[topic as usize]
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let oldest = log.next_id - log.events.len() as u64;
        let start = after.saturating_add(1).max(oldest);
        if start >= log.next_id || limit == 0 {
            return after;
        }
        let from = (start - oldest) as usize;
        let to = log.events.len().min(from.saturating_add(limit));
        out.extend(log.events.range(from..to).cloned());
        start + (to - from) as u64 - 1
    }

    /// Events generated so far (all topics).
    pub fn events_generated(&self) -> u64 {
        self.events_generated.load(Ordering::Relaxed)
    }

    /// Generator lateness: (sum, max) over emitted events of (actual emission
    /// time − scheduled time), µs. The timer wheel's 1 ms tick is part of it.
    pub fn generator_lag_us(&self) -> (u64, u64) {
        (
            self.lag_sum_us.load(Ordering::Relaxed),
            self.lag_max_us.load(Ordering::Relaxed),
        )
    }

    /// Events published by clients so far (`POST /publish`, WebSocket
    /// upstream messages; all topics). Not part of [`Hub::events_generated`].
    pub fn events_published(&self) -> u64 {
        self.events_published.load(Ordering::Relaxed)
    }

    /// Appends an event published by a client to `topic` (an index checked
    /// with [`Hub::topic`]) and wakes its subscribers; returns its id.
    ///
    /// `emitted_at_us` is the time of this call, i.e. when the server had
    /// received the whole message: latency of a published event is measured
    /// from its receipt, and the sender measures the full round trip itself.
    ///
    /// `None` with a broker ([`HubConfig::fed`]): ids are assigned by the
    /// broker's publisher for every server, so a server cannot append one.
    pub fn publish(&self, topic: u32, data: &str) -> Option<u64> {
        if self.config.fed {
            return None;
        }
        let id = self.append(topic, protocol::now_us(), data);
        self.events_published.fetch_add(1, Ordering::Relaxed);
        Some(id)
    }

    /// Appends one scheduled event to its topic's log (`slot.topic` counted
    /// from `first`, its group's first topic) and wakes its subscribers.
    /// Appends one scheduled event to its topic's log and wakes the
    /// topic's waiting tasks; the caller fans it out to direct-write
    /// sockets ([`Hub::fan_out`]), possibly together with later events.
    fn emit(&self, first: u32, slot: Slot) -> (u32, Arc<EncodedEvent>) {
        let topic = first + slot.topic;
        let (_, event) = self.append_only(topic, slot.at_us, &self.payload);
        self.events_generated.fetch_add(1, Ordering::Relaxed);
        let lag = protocol::now_us().saturating_sub(slot.at_us);
        self.lag_sum_us.fetch_add(lag, Ordering::Relaxed);
        self.lag_max_us.fetch_max(lag, Ordering::Relaxed);
        (topic, event)
    }

    /// The one append path of the generator and of publishers: the id is
    /// taken from the log under its write lock, so ids stay contiguous
    /// whoever appends. Returns the new event's id.
    ///
    /// Without publishers the ids equal the schedule's slot ids (so a
    /// restarted server continues them); each published event shifts the
    /// later generated ids of its topic by one.
    fn append(&self, topic: u32, at_us: u64, data: &str) -> u64 {
        let (id, event) = self.append_only(topic, at_us, data);
        self.fan_out(topic, std::slice::from_ref(&event));
        id
    }

    /// [`Hub::append`] without the direct fan-out.
    fn append_only(&self, topic: u32, at_us: u64, data: &str) -> (u64, Arc<EncodedEvent>) {
        let topic = &self.topics[topic as usize];
        let (id, event) = {
            let mut log = topic.log.write().unwrap_or_else(PoisonError::into_inner);
            let id = log.next_id;
            (id, self.push(topic, &mut log, (id, at_us, data)))
        };
        Self::advance_latest(topic, id);
        (id, event)
    }

    /// Encodes event `id` and pushes it onto `log` (`topic`'s, write-locked),
    /// dropping the oldest beyond the history; the log's next id follows it.
    fn push(
        &self,
        topic: &Topic,
        log: &mut Log,
        (id, at_us, data): (u64, u64, &str),
    ) -> Arc<EncodedEvent> {
        // Encoded under the lock because the id is part of every encoding;
        // it is one small allocation per event (not per client), and
        // readers only wait that long.
        let event = topic.encode(id, at_us, data);
        if log.events.len() >= self.history {
            log.events.pop_front();
        }
        log.events.push_back(event.clone());
        log.next_id = id + 1;
        event
    }

    /// Moves `topic`'s live edge to `id`, once the event is in the log (so
    /// a woken reader finds it). Two appenders may get here in either
    /// order: the edge only moves forward, so a late, smaller id never
    /// hides a larger one.
    fn advance_latest(topic: &Topic, id: u64) {
        topic.latest.send_if_modified(|latest| {
            let newer = id > *latest;
            if newer {
                *latest = id;
            }
            newer
        });
    }

    /// Offers new events (contiguous ids of one topic, oldest first) to
    /// every direct-write subscriber of the topic: parked sockets get them
    /// written now, in one write, the others' tasks are notified
    /// ([`crate::direct`]). The subscriber list is copied out of its lock
    /// first, so connecting and disconnecting never wait for a broadcast.
    fn fan_out(&self, topic: u32, events: &[Arc<EncodedEvent>]) {
        let sinks: Vec<Arc<ConnHandle>> = {
            let sinks = self.sinks(topic);
            if sinks.is_empty() {
                return;
            }
            sinks.iter().map(|(_, conn)| conn.clone()).collect()
        };
        let batch = Batch::new(events);
        for conn in &sinks {
            conn.sink().offer(&batch, &self.fanout);
        }
    }

    /// Starts the generator on its own OS thread (named `generator`); it
    /// runs until `shutdown` fires. Returns at once when the schedule is
    /// inactive (rate 0).
    ///
    /// Why a thread and not a tokio task: tokio's timer has a 1 ms tick, so
    /// a task woken by `sleep_until` emits ~0.9 ms late on average (measured
    /// here), which would be added to every transport's latency alike and
    /// blur differences of tens of µs. `std::thread::sleep` wakes within the
    /// kernel's timer slack (~50–100 µs), and `emit` needs no runtime: the
    /// `watch` wakeups are plain wakers.
    pub fn spawn_generator(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("generator".into())
            .spawn(move || self.run_generator(&shutdown))
    }

    /// The generator loop: sleeps until the next slot's scheduled time (the
    /// earliest over the topic groups), then emits every slot that is due in
    /// every group. Open loop: it never waits for clients, and after a stall
    /// it emits the missed slots at once, still stamped with their scheduled
    /// times.
    fn run_generator(&self, shutdown: &CancellationToken) {
        if self.config.fed {
            // Events come from the broker ([`crate::broker`]), which runs
            // the schedule itself when this server publishes.
            return;
        }
        self.run_schedule(shutdown, |due| {
            let mut due: Vec<(u32, Arc<EncodedEvent>)> = due
                .iter()
                .map(|&(first, slot)| self.emit(first, slot))
                .collect();
            // Stable: each topic's events stay in id order.
            due.sort_by_key(|(topic, _)| *topic);
            for run in due.chunk_by(|a, b| a.0 == b.0) {
                let events: Vec<Arc<EncodedEvent>> = run.iter().map(|(_, e)| e.clone()).collect();
                self.fan_out(run[0].0, &events);
            }
        });
    }

    /// The schedule's clock: sleeps until the next slot's scheduled time
    /// (the earliest over the topic groups), then hands `out` every slot
    /// that is due in every group, as `(group's first topic, slot)`. Open
    /// loop: it never waits for clients, and after a stall it hands over the
    /// missed slots at once, still stamped with their scheduled times.
    pub fn run_schedule(&self, shutdown: &CancellationToken, mut out: impl FnMut(&[(u32, Slot)])) {
        // Per active group: first topic, schedule, next sequence number.
        let mut groups: Vec<(u32, Schedule, u64)> = self
            .groups
            .iter()
            .copied()
            .filter(|(_, schedule, _)| schedule.is_active())
            .collect();
        if groups.is_empty() {
            return;
        }
        let mut due: Vec<(u32, Slot)> = Vec::new();
        while !shutdown.is_cancelled() {
            let at_us = groups
                .iter()
                .map(|(_, schedule, seq)| schedule.slot(*seq).at_us)
                .min()
                .unwrap_or(u64::MAX);
            let now = protocol::now_us();
            if at_us > now {
                // Re-read the system clock after every nap (clients measure
                // with it too); short naps keep shutdown prompt.
                std::thread::sleep(Duration::from_micros(at_us - now).min(MAX_NAP));
                continue;
            }
            // Every due slot is handed over together: a generator that fell
            // behind (a fan-out longer than the interval, a starved core)
            // writes each socket what it owes in one write, as a task would,
            // and catches up instead of paying a full fan-out per late event.
            due.clear();
            for (first, schedule, seq) in &mut groups {
                loop {
                    let slot = schedule.slot(*seq);
                    // A generator far behind stops promptly too.
                    if slot.at_us > now || shutdown.is_cancelled() {
                        break;
                    }
                    due.push((*first, slot));
                    *seq += 1;
                }
            }
            out(&due);
        }
    }
}

#[cfg(test)]
mod tests;
