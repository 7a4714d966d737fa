//! Chat: subscribers that also send, and time their own messages' round
//! trip through the server's broadcast.
//!
//! A sender's messages are due on a fixed, open-loop schedule
//! ([`Outbox`]): message `k` is due at `start + phase + k / rate` inside the
//! measured window, whatever happened to message `k − 1`. A message sent
//! late (a slow publish before it, a reconnect) still carries its *due*
//! time, and the round trip is `receipt − due`, so a stalled sender shows up
//! in the figures instead of silently sending less (no coordinated
//! omission).
//!
//! Each message's data is a tag ([`tag`]) naming the sender, the sequence
//! number and the due time, so the sender recognises its own message when
//! its subscription delivers it ([`parse_tag`]) and needs no table of
//! pending messages.
//!
//! How a message goes up depends on the transport, as it would in a real
//! application: a WebSocket subscriber sends it on its own socket (full
//! duplex, see [`crate::ws`]); SSE and polling subscribers cannot, so they
//! `POST /publish` over one kept-alive HTTP connection of their own
//! ([`publish_loop`]). The raw-TCP floor has no upstream path.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Publisher;

/// First word of every chat message's data.
const TAG_PREFIX: &str = "chat";

/// Error messages kept per sender (the rest are only counted).
const KEEP_ERRORS: usize = 3;

/// The window in which senders send: `(start_us, end_us)`, µs since the
/// Unix epoch; `None` until the runner fixes it. Messages are due from
/// `start_us` (plus the sender's phase) and none is due at or after `end_us`.
pub type SendWindow = watch::Receiver<Option<(u64, u64)>>;

/// What makes a subscriber a chat sender.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// This sender's number, carried in every message it sends.
    pub sender: u32,
    /// Time between two of its messages (1 / send rate).
    pub interval: Duration,
    /// Offset of its schedule within one interval, so a fleet's senders
    /// are spread rather than synchronised.
    pub phase: Duration,
    /// When to send (set by the runner once the window is fixed).
    pub window: SendWindow,
}

/// The data of message `seq` of `sender`, due at `due_us`.
pub fn tag(sender: u32, seq: u64, due_us: u64) -> String {
    format!("{TAG_PREFIX} {sender} {seq} {due_us}")
}

/// A chat message's origin, read back from its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The sender's number.
    pub sender: u32,
    /// Its sequence number at that sender, from 0.
    pub seq: u64,
    /// When it was due to be sent, µs since the Unix epoch.
    pub due_us: u64,
}

/// Parses [`tag`]'s output; `None` for any other data (e.g. generated events).
pub fn parse_tag(data: &str) -> Option<Tag> {
    let mut words = data.strip_prefix(TAG_PREFIX)?.strip_prefix(' ')?.split(' ');
    let tag = Tag {
        sender: words.next()?.parse().ok()?,
        seq: words.next()?.parse().ok()?,
        due_us: words.next()?.parse().ok()?,
    };
    words.next().is_none().then_some(tag)
}

/// What one sender did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendCounts {
    /// Messages handed to the server: a publish answered 200, or a
    /// WebSocket message written to the socket.
    pub sent: u64,
    /// Messages that could not be sent (publish failed or refused, socket
    /// broken while writing); not retried, not in `sent`.
    pub failed: u64,
    /// The first few failures, in words.
    pub first_errors: Vec<String>,
}

impl SendCounts {
    /// Counts one failed send.
    pub fn fail(&mut self, message: String) {
        self.failed += 1;
        if self.first_errors.len() < KEEP_ERRORS {
            self.first_errors.push(message);
        }
    }
}

/// One sender's schedule and counts.
#[derive(Debug)]
pub struct Outbox {
    config: ChatConfig,
    next_seq: u64,
    /// What was sent so far.
    pub counts: SendCounts,
}

impl Outbox {
    /// A sender that has sent nothing yet.
    pub fn new(config: ChatConfig) -> Self {
        Self {
            config,
            next_seq: 0,
            counts: SendCounts::default(),
        }
    }

    /// This sender's number.
    pub fn sender(&self) -> u32 {
        self.config.sender
    }

    /// When message `seq` is due in `window`, or `None` if it falls at or
    /// after the window's end (the sender is done).
    pub fn due_us(&self, (start, end): (u64, u64), seq: u64) -> Option<u64> {
        let offset = self.config.phase
            + self.config.interval.saturating_mul(
                // More messages than u32::MAX per sender is beyond any run.
                u32::try_from(seq).unwrap_or(u32::MAX),
            );
        let due = start.saturating_add(offset.as_micros() as u64);
        (due < end).then_some(due)
    }

