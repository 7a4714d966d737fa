//! The kernel emulator: the server in a network namespace of its own,
//! joined to the fleet by a veth pair whose two ends carry the link —
//! `netem` for delay, jitter and loss, `tbf` for bandwidth — so the
//! kernel's TCP sees real delay and real loss and retransmits by itself.
//!
//! Used where the kernel has `netem` (most Linux hosts, GitHub's runners);
//! [`check`] says why not elsewhere, and the runner falls back to the relay
//! ([`crate::link::relay`]). A link of bandwidth alone needs only `tbf`,
//! which every kernel here has.
//!
//! Differences from the relay, documented in docs/links.md:
//! - bandwidth is one queue for the whole fleet, so it is set to the
//!   per-client figure times the clients (a fan-out sends every client the
//!   same bytes, so each gets its share on average, but may burst above it);
//! - jitter is netem's: packets of one connection may be reordered, as on
//!   a real path, and TCP puts them back in order;
//! - loss is per packet as the kernel sends it, ACKs included, and TCP
//!   recovers it by fast retransmit or RTO, whichever comes first.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail};

use crate::link::Link;

/// Network namespaces made by this process, for unique names.
static MADE: AtomicU32 = AtomicU32::new(0);

/// A namespace for the server, the veth pair to it and the link's qdiscs;
/// dropping it deletes the namespace (and with it the pair).
#[derive(Debug)]
pub struct Netns {
    /// The namespace's name (`pb<pid>n<k>`).
    pub name: String,
    /// The fleet's end of the pair.
    pub host_ip: Ipv4Addr,
    /// The server's end: where it listens.
    pub ns_ip: Ipv4Addr,
}

/// Whether the link needs `netem` (delay, jitter or loss), not only `tbf`.
pub fn needs_netem(link: &Link) -> bool {
    !link.rtt.is_zero() || !link.jitter.is_zero() || link.loss > 0.0
}

/// Whether the kernel emulator can carry `link` here: `Err` says why not,
/// in a line a user can act on.
pub fn check(link: &Link) -> Result<(), String> {
    if !crate::sys::is_root() {
        return Err("the kernel emulator needs root (network namespaces, veth, tc)".into());
    }
    for tool in ["ip", "tc"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Err(format!(
                "the kernel emulator needs `{tool}` (apt-get install iproute2)"
            ));
        }
    }
    probe(needs_netem(link))
}

/// Tries what the emulator needs in a throwaway namespace (the host's own
/// devices are never touched): making a namespace and a veth pair, and,
/// with `netem`, that qdisc on the namespace's loopback device.
fn probe(netem: bool) -> Result<(), String> {
    let k = next();
    let name = format!("pb{}probe{k}", std::process::id());
    run("ip", &["netns", "add", &name])
        .map_err(|e| format!("cannot make network namespaces here ({e:#})"))?;
    let (a, b) = (format!("pbpa{k}"), format!("pbpb{k}"));
    let veth = run(
        "ip",
        &[
            "-n", &name, "link", "add", &a, "type", "veth", "peer", "name", &b,
        ],
    )
    .map_err(|e| format!("cannot make veth pairs here ({e:#})"));
    let tried = veth.and_then(|()| {
        if !netem {
            return Ok(());
        }
        run(
            "ip",
            &[
                "netns", "exec", &name, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                "delay", "1ms",
            ],
        )
        .map_err(|e| format!("the kernel has no netem ({e:#})"))
    });
    let _ = run("ip", &["netns", "del", &name]);
    tried
}

fn next() -> u32 {
    MADE.fetch_add(1, Ordering::Relaxed)
}

