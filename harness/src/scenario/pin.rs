//! The scenario's `pin` key: where the server and the fleet run (`auto`,
//! `none`, or `server:0,fleet:1`), parsed and printed.

use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, bail};

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
pub(crate) fn join(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("+")
}
