//! Sweeps: one scenario measured at every point of a grid.
//!
//! A scenario's optional `[sweep]` table lists values for `clients`, `rate`,
//! `payload_bytes`, and the link's `rtt_ms` and `loss_pct`; the grid is
//! their cartesian product, in a fixed order: `clients` varies slowest, then
//! `rate`, `payload_bytes`, `rtt_ms` and `loss_pct`, each in the order
//! written. A key the table leaves out keeps the scenario's
//! single value. Every point runs every transport of the scenario (with its
//! `repeat`), and each `run.json` entry carries its [`SweepPoint`], so a
//! report can draw figures against clients or offered rate from `run.json`
//! alone.

use std::fmt;

use anyhow::{Context as _, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most values one sweep key may list: a grid is measured point by point,
/// and 50 values of one key is already a long night.
pub const MAX_VALUES: usize = 50;

/// Most points a grid may have.
pub const MAX_POINTS: usize = 1000;

/// The `[sweep]` table of a scenario: lists of values to measure at (`None`:
/// the key is not swept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sweep {
    /// Fleet sizes to measure at.
    pub clients: Option<Vec<usize>>,
    /// Events per second per topic to measure at.
    pub rate: Option<Vec<f64>>,
    /// Event payload sizes to measure at, bytes.
    pub payload_bytes: Option<Vec<usize>>,
    /// Round-trip times of the link to measure at, milliseconds (each
    /// overrides the scenario link's `rtt`; 0 with no other property is
    /// loopback, no relay).
    pub rtt_ms: Option<Vec<f64>>,
    /// Segment loss of the link to measure at, percent (each overrides the
    /// scenario link's `loss`).
    pub loss_pct: Option<Vec<f64>>,
}

/// One point of a sweep: the values of the swept keys (and of the keys not
/// swept, from the scenario), stored with every `run.json` entry of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SweepPoint {
    /// Position in the grid, 1-based, in the documented order.
    pub index: usize,
    /// Simulated clients at this point.
    pub clients: usize,
    /// Events per second per topic at this point.
    pub rate: f64,
    /// Event payload size at this point, bytes.
    pub payload_bytes: usize,
    /// The link's round-trip time at this point, ms, when the sweep sets it
    /// (`null`: the scenario's link; absent in files written before links).
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    /// The link's segment loss at this point, percent, when the sweep sets it.
    #[serde(default)]
    pub loss_pct: Option<f64>,
}

impl SweepPoint {
    /// Whether two points measure the same workload (the index aside), so
    /// entries of two runs can be matched.
    pub fn same_workload(&self, other: &SweepPoint) -> bool {
        self.clients == other.clients
            && self.rate.to_bits() == other.rate.to_bits()
            && self.payload_bytes == other.payload_bytes
            && self.rtt_ms.map(f64::to_bits) == other.rtt_ms.map(f64::to_bits)
            && self.loss_pct.map(f64::to_bits) == other.loss_pct.map(f64::to_bits)
    }

    /// The link spec of this point: `link` with the point's RTT and loss
    /// (those the sweep sets) as overrides.
    pub fn link_of(&self, link: &str) -> String {
        let mut spec = link.to_string();
        if let Some(rtt) = self.rtt_ms {
            spec.push_str(&format!(",rtt={rtt}ms"));
        }
        if let Some(loss) = self.loss_pct {
            spec.push_str(&format!(",loss={loss}%"));
        }
        spec
    }
}

impl fmt::Display for SweepPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clients={}, rate={}, payload_bytes={}",
            self.clients, self.rate, self.payload_bytes
        )?;
        if let Some(rtt) = self.rtt_ms {
            write!(f, ", rtt_ms={rtt}")?;
        }
        if let Some(loss) = self.loss_pct {
            write!(f, ", loss_pct={loss}")?;
        }
        Ok(())
    }
}

impl Sweep {
    /// Whether any key is swept.
    pub fn is_active(&self) -> bool {
        self.clients.is_some()
            || self.rate.is_some()
            || self.payload_bytes.is_some()
            || self.rtt_ms.is_some()
            || self.loss_pct.is_some()
    }