/// Runs `tool args…`; a failure carries the command and its stderr.
fn run(tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{tool}`"))?;
    if !out.status.success() {
        bail!(
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The two addresses of pair `k` of this process: a /30 of 10.0.0.0/8
/// chosen from the pid and `k`, so concurrent runs do not collide.
fn addresses(pid: u32, k: u32) -> (Ipv4Addr, Ipv4Addr) {
    let subnet = (pid.wrapping_mul(64).wrapping_add(k)) & ((1 << 22) - 1);
    let base = (10u32 << 24) | (subnet << 2);
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// The `tc` arguments that put `link` on `dev`'s egress with `bps` (one
/// direction's bandwidth, already scaled to the fleet): netem as root with
/// tbf below it, or tbf alone.
pub fn qdisc_args(dev: &str, link: &Link, bps: Option<u64>) -> Vec<Vec<String>> {
    let s = |v: &str| v.to_string();
    let mut cmds = Vec::new();
    let tbf = |parent: &[&str]| -> Option<Vec<String>> {
        let bps = bps?;
        // A burst of 4 ms at the rate, at least two full frames.
        let burst = (bps / 8 / 250).max(3_028);
        let mut c: Vec<String> = ["qdisc", "add", "dev", dev].iter().map(|v| s(v)).collect();
        c.extend(parent.iter().map(|v| s(v)));
        c.extend([
            "tbf".to_string(),
            "rate".into(),
            format!("{bps}bit"),
            "burst".into(),
            burst.to_string(),
            "latency".into(),
            "1s".into(),
        ]);
        Some(c)
    };
    if needs_netem(link) {
        let half = link.rtt / 2;
        let mut c: Vec<String> = ["qdisc", "add", "dev", dev, "root", "handle", "1:", "netem"]
            .iter()
            .map(|v| s(v))
            .collect();
        c.extend(["limit".into(), "100000".into()]);
        c.extend(["delay".into(), format!("{}us", half.as_micros())]);
        if !link.jitter.is_zero() {
            c.push(format!("{}us", link.jitter.as_micros()));
        }
        if link.loss > 0.0 {
            c.extend(["loss".into(), format!("{}%", link.loss * 100.0)]);
        }
        cmds.push(c);
        cmds.extend(tbf(&["parent", "1:", "handle", "2:"]));
    } else {
        cmds.extend(tbf(&["root", "handle", "1:"]));
    }
    cmds
}

impl Netns {
    /// Makes the namespace, the veth pair and the link's qdiscs for a fleet
    /// of `clients` (bandwidth per client × clients, one queue for all).
    pub fn create(link: &Link, clients: usize) -> anyhow::Result<Netns> {
        let pid = std::process::id();
        let k = next();
        let name = format!("pb{pid}n{k}");
        let (host_if, ns_if) = (format!("pbh{pid}n{k}"), format!("pbs{pid}n{k}"));
        let (host_ip, ns_ip) = addresses(pid, k);
        run("ip", &["netns", "add", &name]).context("making the server's network namespace")?;
        // From here on, dropping `ns` cleans up whatever was made.
        let ns = Netns {
            name,
            host_ip,
            ns_ip,
        };
        let n = &ns.name;
        let steps: Vec<Vec<String>> = vec![
            cmd(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", n,
            ]),
            cmd(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]),
            cmd(&["link", "set", &host_if, "up"]),
            cmd(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{ns_ip}/30"),
                "dev",
                &ns_if,
            ]),
            cmd(&["-n", n, "link", "set", &ns_if, "up"]),
            cmd(&["-n", n, "link", "set", "lo", "up"]),
        ];
        for s in &steps {
            let args: Vec<&str> = s.iter().map(String::as_str).collect();
            run("ip", &args).context("joining the namespace to the fleet")?;
        }
        let scale = |bps: Option<u64>| bps.map(|b| b.saturating_mul(clients.max(1) as u64));
        // Up: the fleet's end sends toward the server; down: the server's end.
        for args in qdisc_args(&host_if, link, scale(link.up_bps)) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run("tc", &args).context("putting the link on the fleet's end")?;
        }
        for args in qdisc_args(&ns_if, link, scale(link.down_bps)) {
            let mut full = vec!["-n", n.as_str()];
            full.extend(args.iter().map(String::as_str));
            run("tc", &full).context("putting the link on the server's end")?;
        }
        Ok(ns)
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        cmd(&["netns", "exec", &self.name])
    }
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|v| (*v).to_string()).collect()
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            tracing::warn!("removing the link's network namespace: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn netem_carries_half_the_rtt_jitter_and_loss_with_tbf_below() {
        let link: Link = "4g,loss=1%".parse().unwrap();
        let c = qdisc_args("v0", &link, Some(20_000_000));
        assert_eq!(c.len(), 2);
        let netem = c[0].join(" ");
        assert!(
            netem.starts_with(
                "qdisc add dev v0 root handle 1: netem limit 100000 delay 25000us 10000us loss 1%"
            ),
            "{netem}"
        );
        let tbf = c[1].join(" ");
        assert!(
            tbf.starts_with(
                "qdisc add dev v0 parent 1: handle 2: tbf rate 20000000bit burst 10000"
            ),
            "{tbf}"
        );
    }

    #[test]
    fn bandwidth_alone_needs_only_tbf() {
        let link = Link {
            down_bps: Some(8_000_000),
            ..Link::default()
        };
        assert!(!needs_netem(&link));
        let c = qdisc_args("v0", &link, link.down_bps);
        assert_eq!(c.len(), 1);
        assert!(
            c[0].join(" ")
                .contains("root handle 1: tbf rate 8000000bit")
        );
        assert!(qdisc_args("v0", &Link::default(), None).is_empty());
        let delay = Link {
            rtt: Duration::from_millis(10),
            ..Link::default()
        };
        assert!(needs_netem(&delay));
    }

    #[test]
    fn pairs_get_distinct_subnets() {
        let (a1, a2) = addresses(4242, 0);
        let (b1, _) = addresses(4242, 1);
        let (c1, _) = addresses(4243, 0);
        assert_eq!(u32::from(a2), u32::from(a1) + 1);
        assert!(a1.octets()[0] == 10 && a1 != b1 && a1 != c1 && b1 != c1);
    }
}
