//! The broker between push-servers of a scaled-out run (scenario key
//! `broker`; see [`crate::scenario::scale`]).

use serde::{Deserialize, Serialize};

/// The broker between push-servers (scenario key `broker`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Broker {
    /// No broker: one push-server generates its own events.
    #[default]
    None,
    /// Redis Streams (`push-server --broker redis://…`): one server
    /// publishes each event once, every server reads them, and history
    /// for resuming comes from the streams.
    Redis,
    /// Redis, with servers learning of events by pub/sub on one channel
    /// (`--broker-fanout pubsub`); history still from the streams.
    RedisPubsub,
}

impl Broker {
    /// The name a scenario file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Broker::None => "none",
            Broker::Redis => "redis",
            Broker::RedisPubsub => "redis-pubsub",
        }
    }
}
