//! Short polling: `GET /poll` on a fixed schedule; every answer is immediate,
//! possibly empty, so latency includes up to one poll interval by design.

use std::time::Duration;

use anyhow::ensure;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::behaviour::Habits;
use crate::common::{Poller, Transport, pause_reading};
use crate::{Backoff, ClientConfig, Observer};

/// A short-polling subscriber.
#[derive(Debug)]
pub struct ShortPoll {
    poller: Poller,
    interval: Duration,
    phase: Duration,
    backoff: Backoff,
    /// Created when the subscriber starts running, then kept across
    /// reconnections so a failure never shifts this client's slot in the
    /// fleet's spread of polls.
    schedule: Option<Interval>,
    /// Pauses: no request while one lasts ([`ClientConfig::behaviour`]).
    pub(crate) habits: Habits,
}

impl ShortPoll {
    /// Builds the subscriber (no I/O yet).
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        ensure!(!config.poll_interval.is_zero(), "poll_interval must be > 0");
        Ok(Self {
            // An immediate answer is due: the connect timeout bounds the whole request.
            poller: Poller::new(config, config.connect_timeout)?,
            interval: config.poll_interval,
            phase: config.poll_phase,
            backoff: Backoff::from_config(config),
            schedule: None,
            habits: Habits::new(&config.behaviour, false),
        })
    }
}

impl Transport for ShortPoll {
    async fn session<O: Observer>(
        &mut self,
        observer: &mut O,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let (interval, phase) = (self.interval, self.phase);
        let schedule = self.schedule.get_or_insert_with(|| {
            let mut schedule = tokio::time::interval_at(Instant::now() + phase, interval);
            // Skip, not Burst: a slow answer must not be followed by a burst
            // of catch-up polls; the client keeps its slots in the schedule.
            schedule.set_missed_tick_behavior(MissedTickBehavior::Skip);
            schedule
        });
        let mut connected = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                _ = schedule.tick() => {}
            }
            if let Some(pause) = self.habits.pause_due()
                && !pause_reading(pause, stop).await
            {
                return Ok(());
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                polled = self.poller.poll("/poll", &[], observer, &mut connected) => polled?,
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
