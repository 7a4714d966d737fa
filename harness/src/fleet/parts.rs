//! The fleet's parts and its clients: one part per transport (or per
//! group of a mixed run), each client's config and recorder, and, at the
//! end, the counting of each part's clients against their schedule.
//!
//! Both sides of a run use this: the coordinator for a fleet in its own
//! process, and each agent for its [`Slice`] of the fleet (client `i` of
//! the whole fleet runs in agent `i % of`), so a client is the same client
//! wherever it runs.

use std::net::SocketAddr;
use std::sync::Arc;

use protocol::{Schedule, TransportKind};
use serde::{Deserialize, Serialize};

use crate::fleet;
use crate::recorder::{Presence, Recorder, Totals, Window};
use crate::scenario::Scenario;

/// Where fleet clients connect: a base URL and the raw-TCP port, if any.
pub type FleetTarget = (String, Option<SocketAddr>);

/// Which clients of the fleet one process runs: those whose index `i`
/// has `i % of == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// This process's number, from 0.
    pub index: usize,
    /// Processes the fleet is split over.
    pub of: usize,
}

impl Slice {
    /// The whole fleet in one process.
    pub const ALL: Slice = Slice { index: 0, of: 1 };

    /// Whether client `i` of the whole fleet is in this slice.
    pub fn holds(self, i: usize) -> bool {
        i % self.of.max(1) == self.index
    }

    /// How many of clients `first .. first + n` are in this slice.
    pub fn count_in(self, first: usize, n: usize) -> usize {
        (first..first + n).filter(|&i| self.holds(i)).count()
    }
}

/// One part of a run's fleet: clients of one transport on their own range
/// of topics with their own schedule. A mixed run has one per group;
/// any other run is one part, the whole fleet.
#[derive(Debug, Clone)]
pub struct Part {
    /// The group's name (`None` outside a mixed run).
    pub name: Option<String>,
    /// What its clients speak.
    pub transport: TransportKind,
    /// The part's own scenario: its clients, topics, rate and chat keys
    /// (see [`crate::scenario::Group::scenario`]).
    pub scenario: Scenario,
    /// Index of its first topic on the server.
    pub first_topic: u32,
    /// Its topics' schedule (topic `j` of it is the server's `first_topic + j`).
    pub schedule: Schedule,
}

/// The parts of a run's fleet (see [`Part`]); `schedule` is the server's
/// (only its start epoch counts in a mixed run, whose groups have their own).
pub fn fleet_parts(
    transport: TransportKind,
    scenario: &Scenario,
    schedule: &Schedule,
) -> Vec<Part> {
    if !scenario.is_mixed() {
        return vec![Part {
            name: None,
            transport,
            scenario: scenario.clone(),
            first_topic: 0,
            schedule: *schedule,
        }];
    }
    let schedules = protocol::schedule::TopicGroup::schedules(
        &scenario.topic_groups(),
        schedule.start_epoch_us,
    );
    scenario
        .group
        .iter()
        .zip(schedules)
        .map(|(g, (first_topic, schedule))| Part {
            name: Some(g.name.clone()),
            transport: g.transport,
            scenario: g.scenario(scenario),
            first_topic,
            schedule,
        })
        .collect()
}

/// Events one client should receive per second: the generator's rate on
/// its topic, or in a chat run the messages of its topic's senders.
pub fn expected_per_client(scenario: &Scenario, schedule: &Schedule) -> f64 {
    if scenario.is_chat() {
        let topics = (scenario.topics.max(1) as usize).min(scenario.clients.max(1));
        scenario.senders.div_ceil(topics) as f64 * scenario.send_rate
    } else {
        schedule.rate
    }
}

