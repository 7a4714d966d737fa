//! `pushbench relay`: the relay as a process of its own, started by the
//! runner between the fleet and the server (hidden from `--help`: users
//! ask for a link with `--link`, not for a relay).
//!
//! It listens on a free loopback port per upstream, prints the same ready
//! line as push-server (`{"listening":ADDR,"tcp":ADDR}`) so the runner
//! starts and stops it like a server, and relays until SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::link::profile::Link;
use crate::link::relay::{RelayCounters, serve};

/// Flags of `pushbench relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The link: a profile and overrides (`4g`, `4g,loss=2%`).
    #[arg(long)]
    pub link: Link,
    /// The server's HTTP address.
    #[arg(long)]
    pub upstream: SocketAddr,
    /// The server's raw-TCP address, if it serves one.
    #[arg(long)]
    pub tcp_upstream: Option<SocketAddr>,
}

/// Runs the relay until SIGTERM or SIGINT.
pub fn run(args: &RelayArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the relay's runtime")?;
    rt.block_on(async {
        let counters = Arc::new(RelayCounters::default());
        let stop = CancellationToken::new();
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let mut ready = serde_json::json!({ "listening": http.local_addr()?.to_string() });
        tokio::spawn(serve(
            http,
            args.upstream,
            args.link,
            counters.clone(),
            stop.clone(),
        ));
        if let Some(up) = args.tcp_upstream {
            let tcp = TcpListener::bind("127.0.0.1:0").await?;
            ready["tcp"] = tcp.local_addr()?.to_string().into();
            tokio::spawn(serve(tcp, up, args.link, counters.clone(), stop.clone()));
        }
        println!("{ready}");
        eprintln!("relay: {} to {}", args.link, args.upstream);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        stop.cancel();
        eprintln!(
            "relay: {} connections, {} bytes, {} segments lost",
            counters.connections.load(Ordering::Relaxed),
            counters.bytes.load(Ordering::Relaxed),
            counters.lost_segments.load(Ordering::Relaxed)
        );
        anyhow::Ok(())
    })
}
