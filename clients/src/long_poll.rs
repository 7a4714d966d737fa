//! Long polling: `GET /longpoll` again as soon as each answer arrives; the
//! server holds a request until an event after the cursor exists or
//! `timeout_ms` passes.

use anyhow::ensure;
use tokio_util::sync::CancellationToken;

use crate::behaviour::Habits;
use crate::common::{Poller, Transport, pause_reading};
use crate::{Backoff, ClientConfig, Observer};

/// A long-polling subscriber.
#[derive(Debug)]
pub struct LongPoll {
    poller: Poller,
    /// `timeout_ms` asked of the server per request.
    hold_ms: u64,
    backoff: Backoff,
    /// Pauses: no request while one lasts ([`ClientConfig::behaviour`]).
    pub(crate) habits: Habits,
}

impl LongPoll {
    /// Builds the subscriber (no I/O yet).
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        let hold_ms = u64::try_from(config.longpoll_timeout.as_millis()).unwrap_or(u64::MAX);
        ensure!(hold_ms > 0, "longpoll_timeout must be at least 1 ms");
        // The server answers by `timeout_ms` at the latest; the margin covers
        // connecting and the answer's way back, so a request that outlives
        // both is a server that stopped answering, not a slow one.
        let request_timeout = config
            .longpoll_timeout
            .saturating_add(config.connect_timeout);
        Ok(Self {
            poller: Poller::new(config, request_timeout)?,
            hold_ms,
            backoff: Backoff::from_config(config),
            habits: Habits::new(&config.behaviour, false),
        })
    }
}

impl Transport for LongPoll {
    async fn session<O: Observer>(
        &mut self,
        observer: &mut O,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut connected = false;
        loop {
            // The first request of a session is not held (`timeout_ms=0`): it
            // connects and learns the cursor at once, so the connect time is a
            // connect time and not "connect + wait for the next event", which
            // is what makes it comparable with the other transports'.
            if let Some(pause) = self.habits.pause_due()
                && !pause_reading(pause, stop).await
            {
                return Ok(());
            }
            let hold_ms = if connected { self.hold_ms } else { 0 };
            let extra = [("timeout_ms", hold_ms)];
            // Dropping a held request on stop closes its connection at once.
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                polled = self.poller.poll("/longpoll", &extra, observer, &mut connected) => polled?,
            }
        }
    }

    fn fail_over(&mut self) {
        self.poller.target.fail_over();
    }

    fn backoff(&mut self) -> &mut Backoff {
        &mut self.backoff
    }
}