    /// Waits until the next message is due and returns its data and due
    /// time; overdue messages come back at once, one per call, in order.
    /// Never completes once the window's messages are all out, or if the
    /// window is never set.
    ///
    /// Cancel-safe: the sequence number advances only in the poll that
    /// returns, so a `select!` that drops this future loses no message.
    pub async fn next(&mut self) -> (String, u64) {
        let window = loop {
            if let Some(w) = *self.config.window.borrow_and_update() {
                break w;
            }
            if self.config.window.changed().await.is_err() {
                // The runner is gone without a window: nothing will ever be due.
                std::future::pending::<()>().await;
            }
        };
        let Some(due) = self.due_us(window, self.next_seq) else {
            return std::future::pending().await;
        };
        let wait = Duration::from_micros(due.saturating_sub(protocol::now_us()));
        tokio::time::sleep_until(Instant::now() + wait).await;
        let seq = self.next_seq;
        self.next_seq += 1;
        (tag(self.config.sender, seq, due), due)
    }
}

/// Sends `outbox`'s messages on `topic` with `POST /publish`, each when it
/// is due (one at a time over the publisher's one kept-alive connection: a
/// slow answer makes the next message late, and its round trip shows it),
/// until `stop` is cancelled.
pub async fn publish_loop(
    publisher: &Publisher,
    topic: &str,
    outbox: &mut Outbox,
    stop: &CancellationToken,
) {
    loop {
        let (data, _due) = tokio::select! {
            () = stop.cancelled() => return,
            next = outbox.next() => next,
        };
        tokio::select! {
            () = stop.cancelled() => return,
            sent = publisher.publish(topic, &data) => match sent {
                Ok(_id) => outbox.counts.sent += 1,
                Err(e) => outbox.counts.fail(format!("publish: {e:#}")),
            },
        }
    }
}

/// The JSON a WebSocket client sends upstream for `data`.
pub fn upstream_message(data: &str) -> String {
    serde_json::json!({ "data": data }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(interval_ms: u64, phase_ms: u64) -> (watch::Sender<Option<(u64, u64)>>, Outbox) {
        let (tx, rx) = watch::channel(None);
        let config = ChatConfig {
            sender: 7,
            interval: Duration::from_millis(interval_ms),
            phase: Duration::from_millis(phase_ms),
            window: rx,
        };
        (tx, Outbox::new(config))
    }

    #[test]
    fn tags_round_trip_and_nothing_else_parses_as_one() {
        let t = tag(3, 41, 1_732_390_000_123_456);
        assert_eq!(t, "chat 3 41 1732390000123456");
        assert_eq!(
            parse_tag(&t),
            Some(Tag {
                sender: 3,
                seq: 41,
                due_us: 1_732_390_000_123_456
            })
        );
        for other in [
            "",
            "chat",
            "chat 3 41",
            "chat 3 41 5 extra",
            "chatty 3 41 5",
            "chat -1 41 5",
            "xxxxxxxx",
        ] {
            assert_eq!(parse_tag(other), None, "{other:?}");
        }
    }

    #[test]
    fn the_schedule_is_fixed_by_the_window_and_phase_and_ends_with_it() {
        let (_tx, o) = outbox(500, 100);
        let w = (1_000_000, 3_000_000);
        let due: Vec<Option<u64>> = (0..5).map(|k| o.due_us(w, k)).collect();
        assert_eq!(
            due,
            [
                Some(1_100_000),
                Some(1_600_000),
                Some(2_100_000),
                Some(2_600_000),
                None
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn overdue_messages_come_at_once_in_order_with_their_due_times() {
        let (tx, mut o) = outbox(100, 0);
        // Nothing is due before the window is set.
        assert!(
            tokio::time::timeout(Duration::from_secs(5), o.next())
                .await
                .is_err()
        );
        // A window that opened 250 ms ago: messages 0, 1, 2 are overdue.
        let now = protocol::now_us();
        let start = now - 250_000;
        tx.send(Some((start, start + 1_000_000))).unwrap();
        for k in 0..3u64 {
            let (data, due) = tokio::time::timeout(Duration::from_millis(1), o.next())
                .await
                .expect("overdue: at once");
            assert_eq!(due, start + k * 100_000);
            assert_eq!(parse_tag(&data).unwrap().seq, k);
        }
        // Message 3 is due 50 ms from now (real clock; the timer is paused).
        let (data, due) = o.next().await;
        assert_eq!((parse_tag(&data).unwrap().seq, due), (3, start + 300_000));
    }
}
