//! Links between the fleet and the server: round-trip time, jitter,
//! bandwidth and loss ([`profile`]), emulated by the kernel where it has
//! `netem` (the server in a network namespace behind a veth pair,
//! [`kernel`]), else in userspace by a relay process between every client
//! and the server ([`relay`]); [`Emulator`] chooses.
//!
//! The relay runs as its own process (`pushbench relay`, started by the
//! runner like a server): it holds two sockets per client, and one process
//! may hold at most 20,000 files, so it must not share the fleet's budget,
//! and a fleet above [`CLIENTS_PER_RELAY`] clients gets several relays,
//! client `i` going through relay `i % relays`.

pub mod kernel;
pub mod process;
pub mod profile;
pub mod relay;

pub use profile::{Link, PROFILES};

/// Most clients one relay process carries: each holds two of its sockets
/// (one to the client, one to the server), and a process may hold at most
/// 20,000 files here; 9,000 leaves room for listeners, the runtime and
/// sockets closing during a reconnect storm.
pub const CLIENTS_PER_RELAY: usize = 9_000;

/// Which emulator carries a link (scenario key `link_emulator`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emulator {
    /// The kernel where it can carry the link (root, `ip`, `tc`, and
    /// `netem` when the link has delay or loss), else the relay.
    #[default]
    Auto,
    /// The userspace relay, always.
    Relay,
    /// The kernel, or the run fails saying why it cannot.
    Kernel,
}

impl std::str::FromStr for Emulator {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "relay" => Ok(Self::Relay),
            "kernel" => Ok(Self::Kernel),
            other => anyhow::bail!("unknown link emulator {other:?} (auto, relay or kernel)"),
        }
    }
}

/// How many relay processes a fleet of `clients` needs (at least one).
pub fn relays_for(clients: usize) -> usize {
    clients.div_ceil(CLIENTS_PER_RELAY).max(1)
}

/// The `pushbench` binary that runs the relay: this process's own
/// executable when it is pushbench, else the one beside push-server
/// (`server_bin`), as cargo builds them.
pub fn relay_bin(server_bin: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    pushbench_bin(server_bin, "a link's relay")
}

/// The `pushbench` binary to start helpers with (`purpose`: for the
/// message when there is none): this process's own executable when it is
/// pushbench, else the one beside push-server (`server_bin`).
pub fn pushbench_bin(
    server_bin: Option<&std::path::Path>,
    purpose: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let me = std::env::current_exe().ok();
    if let Some(me) = me.filter(|p| p.file_stem().is_some_and(|s| s == "pushbench")) {
        return Ok(me);
    }
    let beside = server_bin
        .and_then(|s| s.parent())
        .map(|d| d.join("pushbench"))
        .filter(|p| p.is_file());
    beside.ok_or_else(|| anyhow::anyhow!("{purpose} need the pushbench binary beside push-server"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_are_sized_to_the_fleet() {
        assert_eq!(relays_for(0), 1);
        assert_eq!(relays_for(1), 1);
        assert_eq!(relays_for(CLIENTS_PER_RELAY), 1);
        assert_eq!(relays_for(CLIENTS_PER_RELAY + 1), 2);
        assert_eq!(relays_for(60_000), 7);
    }
}
