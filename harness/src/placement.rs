//! Placement: which cores the server and the fleet run on.
//!
//! Server and fleet share one machine. Left to the scheduler, the fleet's
//! work lands on the server's core and vice versa, and a busy fleet shows up
//! as server latency. By default (`auto`) the server gets the first core the
//! harness may use and the fleet all the others; `server:0,fleet:1` names
//! them; `none` leaves both to the scheduler. On a 1-core machine nothing is
//! pinned, and the [`Placement`] note says why.
//!
//! The harness pins itself before it builds its runtime ([`pin_process`]
//! sets every thread's affinity; threads started later inherit it), and the
//! server child in `pre_exec`, before it binds or starts a thread.

use std::fmt;
use std::str::FromStr;

use crate::sys::cpu_set;
use crate::sys::set_affinity;
use anyhow::{anyhow, bail};

pub use crate::results::Placement;

/// The placement asked for (scenario key `pin`, flag `--pin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSpec {
    /// Server on the first allowed core, fleet on the rest (nothing pinned on one core).
    Auto,
    /// Nothing pinned.
    None,
    /// Named cores.
    Cores {
        /// The server's cores.
        server: Vec<usize>,
        /// The fleet's cores.
        fleet: Vec<usize>,
    },
}

impl FromStr for PinSpec {
    type Err = anyhow::Error;

    /// `auto`, `none`, or `server:CPUS,fleet:CPUS` (also `server=…`), where
    /// CPUS is a core (`0`), a range (`0-3`) or several joined by `+` (`0+2`).
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        match s {
            "auto" => return Ok(Self::Auto),
            "none" => return Ok(Self::None),
            _ => {}
        }
        let (mut server, mut fleet) = (None, None);
        for part in s.split(',') {
            let (role, cpus) = part
                .split_once([':', '='])
                .ok_or_else(|| anyhow!("{part:?} is not ROLE:CPUS"))?;
            let cpus = parse_cpus(cpus.trim())?;
            let slot = match role.trim() {
                "server" => &mut server,
                "fleet" => &mut fleet,
                other => bail!("unknown role {other:?} (expected server or fleet)"),
            };
            if slot.replace(cpus).is_some() {
                bail!("{} is named twice", role.trim());
            }
        }
        match (server, fleet) {
            (Some(server), Some(fleet)) => Ok(Self::Cores { server, fleet }),
            _ => bail!("name both roles, e.g. server:0,fleet:1"),
        }
    }
}

impl fmt::Display for PinSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::None => f.write_str("none"),
            Self::Cores { server, fleet } => {
                write!(f, "server:{},fleet:{}", join(server), join(fleet))
            }
        }
    }
}

