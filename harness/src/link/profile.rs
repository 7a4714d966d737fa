//! A link between the fleet and the server: round-trip time, jitter,
//! bandwidth each way and loss, by named profile or given explicitly.
//!
//! A spec is a profile name, optionally followed by overrides:
//! `4g`, `4g,loss=2%`, `loopback,rtt=80ms,jitter=5ms,down=2mbit,up=1mbit`.
//! Each client gets its own link (one phone, one radio link), so
//! bandwidth is per connection, not shared by the fleet.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// One link's properties.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Round-trip time added to loopback's (half each way).
    pub rtt: Duration,
    /// Each chunk's one-way delay varies uniformly by ± this much (bytes of
    /// one connection are never reordered: a chunk never leaves before the
    /// one ahead of it).
    pub jitter: Duration,
    /// Server → client bandwidth, bits per second (`None`: unlimited).
    pub down_bps: Option<u64>,
    /// Client → server bandwidth, bits per second (`None`: unlimited).
    pub up_bps: Option<u64>,
    /// Probability that a segment (1,448 bytes of payload) is lost, 0–1.
    pub loss: f64,
}

/// A named profile, its link and where its figures come from.
pub struct Profile {
    /// The name `--link` takes.
    pub name: &'static str,
    /// Its link.
    pub link: Link,
    /// Where the figures come from.
    pub source: &'static str,
}

const fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

const MBIT: u64 = 1_000_000;

/// The named profiles.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "loopback",
        link: Link {
            rtt: Duration::ZERO,
            jitter: Duration::ZERO,
            down_bps: None,
            up_bps: None,
            loss: 0.0,
        },
        source: "no emulation: the machine's loopback (≈ 20 µs round trip)",
    },
    Profile {
        name: "lan",
        link: Link {
            rtt: Duration::from_micros(500),
            jitter: Duration::ZERO,
            down_bps: None,
            up_bps: None,
            loss: 0.0,
        },
        source: "a switched Ethernet LAN: round trips of a few hundred µs",
    },
    Profile {
        name: "wifi",
        link: Link {
            rtt: ms(10),
            jitter: ms(3),
            down_bps: None,
            up_bps: None,
            loss: 0.0,
        },
        source: "home Wi-Fi to a nearby server: 10 ms ± 3 ms",
    },
    Profile {
        name: "4g",
        link: Link {
            rtt: ms(50),
            jitter: ms(10),
            down_bps: Some(10 * MBIT),
            up_bps: Some(5 * MBIT),
            loss: 0.0,
        },
        source: "a typical LTE link: 50 ms ± 10 ms, 10 Mbit/s down, 5 Mbit/s up",
    },
    Profile {
        name: "3g",
        link: Link {
            rtt: ms(150),
            jitter: Duration::ZERO,
            down_bps: Some(1_600_000),
            up_bps: Some(750_000),
            loss: 0.0,
        },
        source: "Lighthouse's mobile throttling preset (\"slow 4G\" / fast 3G): 150 ms, \
                 1.6 Mbit/s down, 750 kbit/s up",
    },
    Profile {
        name: "lossy-4g",
        link: Link {
            rtt: ms(50),
            jitter: ms(10),
            down_bps: Some(10 * MBIT),
            up_bps: Some(5 * MBIT),
            loss: 0.01,
        },
        source: "the 4g profile with 1 % of segments lost",
    },
];

impl Default for Link {
    /// Loopback: no emulation.
    fn default() -> Self {
        PROFILES[0].link
    }
}

impl Link {
    /// No emulation at all.
    pub fn is_loopback(&self) -> bool {
        self.rtt.is_zero()
            && self.jitter.is_zero()
            && self.down_bps.is_none()
            && self.up_bps.is_none()
            && self.loss == 0.0
    }

