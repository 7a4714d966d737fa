//! The closed set of transports under comparison.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A way for a server to push events to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// `GET /poll` on a fixed schedule; the answer is immediate, possibly empty.
    ShortPoll,
    /// `GET /longpoll`; the server holds the request until an event exists or a timeout passes.
    LongPoll,
    /// Server-Sent Events: `GET /sse`, one `text/event-stream` frame per event.
    Sse,
    /// WebSocket: `GET /ws`, one text message per event.
    Ws,
    /// Raw TCP on a second port: length-prefixed frames of the same event
    /// JSON. Not a push transport anyone would choose: the physical floor
    /// every other transport is compared to.
    Tcp,
}

impl TransportKind {
    /// The four push transports under comparison, in report order.
    pub const COMPARED: [TransportKind; 4] = [
        TransportKind::ShortPoll,
        TransportKind::LongPoll,
        TransportKind::Sse,
        TransportKind::Ws,
    ];

    /// Every transport, in report order: the compared ones, then the floor.
    pub const ALL: [TransportKind; 5] = [
        TransportKind::ShortPoll,
        TransportKind::LongPoll,
        TransportKind::Sse,
        TransportKind::Ws,
        TransportKind::Tcp,
    ];

    /// The name used on the command line, in scenario files and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::ShortPoll => "short-poll",
            TransportKind::LongPoll => "long-poll",
            TransportKind::Sse => "sse",
            TransportKind::Ws => "ws",
            TransportKind::Tcp => "tcp",
        }
    }

    /// A human label for reports.
    pub fn label(self) -> &'static str {
        match self {
            TransportKind::ShortPoll => "short polling",
            TransportKind::LongPoll => "long polling",
            TransportKind::Sse => "SSE",
            TransportKind::Ws => "WebSocket",
            TransportKind::Tcp => "raw TCP (floor)",
        }
    }

    /// Whether the client pulls with repeated requests (and so counts requests).
    pub fn is_polling(self) -> bool {
        matches!(self, TransportKind::ShortPoll | TransportKind::LongPoll)
    }

    /// Whether this is the raw-TCP floor that the compared transports are
    /// measured against (reports show it as a reference, not a contender).
    pub fn is_floor(self) -> bool {
        self == TransportKind::Tcp
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown transport name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTransport(pub String);

impl fmt::Display for UnknownTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown transport `{}` (expected one of: short-poll, long-poll, sse, ws, tcp)",
            self.0
        )
    }
}

impl std::error::Error for UnknownTransport {}

impl FromStr for TransportKind {
    type Err = UnknownTransport;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransportKind::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTransport(s.to_string()))
    }
}

/// How push-server's hub gets events to its streaming connections
/// (SSE, WebSocket, raw TCP): push-server's `--fanout`, pushbench's `fanout` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fanout {
    /// The appender writes each event to every caught-up socket itself; a
    /// connection's task only runs to catch up, keep alive or end.
    #[default]
    Direct,
    /// Every event wakes every subscriber's task, which writes what it owes.
    Tasks,
}

impl Fanout {
    /// The name used by `--fanout` and `/stats`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fanout::Direct => "direct",
            Fanout::Tasks => "tasks",
        }
    }
}

impl std::str::FromStr for Fanout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(Fanout::Direct),
            "tasks" => Ok(Fanout::Tasks),
            other => Err(format!("expected `direct` or `tasks`, got {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for t in TransportKind::ALL {
            assert_eq!(t.as_str().parse::<TransportKind>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert!("polling".parse::<TransportKind>().is_err());
        assert_eq!("tcp".parse::<TransportKind>().unwrap(), TransportKind::Tcp);
    }

    #[test]
    fn the_floor_is_last_and_not_compared() {
        assert_eq!(TransportKind::ALL[..4], TransportKind::COMPARED);
        assert_eq!(TransportKind::ALL[4], TransportKind::Tcp);
        assert!(TransportKind::Tcp.is_floor());
        assert!(TransportKind::COMPARED.iter().all(|t| !t.is_floor()));
        let err = "x".parse::<TransportKind>().unwrap_err().to_string();
        assert!(
            TransportKind::ALL.iter().all(|t| err.contains(t.as_str())),
            "{err}"
        );
    }
}