/// Parses a core set: `0`, `0-3`, `0+2+5`.
fn parse_cpus(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for item in s.split('+') {
        let item = item.trim();
        let bad = || anyhow!("{item:?} is not a core number or range like 0-3");
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(item.parse().map_err(|_| bad())?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.iter().any(|&c| c >= libc::CPU_SETSIZE as usize) {
        bail!("core numbers must be below {}", libc::CPU_SETSIZE);
    }
    Ok(cpus)
}

/// `0+1+2` (the `+` form reads back through [`PinSpec::from_str`]).
fn join(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

/// The placement `spec` gives on a machine where this process may use
/// `allowed` cores. Errors when `spec` names a core that is not allowed.
pub fn resolve(spec: &PinSpec, allowed: &[usize]) -> anyhow::Result<Placement> {
    let text = spec.to_string();
    let unpinned = |note: String| Placement {
        spec: text.clone(),
        server_cpus: Vec::new(),
        fleet_cpus: Vec::new(),
        note,
    };
    match spec {
        PinSpec::None => Ok(unpinned("not pinned (pin = \"none\")".to_string())),
        PinSpec::Auto if allowed.len() < 2 => Ok(unpinned(format!(
            "not pinned: only {} core available, so the server and the fleet share it",
            allowed.len()
        ))),
        PinSpec::Auto => Ok(Placement {
            spec: text,
            server_cpus: allowed[..1].to_vec(),
            fleet_cpus: allowed[1..].to_vec(),
            note: "server on one core, fleet on the others".to_string(),
        }),
        PinSpec::Cores { server, fleet } => {
            if let Some(c) = server.iter().chain(fleet).find(|c| !allowed.contains(c)) {
                bail!(
                    "`pin` names core {c}, but this process may only use cores {}",
                    join(allowed)
                );
            }
            let shared: Vec<usize> = server
                .iter()
                .copied()
                .filter(|c| fleet.contains(c))
                .collect();
            let note = if shared.is_empty() {
                "pinned as asked".to_string()
            } else {
                format!(
                    "pinned as asked; server and fleet share core {}",
                    join(&shared)
                )
            };
            Ok(Placement {
                spec: text,
                server_cpus: server.clone(),
                fleet_cpus: fleet.clone(),
                note,
            })
        }
    }
}

/// Pins every thread of this process to `cpus` (affinity is per thread;
/// threads started afterwards inherit it from the thread that starts them).
pub fn pin_process(cpus: &[usize]) -> anyhow::Result<()> {
    let set = cpu_set(cpus);
    let mut tids: Vec<libc::pid_t> = std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if tids.is_empty() {
        tids.push(0);
    }
    for tid in tids {
        set_affinity(tid, &set).map_err(|e| anyhow!("cannot pin to cores {}: {e}", join(cpus)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::allowed_cpus;

    #[test]
    fn specs_parse_in_every_written_form() {
        assert_eq!("auto".parse::<PinSpec>().unwrap(), PinSpec::Auto);
        assert_eq!(" none ".parse::<PinSpec>().unwrap(), PinSpec::None);
        let two = PinSpec::Cores {
            server: vec![0],
            fleet: vec![1],
        };
        assert_eq!("server:0,fleet:1".parse::<PinSpec>().unwrap(), two);
        assert_eq!("server=0,fleet=1".parse::<PinSpec>().unwrap(), two);
        assert_eq!("fleet:1, server:0".parse::<PinSpec>().unwrap(), two);
        let wide: PinSpec = "server:0-1,fleet:2+4+3".parse().unwrap();
        assert_eq!(
            wide,
            PinSpec::Cores {
                server: vec![0, 1],
                fleet: vec![2, 3, 4]
            }
        );
        // Display reads back.
        assert_eq!(wide.to_string().parse::<PinSpec>().unwrap(), wide);
        for bad in [
            "",
            "server:0",
            "server:0,fleet:x",
            "server:0,fleet:1,server:1",
            "client:0,fleet:1",
            "server:3-1,fleet:0",
            "server:99999,fleet:0",
        ] {
            assert!(bad.parse::<PinSpec>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn auto_splits_the_allowed_cores_and_one_core_is_not_pinned() {
        let p = resolve(&PinSpec::Auto, &[0, 1]).unwrap();
        assert_eq!((p.server_cpus, p.fleet_cpus), (vec![0], vec![1]));
        let p = resolve(&PinSpec::Auto, &[2, 3, 5]).unwrap();
        assert_eq!((p.server_cpus, p.fleet_cpus), (vec![2], vec![3, 5]));
        let p = resolve(&PinSpec::Auto, &[0]).unwrap();
        assert!(p.server_cpus.is_empty() && p.fleet_cpus.is_empty());
        assert!(p.note.contains("only 1 core"), "{}", p.note);
        let p = resolve(&PinSpec::None, &[0, 1]).unwrap();
        assert!(p.server_cpus.is_empty() && p.note.contains("none"));
        assert_eq!(p.spec, "none");
    }

    #[test]
    fn named_cores_must_be_allowed() {
        let spec: PinSpec = "server:0,fleet:3".parse().unwrap();
        let e = resolve(&spec, &[0, 1]).unwrap_err().to_string();
        assert!(e.contains("core 3") && e.contains("0+1"), "{e}");
        let shared: PinSpec = "server:0,fleet:0+1".parse().unwrap();
        let p = resolve(&shared, &[0, 1]).unwrap();
        assert!(p.note.contains("share core 0"), "{}", p.note);
    }

    #[test]
    fn affinity_round_trips_on_a_thread_of_our_own() {
        let allowed = allowed_cpus();
        assert!(!allowed.is_empty());
        let first = allowed[0];
        // A thread of its own, so the test process keeps every core.
        let seen = std::thread::spawn(move || {
            set_affinity(0, &cpu_set(&[first])).unwrap();
            allowed_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![first]);
        assert_eq!(allowed_cpus(), allowed, "other threads are untouched");
    }
}
