//! What real clients do besides listening, so that runs exercise it.
//!
//! The fleet's plain subscriber is perfectly polite: it reads everything at
//! once and never speaks. Real ones do not. PyPI `websockets` sends a
//! WebSocket Ping every 20 s by default and npm `ws` whenever the page asks;
//! a backgrounded tab or a phone changing cells stops reading for a while;
//! a page may send a greeting the server does not understand. Each of these
//! once broke delivery on push-server (a ping replayed seconds of events),
//! while the polite fleet saw nothing. A [`Behaviour`] adds them to a
//! client; verification does not change: every id once, in order.
//!
//! | habit | transports | what the client does |
//! |---|---|---|
//! | `ws_ping_interval` | WebSocket | sends a Ping frame (8 bytes of payload) every interval |
//! | `pause_every` + `pause_for` | every one | stops reading for `pause_for` once every `pause_every` (streams: the socket is not read, so the server's writes back up; polling: no request is sent) |
//! | `junk_interval` | WebSocket | sends a message the server does not expect, alternately the text `hello` and a 2-byte binary message; push-server answers each with `{"error":"…"}` |
//!
//! A habit a transport cannot have is ignored for it (an SSE or polling
//! client cannot send a Ping). Each client's schedule is offset by its
//! [`Behaviour::phase`], so a fleet does not pause or ping in lockstep.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// A client's habits (all off by default: the polite client).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Behaviour {
    /// WebSocket: send a Ping this often.
    pub ws_ping_interval: Option<Duration>,
    /// Stop reading once every this long…
    pub pause_every: Option<Duration>,
    /// …for this long.
    pub pause_for: Duration,
    /// WebSocket: send an unexpected message this often.
    pub junk_interval: Option<Duration>,
    /// Where in each interval this client's schedule starts, as a fraction
    /// of the interval (0 to 1): client `i` of `n` uses `i / n`.
    pub phase: f64,
}

impl Behaviour {
    /// Whether any habit is on.
    pub fn is_polite(&self) -> bool {
        self.ws_ping_interval.is_none()
            && self.pause_every.is_none()
            && self.junk_interval.is_none()
    }
}

/// What a client's habits did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HabitCounts {
    /// Ping frames sent.
    pub pings: u64,
    /// Reading pauses taken.
    pub pauses: u64,
    /// Time spent not reading, µs.
    pub paused_us: u64,
    /// Unexpected messages sent.
    pub junk: u64,
    /// `{"error":…}` replies received for them.
    pub error_replies: u64,
}

/// What a client must do now, besides reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Habit {
    /// Send a WebSocket Ping.
    Ping,
    /// Stop reading for this long.
    Pause(Duration),
    /// Send the `n`th unexpected message.
    Junk(u64),
}

/// A client's habit timers. They live as long as the subscriber, across
/// reconnects; created at the first session (a timer needs the runtime).
#[derive(Debug)]
pub(crate) struct Habits {
    behaviour: Behaviour,
    /// Which habits this transport can have.
    can_send: bool,
    timers: Option<Timers>,
    /// What the habits did so far.
    pub counts: HabitCounts,
}

#[derive(Debug)]
struct Timers {
    ping: Option<Interval>,
    pause: Option<Interval>,
    junk: Option<Interval>,
}

/// An interval of `period` whose first tick is `phase` of a period from now
/// (never at once: a habit starts after the client has begun listening).
fn timer(period: Option<Duration>, phase: f64) -> Option<Interval> {
    let period = period.filter(|p| !p.is_zero())?;
    let first = Instant::now() + period.mul_f64(phase.clamp(0.0, 1.0)).max(period / 100);
    let mut t = tokio::time::interval_at(first, period);
    // After a pause (or a slow send) go on at the same pace: no burst.
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(t)
}

async fn tick(timer: Option<&mut Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Habits {
    /// The habits of `behaviour` that a client can have; `can_send`: it
    /// may send frames on its connection (WebSocket).
    pub(crate) fn new(behaviour: &Behaviour, can_send: bool) -> Self {
        Self {
            behaviour: behaviour.clone(),
            can_send,
            timers: None,
            counts: HabitCounts::default(),
        }
    }

    /// Whether this client has any habit its transport can have. A polite
    /// client's session loops leave the habit branch disabled (`, if
    /// active()`), so it costs them nothing per event.
    pub(crate) fn active(&self) -> bool {
        let b = &self.behaviour;
        let pauses = b.pause_every.is_some() && !b.pause_for.is_zero();
        let sends = self.can_send && (b.ws_ping_interval.is_some() || b.junk_interval.is_some());
        pauses || sends
    }

    /// Waits for the next habit; never completes for a polite client.
    /// Cancel-safe (each timer is an [`Interval`]).
    pub(crate) async fn next(&mut self) -> Habit {
        let b = &self.behaviour;
        let can_send = self.can_send;
        let timers = self.timers.get_or_insert_with(|| Timers {
            ping: timer(b.ws_ping_interval.filter(|_| can_send), b.phase),
            pause: timer(b.pause_every.filter(|_| !b.pause_for.is_zero()), b.phase),
            junk: timer(b.junk_interval.filter(|_| can_send), b.phase),
        });
        tokio::select! {
            () = tick(timers.ping.as_mut()) => {
                self.counts.pings += 1;
                Habit::Ping
            }
            () = tick(timers.pause.as_mut()) => {
                self.counts.pauses += 1;
                self.counts.paused_us += self.behaviour.pause_for.as_micros() as u64;
                Habit::Pause(self.behaviour.pause_for)
            }
            () = tick(timers.junk.as_mut()) => {
                self.counts.junk += 1;
                Habit::Junk(self.counts.junk)
            }
        }
    }

    /// Whether a pause is due now (polling clients ask before each request),
    /// and if so, for how long; counts it.
    pub(crate) fn pause_due(&mut self) -> Option<Duration> {
        let b = &self.behaviour;
        if b.pause_for.is_zero() {
            return None;
        }
        let timers = self.timers.get_or_insert_with(|| Timers {
            ping: None,
            pause: timer(b.pause_every, b.phase),
            junk: None,
        });
        let pause = timers.pause.as_mut()?;
        // A tick that is already due completes at once.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        if pause.poll_tick(&mut cx).is_ready() {
            self.counts.pauses += 1;
            self.counts.paused_us += b.pause_for.as_micros() as u64;
            Some(b.pause_for)
        } else {
            None
        }
    }
}

