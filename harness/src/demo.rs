//! `pushbench demo`: starts push-server with its live page (`--demo-page`)
//! laid out for it — topic groups `live` (the four transports' panels),
//! `status` (the session heartbeat, `event: status`) and `inbox`
//! (new-message notifications, `event: message`, idle until someone
//! publishes) — with an admin token for the page's drop buttons, prints the
//! URL and the token, and runs until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use crate::server_process::{self, ServerProcess};

/// Flags of `pushbench demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the page and the server listen (a loopback address unless you
    /// mean to show it to others) [default: 127.0.0.1:8080].
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Events per second on the transports' topic [default: 10].
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Interval of the session heartbeat, e.g. 2s [default: 2s].
    #[arg(long, default_value = "2s")]
    pub heartbeat: humantime::Duration,
    /// The push-server binary [default: push-server beside the pushbench executable].
    #[arg(long, value_name = "PATH", env = server_process::SERVER_BIN_ENV)]
    pub server_bin: Option<PathBuf>,
}

/// push-server's flags for the demo layout.
pub fn server_args(args: &DemoArgs, token: &str) -> anyhow::Result<Vec<String>> {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 1000.0) {
        anyhow::bail!("--rate must be above 0 and at most 1000, got {}", args.rate);
    }
    let beat: Duration = *args.heartbeat;
    if beat < Duration::from_millis(100) || beat > Duration::from_secs(3600) {
        anyhow::bail!(
            "--heartbeat must be between 100ms and 1h, got {}",
            args.heartbeat
        );
    }
    Ok(vec![
        "--listen".into(),
        args.listen.to_string(),
        "--demo-page".into(),
        "--admin-token".into(),
        token.to_string(),
        "--history".into(),
        "4096".into(),
        "--topic-group".into(),
        format!("live:1:{}", args.rate),
        "--topic-group".into(),
        format!("status:1:{}:status", 1.0 / beat.as_secs_f64()),
        "--topic-group".into(),
        "inbox:1:0:message".into(),
    ])
}

/// Runs the demo until Ctrl-C (or SIGTERM).
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let bin = server_process::find_server_bin(args.server_bin.as_deref())?;
    let token = server_process::random_token()?;
    let server_args = server_args(args, &token)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the demo's runtime")?;
    rt.block_on(async {
        let log = std::env::temp_dir().join(format!("pushbench-demo-{}.log", std::process::id()));
        let server = ServerProcess::start_program(
            server_process::SERVER_BIN_NAME,
            &bin,
            &server_args,
            &[],
            &log,
        )
        .await
        .with_context(|| format!("starting push-server for the demo on {}", args.listen))?;
        println!("pushbench demo: open {}/", server.base_url());
        println!("admin token (for the page's drop buttons): {token}");
        println!("server log: {}", log.display());
        println!("Ctrl-C stops it.");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        server.stop().await.context("stopping push-server")?;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(rate: f64, beat: &str) -> DemoArgs {
        DemoArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            rate,
            heartbeat: beat.parse().unwrap(),
            server_bin: None,
        }
    }

    #[test]
    fn the_layout_names_the_three_groups_and_their_event_types() {
        let a = server_args(&args(10.0, "2s"), "tok").unwrap().join(" ");
        assert!(a.contains("--demo-page --admin-token tok"), "{a}");
        assert!(a.contains("--topic-group live:1:10"), "{a}");
        assert!(a.contains("--topic-group status:1:0.5:status"), "{a}");
        assert!(a.contains("--topic-group inbox:1:0:message"), "{a}");
    }

    #[test]
    fn bad_rates_and_heartbeats_are_refused_by_name() {
        let e = server_args(&args(0.0, "2s"), "t").unwrap_err().to_string();
        assert!(e.contains("--rate"), "{e}");
        let e = server_args(&args(1.0, "10ms"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--heartbeat"), "{e}");
    }
}
