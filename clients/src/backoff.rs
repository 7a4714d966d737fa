//! The reconnect policy: exponential backoff with jitter.
//!
//! After the n-th consecutive failure (a session that ended without
//! delivering an event) the pause is `initial × 2^(n−1)`, capped at `max`,
//! then spread by the jitter: drawn uniformly from `pause × [1 − j, 1 + j)`
//! and capped at `max` again. A session that delivered an event resets the
//! count, so the next pause is `initial` again. SSE passes the server's
//! `retry:` as the initial pause, as a browser's `EventSource` would.
//!
//! Why jitter: a server that drops thousands of connections at once (a
//! restart, `/admin/drop`) would otherwise see them all come back in the
//! same millisecond, every time, and the measured reconnect time would be
//! that of a synchronised stampede rather than of the transport.

use std::time::Duration;

use crate::ClientConfig;

/// Exponential backoff with jitter (see the module documentation).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    /// Consecutive failures so far (pauses handed out since the last reset).
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A policy starting at `initial`, doubling up to `max`, with `jitter`
    /// as a fraction of each pause (clamped to 0..=1; NaN means none).
    /// Seeded from the thread's random generator: see [`with_seed`](Self::with_seed)
    /// for a reproducible sequence.
    pub fn new(initial: Duration, max: Duration, jitter: f64) -> Self {
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        Self {
            initial,
            max,
            jitter,
            failures: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The policy of `config` (`backoff_initial`, `backoff_max`, `backoff_jitter`).
    pub fn from_config(config: &ClientConfig) -> Self {
        Self::new(
            config.backoff_initial,
            config.backoff_max,
            config.backoff_jitter,
        )
    }

    /// The same policy with its jitter drawn from a generator seeded with
    /// `seed`, so the sequence of pauses is reproducible.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// The pause before the next attempt, counting one more consecutive
    /// failure. `server_initial` (SSE's `retry:`) replaces the initial pause
    /// when given, and raises the cap to it if it is larger.
    pub fn next_delay(&mut self, server_initial: Option<Duration>) -> Duration {
        let (initial, max) = match server_initial {
            Some(retry) => (retry, self.max.max(retry)),
            None => (self.initial, self.max),
        };
        // 2^31 × anything is past any sane cap: saturate rather than overflow.
        let base = initial
            .saturating_mul(1u32 << self.failures.min(31))
            .min(max);
        self.failures = self.failures.saturating_add(1);
        let factor = 1.0 + self.jitter * (2.0 * self.rng.f64() - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor)
            .unwrap_or(max)
            .min(max)
    }

    /// Forgets the failures: the next pause is the initial one again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures counted since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn without_jitter_pauses_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(100 * MS, 1000 * MS, 0.0);
        let pauses: Vec<u128> = (0..6).map(|_| b.next_delay(None).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.failures(), 6);
        b.reset();
        assert_eq!(b.next_delay(None), 100 * MS);
        // Thousands of failures neither overflow nor panic.
        for _ in 0..5000 {
            b.next_delay(None);
        }
        assert_eq!(b.next_delay(None), 1000 * MS);
    }

    #[test]
    fn jitter_stays_within_its_band_and_the_cap_and_is_seeded() {
        let mut b = Backoff::new(100 * MS, 1000 * MS, 0.5).with_seed(7);
        let mut spread = std::collections::HashSet::new();
        for round in 0..200 {
            b.reset();
            for k in 0..6u32 {
                let base = (100 * MS * 2u32.pow(k)).min(1000 * MS);
                let d = b.next_delay(None);
                assert!(
                    d >= base.mul_f64(0.5),
                    "round {round} step {k}: {d:?} < half of {base:?}"
                );
                assert!(d <= base.mul_f64(1.5).min(1000 * MS), "{d:?} over {base:?}");
                spread.insert(d.as_micros());
            }
        }
        assert!(spread.len() > 500, "jitter spreads the pauses");
        // Same seed, same pauses; another seed, others.
        let seq = |seed| {
            let mut b = Backoff::new(100 * MS, 5000 * MS, 0.5).with_seed(seed);
            (0..8).map(|_| b.next_delay(None)).collect::<Vec<_>>()
        };
        assert_eq!(seq(1), seq(1));
        assert_ne!(seq(1), seq(2));
    }

    #[test]
    fn the_servers_retry_is_the_initial_pause() {
        let mut b = Backoff::new(100 * MS, 1000 * MS, 0.0);
        assert_eq!(b.next_delay(Some(300 * MS)), 300 * MS);
        assert_eq!(b.next_delay(Some(300 * MS)), 600 * MS);
        assert_eq!(b.next_delay(Some(300 * MS)), 1000 * MS);
        // A retry above the cap is honoured, not cut.
        b.reset();
        assert_eq!(b.next_delay(Some(3000 * MS)), 3000 * MS);
        assert_eq!(b.next_delay(Some(3000 * MS)), 3000 * MS);
    }

    #[test]
    fn odd_settings_do_not_panic() {
        for jitter in [f64::NAN, -1.0, 2.0, f64::INFINITY] {
            let mut b = Backoff::new(Duration::MAX, Duration::MAX, jitter);
            for _ in 0..40 {
                b.next_delay(None);
            }
        }
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO, 0.5);
        assert_eq!(b.next_delay(None), Duration::ZERO);
        // max below initial: the cap wins.
        let mut b = Backoff::new(500 * MS, 100 * MS, 0.0);
        assert_eq!(b.next_delay(None), 100 * MS);
    }
}
