//! The scenario's `[behaviour]` table (and a group's `behaviour`): what
//! clients do besides listening, as real ones do (see
//! [`clients::behaviour`]).
//!
//! ```toml
//! [behaviour]
//! ws_ping_interval = "2s"   # WebSocket clients send a Ping every 2 s
//! pause_every = "5s"        # every client stops reading for 1 s every 5 s
//! pause_for = "1s"
//! junk_interval = "3s"      # WebSocket clients send an unexpected message every 3 s
//! ```
//!
//! Every key is optional; the empty table is the polite client. A habit a
//! transport cannot have (a Ping on SSE) is ignored for that transport.
//! Verification is unchanged: every client gets every id once, in order.

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// Client habits of a scenario or group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// WebSocket: send a Ping frame this often.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub ws_ping_interval: Option<Duration>,
    /// Every transport: stop reading once every this long (with `pause_for`).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub pause_every: Option<Duration>,
    /// How long each reading pause lasts.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub pause_for: Option<Duration>,
    /// WebSocket: send an unexpected message (alternately the text `hello`
    /// and a binary message) this often.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub junk_interval: Option<Duration>,
}

/// Shortest interval a habit may have: faster is a flood, not a habit.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

impl Behaviour {
    /// Whether no habit is on (the polite client).
    pub fn is_polite(&self) -> bool {
        self.ws_ping_interval.is_none()
            && self.pause_every.is_none()
            && self.junk_interval.is_none()
    }

