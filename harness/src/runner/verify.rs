//! Verification: the fleet's parts (one per transport, or per group of a
//! mixed run), what each client should have received, and each part's
//! result: every expected id once, in order; chat messages round-tripped.

use crate::fleet::parts::Part;
use crate::recorder::Totals;
use crate::results::{self, GroupResult, Histograms, Summary, TransportResult};
use crate::scenario::Scenario;
use crate::scenario::check::fmt_duration;
use crate::server_process::{self};
use protocol::{Schedule, TransportKind};

/// Name of a mixed run's entry in progress lines and its server's log.
pub(crate) const MIXED: &str = "mixed";

/// Verifies and summarises one part's clients (the whole fleet outside a
/// mixed run), chat included; `problems` holds what already went wrong.
pub(crate) fn part_result(
    part: &Part,
    totals: &Totals,
    (window_start, window_end): (u64, u64),
    mut problems: Vec<String>,
) -> TransportResult {
    if let Some(chat) = &totals.chat {
        check_chat(chat, &mut problems);
    }
    let mut r = build_result(
        part.transport,
        &part.scenario,
        &part.schedule,
        window_start,
        window_end,
        totals,
        problems,
    );
    r.chat = totals
        .chat
        .as_ref()
        .map(|c| chat_result(part.transport, &part.scenario, c));
    r
}

/// The entry of a mixed run: each group verified and summarised on its
/// own (in `groups`), the entry's figures those of all clients together,
/// verified only when every group is; `all` is every group's totals
/// merged. `problems` (the run's own: the
/// connect wait, the fleet's stop, the server) are the entry's; a group's
/// are listed under its name.
pub(crate) fn mixed_result(
    scenario: &Scenario,
    parts: &[Part],
    part_totals: &[Totals],
    all: &Totals,
    window: (u64, u64),
    mut problems: Vec<String>,
) -> TransportResult {
    let groups: Vec<GroupResult> = parts
        .iter()
        .zip(part_totals)
        .map(|(part, t)| GroupResult {
            name: part.name.clone().unwrap_or_default(),
            first_topic: part.first_topic,
            topics: part.schedule.topics,
            rate: part.schedule.rate,
            result: part_result(part, t, window, Vec::new()),
        })
        .collect();
    for g in &groups {
        problems.extend(
            g.result
                .problems
                .iter()
                .map(|p| format!("group `{}`: {p}", g.name)),
        );
    }
    // The checks are the groups' (each against its own schedule): the
    // entry only sums them, so an inactive schedule skips the "nothing was
    // due" check that a rate-0 chat group would trip here.
    let idle = Schedule {
        rate: 0.0,
        ..parts[0].schedule
    };
    let transport = parts[0].transport;
    let mut r = build_result(
        transport,
        scenario,
        &idle,
        window.0,
        window.1,
        all,
        Vec::new(),
    );
    r.verified = problems.is_empty();
    r.problems = problems;
    r.groups = groups;
    r
}

/// The last id of every topic a client of `scenario` is on (index = its
/// topic counted from `first_topic`, the server's index of its first).
pub(crate) async fn chat_last_ids(
    base_url: &str,
    scenario: &Scenario,
    first_topic: u32,
) -> anyhow::Result<Vec<u64>> {
    let topics = (scenario.topics.max(1) as usize).min(scenario.clients);
    let mut last = Vec::with_capacity(topics);
    for topic in 0..topics {
        let name = protocol::schedule::topic_name(first_topic + topic as u32);
        last.push(server_process::fetch_last_id(base_url, &name).await?);
    }
    Ok(last)
}

/// A chat run verifies only if every message sent came back to its sender
/// and every due message could be sent, and something was sent at all.
pub(crate) fn check_chat(chat: &crate::recorder::ChatTotals, problems: &mut Vec<String>) {
    if chat.senders > 0 && chat.sent == 0 && chat.send_errors == 0 {
        problems.push("chat: no message was sent: nothing was verified".to_string());
    }
    if chat.lost() > 0 {
        problems.push(format!(
            "chat: {} of {} messages sent never came back to their sender",
            chat.lost(),
            chat.sent
        ));
    }
    if chat.send_errors > 0 {
        problems.push(format!(
            "chat: {} messages could not be sent",
            chat.send_errors
        ));
    }
}

/// The chat block of a transport's result.
pub(crate) fn chat_result(
    transport: TransportKind,
    scenario: &Scenario,
    chat: &crate::recorder::ChatTotals,
) -> results::ChatResult {
    results::ChatResult {
        senders: chat.senders,
        send_rate: scenario.send_rate,
        upstream: if transport == TransportKind::Ws {
            "websocket"
        } else {
            "publish"
        }
        .to_string(),
        sent: chat.sent,
        echoed: chat.echoed,
        lost: chat.lost(),
        send_errors: chat.send_errors,
        round_trip: Summary::from_histogram(&chat.round_trip),
        round_trip_us: results::encode_histogram(&chat.round_trip),
    }
}

/// Verifies and summarises one transport. `problems` holds what already went
/// wrong; verification adds its own findings, and the transport is verified
/// only when there are none.
pub(crate) fn build_result(
    transport: TransportKind,
    scenario: &Scenario,
    schedule: &Schedule,
    window_start: u64,
    window_end: u64,
    t: &Totals,
    mut problems: Vec<String>,
) -> TransportResult {
    let c = t.counts;
    if t.clients_connected < t.clients {
        problems.push(format!(
            "{} of {} clients never connected",
            t.clients - t.clients_connected,
            t.clients
        ));
    }
    if schedule.is_active() && c.expected == 0 && problems.is_empty() {
        problems.push(format!(
            "no events were due in the {} window at {} events/s per topic: nothing was verified",
            fmt_duration(scenario.duration),
            schedule.rate
        ));
    }
    if c.missing > 0 {
        problems.push(format!(
            "{} of {} expected events missing",
            c.missing, c.expected
        ));
    }
    if c.duplicated > 0 {
        problems.push(format!("{} events delivered more than once", c.duplicated));
    }
    if c.out_of_order > 0 {
        problems.push(format!("{} events delivered out of order", c.out_of_order));
    }
    if t.unexpected > 0 {
        problems.push(format!(
            "{} events in the window had ids the schedule did not put there",
            t.unexpected
        ));
    }
    if !problems.is_empty() && c.errors > 0 {
        // Context for the failure, not a failure by itself (a retried connect loses nothing).
        problems.push(format!(
            "clients reported {} errors, e.g.: {}",
            c.errors,
            t.first_errors.join(" | ")
        ));
    }
    let window_s = window_end.saturating_sub(window_start) as f64 / 1e6;
    TransportResult {
        verified: problems.is_empty(),
        problems,
        clients: t.clients,
        clients_connected: t.clients_connected,
        window_s,
        window_start_us: window_start,
        counts: c,
        delivered_per_s: if window_s > 0.0 {
            c.delivered as f64 / window_s
        } else {
            0.0
        },
        latency: Summary::from_histogram(&t.latency),
        connect: Summary::from_histogram(&t.connect),
        histograms: Histograms {
            latency_us: results::encode_histogram(&t.latency),
            connect_us: results::encode_histogram(&t.connect),
        },
        habits: t.habits,
        ..TransportResult::empty(transport)
    }
}
