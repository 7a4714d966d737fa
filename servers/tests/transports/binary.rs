//! The push-server binary itself: its ready line, SIGTERM, its buffers, and
//! running out of file descriptors.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use servers::StatsSnapshot;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::*;

#[tokio::test]
async fn the_binary_prints_its_address_and_exits_cleanly_on_sigterm() {
    let (mut child, ready) = spawn_binary_ready(&[], &["--rate", "50", "--keepalive", "1s"]).await;
    let keys: Vec<&String> = ready.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["listening"], "no tcp key without --tcp-listen");
    let base = format!("http://{}", ready["listening"].as_str().unwrap());
    let resp = http().get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    // An open stream must not hold up the exit.
    let mut sse = SseClient::open(format!("{base}/sse"), None).await;
    sse.events(1).await;
    let started = Instant::now();
    sigterm(&child);
    let status = timeout(WAIT, child.wait())
        .await
        .expect("exits within 3 s")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < WAIT);
}

#[tokio::test]
async fn the_binary_serves_raw_tcp_and_states_its_buffers() {
    let (mut child, ready) = spawn_binary_ready(
        &[],
        &[
            "--rate",
            "50",
            "--tcp-listen",
            "127.0.0.1:0",
            "--ws-read-buffer",
            "2048",
            "--ws-write-buffer",
            "1024",
            "--ws-max-write-buffer",
            "65536",
            "--ws-max-message",
            "512",
            "--http-max-buf",
            "16384",
        ],
    )
    .await;
    let base = format!("http://{}", ready["listening"].as_str().unwrap());
    let tcp: SocketAddr = ready["tcp"].as_str().unwrap().parse().unwrap();
    let resp = http().get(format!("{base}/stats")).send().await.unwrap();
    let stats: StatsSnapshot = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let b = &stats.config.buffers;
    assert_eq!(
        (
            b.ws_read,
            b.ws_write,
            b.ws_max_write,
            b.ws_max_message,
            b.http_max_buf
        ),
        (2048, 1024, 65536, 512, 16384)
    );
    // The WebSocket limits are in force: a message over 512 bytes closes with 1009.
    let mut ws = ws_connect(format!("{}/ws", base.replace("http", "ws"))).await;
    ws.send(Message::text("x".repeat(600))).await.unwrap();
    let close = loop {
        match ws_event(&mut ws).await {
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert_eq!(close, Some(CloseCode::Size));
    // An open raw-TCP stream must not hold up the exit either.
    let mut client = TcpClient::open(tcp, "SUB t0 -\n").await;
    client.events(2).await;
    sigterm(&child);
    while client.event().await.is_some() {}
    let status = timeout(WAIT, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_binary_refuses_buffers_that_cannot_work_with_a_one_line_reason() {
    let bin = env!("CARGO_BIN_EXE_push-server");
    for (args, reason) in [
        (
            &["--http-max-buf", "4096"][..],
            "--http-max-buf must be at least 8192",
        ),
        (
            &["--ws-write-buffer", "4096", "--ws-max-write-buffer", "4096"][..],
            "--ws-max-write-buffer must be at least",
        ),
        (
            &["--ws-read-buffer", "0"][..],
            "--ws-read-buffer must be more than 0",
        ),
    ] {
        let out = timeout(
            WAIT,
            tokio::process::Command::new(bin)
                .args(["--listen", "127.0.0.1:0"])
                .args(args)
                // anyhow appends a backtrace to the reason when these ask for one.
                .env_remove("RUST_BACKTRACE")
                .env_remove("RUST_LIB_BACKTRACE")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("exits at once")
        .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: no ready line");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn running_out_of_file_descriptors_warns_counts_and_backs_off_instead_of_dying() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("prlimit not installed: skipped");
        return;
    }
    let mut child = tokio::process::Command::new("prlimit")
        .args(["--nofile=48", env!("CARGO_BIN_EXE_push-server")])
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--rate", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = timeout(WAIT, stdout.next_line())
        .await
        .expect("ready line")
        .unwrap()
        .expect("a ready line");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let addr = ready["listening"].as_str().unwrap().to_string();
    let base = format!("http://{addr}");
    // The whole log, read until the process exits (its stderr closes).
    let stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stderr), &mut text)
            .await
            .unwrap();
        text
    });
    // More connections than descriptors: the kernel queues them, accept fails with EMFILE.
    let mut hogs = Vec::new();
    for _ in 0..80 {
        hogs.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(hogs);
    let resp = timeout(
        Duration::from_secs(5),
        http().get(format!("{base}/stats")).send(),
    )
    .await
    .expect("server answers again once descriptors are free")
    .unwrap();
    let stats: StatsSnapshot = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(stats.accept_errors > 0, "{stats:?}");
    assert_eq!(stats.config.open_files_limit, Some(48), "{stats:?}");
    sigterm(&child);
    let status = timeout(WAIT, child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let log = timeout(WAIT, log).await.expect("stderr closes").unwrap();
    let near: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("open-file limit of 48 leaves"))
        .collect();
    assert!(
        near.len() == 1 && near[0].contains("WARN"),
        "one near-limit warning: {log}"
    );
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("accept failed"))
        .collect();
    assert!(
        failed.first().is_some_and(|l| l.contains("ERROR")
            && l.contains("(EMFILE)")
            && l.contains("open-file limit 48")),
        "{log}"
    );
    // Rate-limited: one line per second at most, however many accepts failed.
    assert!(
        (failed.len() as u64) < stats.accept_errors.max(2),
        "{} lines for {} errors: {log}",
        failed.len(),
        stats.accept_errors
    );
}