/// The clients of `slice`, in the fleet's order, each with its recorder:
/// client `i` of the whole fleet (parts in order) connects to
/// `targets[i % targets.len()]` (the servers, or the relays), on `path`
/// when a foreign target names one.
pub fn fleet_clients(
    parts: &[Part],
    slice: Slice,
    (targets, path): (&[FleetTarget], Option<&str>),
    (window, presence): (&Arc<Window>, &Arc<Presence>),
    send_window_rx: &tokio::sync::watch::Receiver<Option<(u64, u64)>>,
) -> Vec<(clients::ClientConfig, Recorder)> {
    let total: usize = parts.iter().map(|p| p.scenario.clients).sum();
    let mut clients = Vec::with_capacity(slice.count_in(0, total));
    let mut first = 0;
    for part in parts {
        let sc = &part.scenario;
        let hint =
            (expected_per_client(sc, &part.schedule) * sc.duration.as_secs_f64()).ceil() as u64 + 2;
        let (base_url, tcp_addr) = &targets[0];
        let mut configs =
            fleet::client_configs(part.transport, base_url, *tcp_addr, sc, send_window_rx);
        fleet::place_group(&mut configs, part.first_topic, first);
        for (j, mut c) in configs.into_iter().enumerate() {
            let i = first + j;
            if !slice.holds(i) {
                continue;
            }
            let (url, tcp) = &targets[i % targets.len()];
            c.base_url.clone_from(url);
            c.tcp_addr = *tcp;
            if sc.brokered() {
                // Servers sharing one stream: after a session ends the
                // client resumes on the next one, as behind a load balancer.
                let others = (1..targets.len()).map(|k| &targets[(i + k) % targets.len()]);
                c.fallback_urls = others.clone().map(|(url, _)| url.clone()).collect();
                c.fallback_tcp_addrs = others.filter_map(|(_, tcp)| *tcp).collect();
            }
            if let Some(path) = path {
                c.path = Some(path.to_string());
            }
            let mut recorder = Recorder::new(window.clone(), presence.clone(), hint);
            if sc.is_chat() {
                recorder = recorder.chat(c.chat.as_ref().map(|c| c.sender));
            }
            clients.push((c, recorder));
        }
        first += sc.clients;
    }
    clients
}

/// Step 5, the counting: each part's clients of `slice` against what its
/// schedule (or, for chat, its topics' last ids) put in the window, events
/// lost to a fault's outage told apart. Recorders come in the fleet's
/// order, part by part; a client whose task was lost (`None`) counts all
/// its expected ids missing.
pub fn tally(
    parts: &[Part],
    slice: Slice,
    recorders: Vec<Option<Recorder>>,
    chat_last: &[Option<Vec<u64>>],
    (window_start, window_end): (u64, u64),
    outage_times: &[(u64, u64, usize)],
) -> Vec<Totals> {
    let mut outage_ids = Vec::new();
    let mut recorders = recorders.into_iter();
    let mut part_totals = Vec::with_capacity(parts.len());
    let mut first = 0;
    for (part, last_ids) in parts.iter().zip(chat_last) {
        let schedule = &part.schedule;
        let mut totals = Totals::new();
        let base = first;
        let mine = (0..part.scenario.clients).filter(move |j| slice.holds(base + j));
        first += part.scenario.clients;
        for (j, rec) in mine.zip(recorders.by_ref()) {
            // The part's own topic index: its schedule counts from its first topic.
            let topic = fleet::topic_of(j, schedule.topics);
            let expected = match last_ids {
                Some(last) => last
                    .get(topic as usize)
                    .and_then(|&n| (n > 0).then_some((1, n))),
                None => schedule.ids_in_window(topic, window_start, window_end),
            };
            outage_ids.clear();
            outage_ids.extend(outage_times.iter().filter_map(|&(a, b, epoch)| {
                schedule
                    .ids_in_window(topic, a, b)
                    .map(|(first, last)| (first, last, epoch))
            }));
            match rec {
                Some(r) => totals.merge(&r.finish_with_outages(expected, &outage_ids)),
                None => totals.add_lost_clients(1, expected.map_or(0, |(a, b)| b - a + 1)),
            }
        }
        part_totals.push(totals);
    }
    part_totals
}