/// The `n`th unexpected WebSocket message: alternately a greeting and a
/// short binary message.
pub(crate) fn junk_message(n: u64) -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::Message;
    if n % 2 == 1 {
        Message::text("hello")
    } else {
        Message::binary(vec![0xde, 0xad])
    }
}

/// Whether a text message is push-server's reply to an unexpected message
/// (`{"error":"…"}`) rather than an event.
pub(crate) fn is_error_reply(text: &str) -> bool {
    text.starts_with("{\"error\":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn habits_tick_at_their_pace_offset_by_the_phase() {
        let b = Behaviour {
            ws_ping_interval: Some(Duration::from_secs(2)),
            pause_every: Some(Duration::from_secs(5)),
            pause_for: Duration::from_millis(500),
            junk_interval: None,
            phase: 0.5,
        };
        let start = Instant::now();
        let mut h = Habits::new(&b, true);
        let mut seen = Vec::new();
        while start.elapsed() < Duration::from_secs(10) {
            let habit = h.next().await;
            seen.push((start.elapsed().as_millis(), habit));
        }
        assert_eq!(
            seen,
            [
                (1000, Habit::Ping),
                (2500, Habit::Pause(Duration::from_millis(500))),
                (3000, Habit::Ping),
                (5000, Habit::Ping),
                (7000, Habit::Ping),
                (7500, Habit::Pause(Duration::from_millis(500))),
                (9000, Habit::Ping),
                (11000, Habit::Ping),
            ]
        );
        assert_eq!(h.counts.pings, 6);
        assert_eq!(h.counts.pauses, 2);
        assert_eq!(h.counts.paused_us, 1_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_cannot_send_only_pauses_and_a_polite_one_never_acts() {
        let b = Behaviour {
            ws_ping_interval: Some(Duration::from_secs(1)),
            junk_interval: Some(Duration::from_secs(1)),
            pause_every: Some(Duration::from_secs(3)),
            pause_for: Duration::from_secs(1),
            phase: 0.0,
        };
        let mut h = Habits::new(&b, false);
        for _ in 0..3 {
            assert_eq!(h.next().await, Habit::Pause(Duration::from_secs(1)));
        }
        assert!(h.active(), "a client that cannot send still pauses");
        let pings_only = Behaviour {
            ws_ping_interval: Some(Duration::from_secs(1)),
            ..Behaviour::default()
        };
        assert!(!Habits::new(&pings_only, false).active(), "SSE cannot ping");
        let mut polite = Habits::new(&Behaviour::default(), true);
        assert!(!polite.active());
        let waited = tokio::time::timeout(Duration::from_secs(3600), polite.next()).await;
        assert!(waited.is_err(), "a polite client has no habits");
        assert!(Behaviour::default().is_polite() && !b.is_polite());
    }

    #[tokio::test(start_paused = true)]
    async fn polling_clients_see_a_pause_when_one_is_due() {
        let b = Behaviour {
            pause_every: Some(Duration::from_secs(2)),
            pause_for: Duration::from_millis(300),
            phase: 1.0,
            ..Behaviour::default()
        };
        let mut h = Habits::new(&b, false);
        assert_eq!(h.pause_due(), None);
        tokio::time::sleep(Duration::from_millis(1999)).await;
        assert_eq!(h.pause_due(), None);
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(h.pause_due(), Some(Duration::from_millis(300)));
        assert_eq!(h.pause_due(), None);
        assert_eq!(h.counts.pauses, 1);
    }

    #[test]
    fn junk_alternates_text_and_binary_and_error_replies_are_recognised() {
        assert!(junk_message(1).is_text() && junk_message(2).is_binary());
        assert!(is_error_reply(r#"{"error":"bad body"}"#));
        assert!(!is_error_reply(r#"{"id":1,"topic":"t0"}"#));
    }
}
