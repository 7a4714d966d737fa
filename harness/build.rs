//! Records the compiler version at build time, for run provenance.
//!
//! `rustc --version` at run time would name whatever toolchain happens to be on
//! the PATH, not the one that compiled the binary; asking `$RUSTC` here names
//! the right one. A compiler change rebuilds the crate, so this stays current.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PUSHBENCH_RUSTC={version}");
}
