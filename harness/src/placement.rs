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

use crate::scenario::pin::join;
use crate::sys::cpu_set;
use crate::sys::set_affinity;
use anyhow::{anyhow, bail};

pub use crate::results::Placement;
pub use crate::scenario::pin::PinSpec;

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