    /// The named profile's link.
    pub fn profile(name: &str) -> anyhow::Result<Link> {
        match PROFILES.iter().find(|p| p.name == name) {
            Some(p) => Ok(p.link),
            None => bail!(
                "unknown link profile `{name}`; one of {}",
                PROFILES
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The retransmission timeout a lost segment costs: Linux's RTO,
    /// `srtt + 4 · rttvar`, at least 200 ms (`TCP_RTO_MIN`).
    pub fn rto(&self) -> Duration {
        (self.rtt + 4 * self.jitter).max(Duration::from_millis(200))
    }
}

/// Parses a bandwidth: `10mbit`, `750kbit`, `1gbit`, `500000` (bit/s).
fn parse_bandwidth(s: &str) -> anyhow::Result<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("gbit") {
        (n, 1_000_000_000.0)
    } else if let Some(n) = s.strip_suffix("mbit") {
        (n, 1_000_000.0)
    } else if let Some(n) = s.strip_suffix("kbit") {
        (n, 1_000.0)
    } else if let Some(n) = s.strip_suffix("bit") {
        (n, 1.0)
    } else {
        (s.as_str(), 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bandwidth `{s}`: expected e.g. 10mbit, 750kbit"))?;
    let bps = v * mult;
    if !(bps.is_finite() && bps >= 8_000.0) {
        bail!("bandwidth `{s}` must be at least 8kbit");
    }
    Ok(bps as u64)
}

fn parse_loss(s: &str) -> anyhow::Result<f64> {
    let s = s.trim();
    let v: f64 = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    }
    .with_context(|| format!("loss `{s}`: expected e.g. 1% or 0.01"))?;
    if !(0.0..=0.5).contains(&v) {
        bail!("loss `{s}` must be between 0 and 50 %");
    }
    Ok(v)
}

fn parse_duration(key: &str, s: &str) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(s.trim())
        .with_context(|| format!("`{key}={s}`: expected a duration such as 50ms"))?;
    if d > Duration::from_secs(10) {
        bail!("`{key}={s}` must be at most 10s");
    }
    Ok(d)
}

impl FromStr for Link {
    type Err = anyhow::Error;

    /// `PROFILE[,key=value…]` with keys `rtt`, `jitter`, `down`, `up`,
    /// `bandwidth` (`DOWN/UP` or one value for both) and `loss`.
    fn from_str(spec: &str) -> anyhow::Result<Link> {
        let mut parts = spec.split(',').map(str::trim);
        let first = parts.next().unwrap_or("");
        let mut link = if first.contains('=') {
            // Overrides only: they apply to loopback.
            let mut l = Link::profile("loopback")?;
            l.apply(first)?;
            l
        } else {
            Link::profile(first)?
        };
        for kv in parts {
            link.apply(kv)?;
        }
        if link.jitter > link.rtt / 2 && !link.jitter.is_zero() {
            bail!(
                "jitter {:?} must be at most half the rtt {:?} (a one-way delay cannot go below zero)",
                link.jitter,
                link.rtt
            );
        }
        Ok(link)
    }
}

impl Link {
    fn apply(&mut self, kv: &str) -> anyhow::Result<()> {
        let Some((k, v)) = kv.split_once('=') else {
            bail!(
                "link override `{kv}`: expected key=value (rtt, jitter, down, up, bandwidth, loss)"
            );
        };
        match k.trim() {
            "rtt" => self.rtt = parse_duration("rtt", v)?,
            "jitter" => self.jitter = parse_duration("jitter", v)?,
            "down" => self.down_bps = Some(parse_bandwidth(v)?),
            "up" => self.up_bps = Some(parse_bandwidth(v)?),
            "bandwidth" => {
                let (d, u) = v.split_once('/').unwrap_or((v, v));
                self.down_bps = Some(parse_bandwidth(d)?);
                self.up_bps = Some(parse_bandwidth(u)?);
            }
            "loss" => self.loss = parse_loss(v)?,
            other => {
                bail!("unknown link key `{other}`: one of rtt, jitter, down, up, bandwidth, loss")
            }
        }
        Ok(())
    }
}

impl fmt::Display for Link {
    /// Every property, as a reader wants it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bw = |b: Option<u64>| match b {
            None => "unlimited".to_string(),
            Some(b) if b >= 1_000_000 => format!("{}mbit", b as f64 / 1e6),
            Some(b) => format!("{}kbit", b as f64 / 1e3),
        };
        write!(
            f,
            "rtt {:?}, jitter {:?}, down {}, up {}, loss {}%",
            self.rtt,
            self.jitter,
            bw(self.down_bps),
            bw(self.up_bps),
            self.loss * 100.0
        )
    }
}