    /// Checks the values; `key` names the table in messages (`behaviour`,
    /// `group[1].behaviour`).
    pub fn validate(&self, key: &str, idle_timeout: Duration) -> anyhow::Result<()> {
        for (name, v) in [
            ("ws_ping_interval", self.ws_ping_interval),
            ("pause_every", self.pause_every),
            ("junk_interval", self.junk_interval),
        ] {
            if let Some(v) = v
                && v < MIN_INTERVAL
            {
                bail!("`{key}.{name}` must be at least 10ms, got {v:?}");
            }
        }
        match (self.pause_every, self.pause_for) {
            (Some(_), None) => {
                bail!("`{key}.pause_every` needs `{key}.pause_for` (how long each pause lasts)")
            }
            (None, Some(_)) => {
                bail!("`{key}.pause_for` needs `{key}.pause_every` (how often to pause)")
            }
            (Some(every), Some(pause)) => {
                if pause.is_zero() || pause >= every {
                    bail!(
                        "`{key}.pause_for` must be more than 0 and less than `{key}.pause_every` \
                         ({every:?}), got {pause:?}"
                    );
                }
                if pause >= idle_timeout {
                    bail!(
                        "`{key}.pause_for` ({pause:?}) must be less than `idle_timeout` \
                         ({idle_timeout:?}), or every pause would count as a dead connection"
                    );
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// The client's habits for client `i` of `n`: schedules offset by
    /// `i / n` of an interval, so the fleet does not act in lockstep.
    pub fn for_client(&self, i: usize, n: usize) -> clients::Behaviour {
        clients::Behaviour {
            ws_ping_interval: self.ws_ping_interval,
            pause_every: self.pause_every,
            pause_for: self.pause_for.unwrap_or_default(),
            junk_interval: self.junk_interval,
            phase: i as f64 / n.max(1) as f64,
        }
    }

    /// Parses the command line's `--behaviour` value: `polite` (no habit),
    /// or a comma-separated list of `ping=DUR`, `pause=FOR/EVERY`,
    /// `junk=DUR`, e.g. `ping=2s,pause=3s/10s,junk=5s`.
    pub fn parse_spec(spec: &str) -> anyhow::Result<Self> {
        let mut b = Behaviour::default();
        if spec.trim() == "polite" {
            return Ok(b);
        }
        let dur = |key: &str, v: &str| {
            humantime::parse_duration(v.trim()).map_err(|e| {
                anyhow::anyhow!("--behaviour {key}={v:?}: {e} (write durations like 2s, 500ms)")
            })
        };
        for item in spec.split(',').filter(|i| !i.trim().is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                bail!(
                    "--behaviour {item:?}: expected KEY=VALUE (ping=2s, pause=3s/10s, junk=5s) or `polite`"
                );
            };
            match key.trim() {
                "ping" => b.ws_ping_interval = Some(dur("ping", value)?),
                "junk" => b.junk_interval = Some(dur("junk", value)?),
                "pause" => {
                    let Some((pause, every)) = value.split_once('/') else {
                        bail!("--behaviour pause={value:?}: expected FOR/EVERY, e.g. pause=3s/10s");
                    };
                    b.pause_for = Some(dur("pause", pause)?);
                    b.pause_every = Some(dur("pause", every)?);
                }
                other => bail!(
                    "--behaviour: unknown habit {other:?} (known: ping, pause, junk; or `polite`)"
                ),
            }
        }
        Ok(b)
    }

    /// One line for reports: `ping 2s, pause 1s every 5s, junk every 3s`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let d = |d: Duration| crate::scenario::check::fmt_duration(d);
        if let Some(v) = self.ws_ping_interval {
            parts.push(format!("WebSocket ping every {}", d(v)));
        }
        if let (Some(every), Some(pause)) = (self.pause_every, self.pause_for) {
            parts.push(format!("reading paused {} every {}", d(pause), d(every)));
        }
        if let Some(v) = self.junk_interval {
            parts.push(format!("unexpected message every {}", d(v)));
        }
        if parts.is_empty() {
            "polite (listens only)".to_string()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Behaviour {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn habits_parse_validate_and_spread_over_the_fleet() {
        let b = parse("ws_ping_interval = \"2s\"\npause_every = \"5s\"\npause_for = \"1s\"");
        b.validate("behaviour", Duration::from_secs(60)).unwrap();
        assert!(!b.is_polite() && Behaviour::default().is_polite());
        let c = b.for_client(1, 4);
        assert_eq!(c.ws_ping_interval, Some(Duration::from_secs(2)));
        assert_eq!(c.pause_for, Duration::from_secs(1));
        assert!((c.phase - 0.25).abs() < 1e-12);
        assert_eq!(
            b.describe(),
            "WebSocket ping every 2s, reading paused 1s every 5s"
        );
        assert_eq!(Behaviour::default().describe(), "polite (listens only)");
    }

    #[test]
    fn the_command_line_spec_reads_every_habit_or_none() {
        let b = Behaviour::parse_spec("ping=2s,pause=3s/10s,junk=5s").unwrap();
        assert_eq!(b.ws_ping_interval, Some(Duration::from_secs(2)));
        assert_eq!(
            (b.pause_for, b.pause_every),
            (Some(Duration::from_secs(3)), Some(Duration::from_secs(10)))
        );
        assert_eq!(b.junk_interval, Some(Duration::from_secs(5)));
        assert!(Behaviour::parse_spec("polite").unwrap().is_polite());
        for (bad, says) in [
            ("ping", "expected KEY=VALUE"),
            ("pause=3s", "expected FOR/EVERY"),
            ("ping=fast", "--behaviour ping=\"fast\""),
            ("sleep=1s", "unknown habit \"sleep\""),
        ] {
            let e = Behaviour::parse_spec(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_habits_are_refused_with_the_key_named() {
        let idle = Duration::from_secs(10);
        for (text, says) in [
            (
                "pause_every = \"5s\"",
                "`behaviour.pause_every` needs `behaviour.pause_for`",
            ),
            ("pause_for = \"1s\"", "`behaviour.pause_for` needs"),
            (
                "pause_every = \"1s\"\npause_for = \"2s\"",
                "less than `behaviour.pause_every`",
            ),
            (
                "pause_every = \"60s\"\npause_for = \"20s\"",
                "less than `idle_timeout`",
            ),
            (
                "ws_ping_interval = \"1ms\"",
                "`behaviour.ws_ping_interval` must be at least 10ms",
            ),
        ] {
            let err = parse(text)
                .validate("behaviour", idle)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
        assert!(
            toml::from_str::<Behaviour>("ping = \"1s\"").is_err(),
            "unknown keys are refused"
        );
    }
}
