//! Links between the fleet and the server: round-trip time, jitter,
//! bandwidth and loss ([`profile`]), emulated in userspace by a relay
//! process between every client and the server ([`relay`]).
//!
//! The relay runs as its own process (`pushbench relay`, started by the
//! runner like a server): it holds two sockets per client, and one process
//! may hold at most 20,000 files, so it must not share the fleet's budget.

pub mod process;
pub mod profile;
pub mod relay;

pub use profile::{Link, PROFILES};

/// The `pushbench` binary that runs the relay: this process's own
/// executable when it is pushbench, else the one beside push-server
/// (`server_bin`), as cargo builds them.
pub fn relay_bin(server_bin: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    let me = std::env::current_exe().ok();
    if let Some(me) = me.filter(|p| p.file_stem().is_some_and(|s| s == "pushbench")) {
        return Ok(me);
    }
    let beside = server_bin
        .and_then(|s| s.parent())
        .map(|d| d.join("pushbench"))
        .filter(|p| p.is_file());
    beside.ok_or_else(|| {
        anyhow::anyhow!("a link needs the pushbench binary beside push-server to run its relay")
    })
}