    /// The keys swept, as `clients=100,1000 rate=1,10`.
    pub fn describe(&self) -> String {
        fn key<T: fmt::Display>(name: &str, v: &Option<Vec<T>>) -> Option<String> {
            let v = v.as_ref()?;
            let list: Vec<String> = v.iter().map(ToString::to_string).collect();
            Some(format!("{name}={}", list.join(",")))
        }
        [
            key("clients", &self.clients),
            key("rate", &self.rate),
            key("payload_bytes", &self.payload_bytes),
            key("rtt_ms", &self.rtt_ms),
            key("loss_pct", &self.loss_pct),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// Checks the lists themselves (each point is then checked as a scenario
    /// by [`Scenario::validate`](crate::scenario::Scenario::validate)).
    pub fn validate(&self) -> anyhow::Result<()> {
        check_list("clients", self.clients.as_deref(), |a, b| a == b)?;
        check_list("rate", self.rate.as_deref(), |a, b| a == b)?;
        check_list("payload_bytes", self.payload_bytes.as_deref(), |a, b| {
            a == b
        })?;
        check_list("rtt_ms", self.rtt_ms.as_deref(), |a, b| a == b)?;
        check_list("loss_pct", self.loss_pct.as_deref(), |a, b| a == b)?;
        for (key, list, max) in [
            ("rate", &self.rate, f64::INFINITY),
            ("rtt_ms", &self.rtt_ms, 60_000.0),
            ("loss_pct", &self.loss_pct, 50.0),
        ] {
            if let Some(bad) = list
                .iter()
                .flatten()
                .find(|v| !v.is_finite() || **v < 0.0 || **v > max)
            {
                if max.is_finite() {
                    bail!("`sweep.{key}` values must be numbers from 0 to {max}, got {bad}");
                }
                bail!("`sweep.{key}` values must be numbers of 0 or more, got {bad}");
            }
        }
        let n = self.len_with(1, 1, 1);
        if n > MAX_POINTS {
            bail!("`sweep` makes {n} points; at most {MAX_POINTS} are allowed");
        }
        Ok(())
    }

    fn len_with(&self, clients: usize, rate: usize, payload: usize) -> usize {
        self.clients.as_ref().map_or(clients, Vec::len)
            * self.rate.as_ref().map_or(rate, Vec::len)
            * self.payload_bytes.as_ref().map_or(payload, Vec::len)
            * self.rtt_ms.as_ref().map_or(1, Vec::len)
            * self.loss_pct.as_ref().map_or(1, Vec::len)
    }

    /// The grid: the cartesian product of the lists, `clients` slowest, then
    /// `rate`, `payload_bytes`, `rtt_ms` and `loss_pct`; a key not swept
    /// takes the given value (the link's keys: none, the scenario's link).
    /// Not swept at all: the one point of the given values.
    pub fn points(&self, clients: usize, rate: f64, payload_bytes: usize) -> Vec<SweepPoint> {
        let cs = self.clients.clone().unwrap_or_else(|| vec![clients]);
        let rs = self.rate.clone().unwrap_or_else(|| vec![rate]);
        let ps = self
            .payload_bytes
            .clone()
            .unwrap_or_else(|| vec![payload_bytes]);
        let opt = |v: &Option<Vec<f64>>| -> Vec<Option<f64>> {
            v.as_ref()
                .map_or_else(|| vec![None], |v| v.iter().copied().map(Some).collect())
        };
        let (rtts, losses) = (opt(&self.rtt_ms), opt(&self.loss_pct));
        let mut points = Vec::with_capacity(self.len_with(1, 1, 1));
        for &clients in &cs {
            for &rate in &rs {
                for &payload_bytes in &ps {
                    for &rtt_ms in &rtts {
                        for &loss_pct in &losses {
                            points.push(SweepPoint {
                                index: points.len() + 1,
                                clients,
                                rate,
                                payload_bytes,
                                rtt_ms,
                                loss_pct,
                            });
                        }
                    }
                }
            }
        }
        points
    }

    /// Parses one `--sweep KEY=V1,V2,…` flag into this sweep (the key's list
    /// replaced).
    pub fn set_from_spec(&mut self, spec: &str) -> anyhow::Result<()> {
        let (key, list) = spec.split_once('=').with_context(|| {
            format!(
                "--sweep {spec:?}: expected KEY=V1,V2,… with KEY clients, rate, payload_bytes, \
                 rtt_ms or loss_pct"
            )
        })?;
        let values: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        fn parse<T: std::str::FromStr>(key: &str, values: &[&str]) -> anyhow::Result<Vec<T>> {
            values
                .iter()
                .map(|v| {
                    v.parse()
                        .map_err(|_| anyhow::anyhow!("--sweep {key}: {v:?} is not a valid value"))
                })
                .collect()
        }
        match key.trim().replace('-', "_").as_str() {
            "clients" => self.clients = Some(parse("clients", &values)?),
            "rate" => self.rate = Some(parse("rate", &values)?),
            "payload_bytes" => self.payload_bytes = Some(parse("payload_bytes", &values)?),
            "rtt_ms" => self.rtt_ms = Some(parse("rtt_ms", &values)?),
            "loss_pct" => self.loss_pct = Some(parse("loss_pct", &values)?),
            other => {
                bail!(
                    "--sweep {spec:?}: unknown key {other:?} (clients, rate, payload_bytes, \
                     rtt_ms or loss_pct)"
                )
            }
        }
        Ok(())
    }
}

/// A list of a sweep key must hold 1 to [`MAX_VALUES`] distinct values.
fn check_list<T: fmt::Display>(
    key: &str,
    list: Option<&[T]>,
    same: impl Fn(&T, &T) -> bool,
) -> anyhow::Result<()> {
    let Some(list) = list else { return Ok(()) };
    if list.is_empty() || list.len() > MAX_VALUES {
        bail!(
            "`sweep.{key}` must list 1 to {MAX_VALUES} values, got {}",
            list.len()
        );
    }
    for (i, v) in list.iter().enumerate() {
        if list[..i].iter().any(|w| same(v, w)) {
            bail!("`sweep.{key}` lists {v} twice");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_the_product_clients_slowest() {
        let s = Sweep {
            clients: Some(vec![10, 100]),
            rate: Some(vec![1.0, 5.0]),
            payload_bytes: Some(vec![64, 1024, 4096]),
            ..Sweep::default()
        };
        let p = s.points(1, 0.5, 7);
        assert_eq!(p.len(), 12);
        assert_eq!(
            (p[0].clients, p[0].rate, p[0].payload_bytes, p[0].index),
            (10, 1.0, 64, 1)
        );
        assert_eq!(
            (p[1].clients, p[1].rate, p[1].payload_bytes),
            (10, 1.0, 1024)
        );
        assert_eq!((p[3].clients, p[3].rate, p[3].payload_bytes), (10, 5.0, 64));
        assert_eq!(
            (p[6].clients, p[6].rate, p[6].payload_bytes),
            (100, 1.0, 64)
        );
        assert_eq!(p[11].index, 12);
        assert_eq!(
            (p[11].clients, p[11].rate, p[11].payload_bytes),
            (100, 5.0, 4096)
        );
    }

    #[test]
    fn keys_not_swept_keep_the_scenario_s_value() {
        let s = Sweep {
            rate: Some(vec![2.0, 3.0]),
            ..Sweep::default()
        };
        assert!(s.is_active());
        let p = s.points(40, 9.0, 128);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.clients == 40 && p.payload_bytes == 128));
        assert_eq!(p[1].rate, 3.0);
        let none = Sweep::default();
        assert!(!none.is_active());
        assert_eq!(none.points(40, 9.0, 128).len(), 1);
    }

    #[test]
    fn bad_lists_are_named() {
        let err = |s: Sweep| format!("{:#}", s.validate().unwrap_err());
        let e = err(Sweep {
            clients: Some(vec![]),
            ..Sweep::default()
        });
        assert!(e.contains("`sweep.clients`") && e.contains("got 0"), "{e}");
        let e = err(Sweep {
            rate: Some(vec![1.0, 2.0, 1.0]),
            ..Sweep::default()
        });
        assert!(e.contains("`sweep.rate` lists 1 twice"), "{e}");
        let e = err(Sweep {
            rate: Some(vec![-1.0]),
            ..Sweep::default()
        });
        assert!(e.contains("`sweep.rate`") && e.contains("-1"), "{e}");
        let e = err(Sweep {
            payload_bytes: Some((0..51).collect()),
            ..Sweep::default()
        });
        assert!(
            e.contains("`sweep.payload_bytes`") && e.contains("51"),
            "{e}"
        );
        let e = err(Sweep {
            clients: Some((1..=20).collect()),
            rate: Some((0..20).map(f64::from).collect()),
            payload_bytes: Some((0..3).collect()),
            ..Sweep::default()
        });
        assert!(e.contains("1200 points"), "{e}");
    }

    #[test]
    fn command_line_specs_parse_and_fail_by_name() {
        let mut s = Sweep::default();
        s.set_from_spec("clients=100,1000, 5000").unwrap();
        s.set_from_spec("rate=1,2.5").unwrap();
        s.set_from_spec("payload-bytes=64").unwrap();
        assert_eq!(s.clients, Some(vec![100, 1000, 5000]));
        assert_eq!(s.rate, Some(vec![1.0, 2.5]));
        assert_eq!(s.payload_bytes, Some(vec![64]));
        assert_eq!(
            s.describe(),
            "clients=100,1000,5000 rate=1,2.5 payload_bytes=64"
        );
        let e = s.set_from_spec("clients=10,ten").unwrap_err().to_string();
        assert!(e.contains("clients") && e.contains("\"ten\""), "{e}");
        let e = s.set_from_spec("users=1").unwrap_err().to_string();
        assert!(e.contains("unknown key \"users\""), "{e}");
        assert!(s.set_from_spec("clients").is_err());
        s.set_from_spec("rate=").unwrap();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("`sweep.rate`")
        );
    }

    #[test]
    fn points_match_by_workload_not_index() {
        let a = SweepPoint {
            index: 1,
            clients: 5,
            rate: 1.0,
            payload_bytes: 64,
            rtt_ms: None,
            loss_pct: None,
        };
        let b = SweepPoint { index: 3, ..a };
        assert!(a.same_workload(&b));
        assert!(!a.same_workload(&SweepPoint { clients: 6, ..a }));
        assert!(!a.same_workload(&SweepPoint {
            rtt_ms: Some(0.0),
            ..a
        }));
    }

    #[test]
    fn the_link_keys_vary_fastest_and_override_the_link() {
        let mut s = Sweep::default();
        s.set_from_spec("rtt_ms=0,50").unwrap();
        s.set_from_spec("loss_pct=0,1").unwrap();
        s.validate().unwrap();
        assert_eq!(s.describe(), "rtt_ms=0,50 loss_pct=0,1");
        let p = s.points(10, 1.0, 64);
        let got: Vec<_> = p.iter().map(|p| (p.rtt_ms, p.loss_pct)).collect();
        assert_eq!(
            got,
            [
                (Some(0.0), Some(0.0)),
                (Some(0.0), Some(1.0)),
                (Some(50.0), Some(0.0)),
                (Some(50.0), Some(1.0))
            ]
        );
        assert_eq!(p[3].link_of("4g"), "4g,rtt=50ms,loss=1%");
        assert_eq!(
            p[3].to_string(),
            "clients=10, rate=1, payload_bytes=64, rtt_ms=50, loss_pct=1"
        );
        let link: crate::link::Link = p[3].link_of("4g").parse().unwrap();
        assert_eq!(link.rtt, std::time::Duration::from_millis(50));
        assert!((link.loss - 0.01).abs() < 1e-12);
        let bad = Sweep {
            loss_pct: Some(vec![60.0]),
            ..Sweep::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("`sweep.loss_pct`") && e.contains("60"), "{e}");
        // Files written before the link keys still read.
        let old: SweepPoint =
            serde_json::from_str(r#"{"index":1,"clients":5,"rate":1.0,"payload_bytes":64}"#)
                .unwrap();
        assert_eq!((old.rtt_ms, old.loss_pct), (None, None));
    }
}
