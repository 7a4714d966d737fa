//! Direct fan-out against tasks fan-out, and streams whose client stalls.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protocol::Event;
use servers::{HubConfig, ServerConfig, StatsSnapshot};
use tokio::time::timeout;

use crate::helpers::*;

/// Fan-out smoke check against the real binary (run on demand:
/// `cargo test --release -p servers --test transports -- --ignored --nocapture`).
/// Opens `PUSHBENCH_FANOUT_CLIENTS` (default 500) SSE, as many WebSocket and
/// as many raw-TCP clients on one topic at 100 events/s for 3 s, checks that every client
/// got a contiguous run, and prints latency percentiles (receive time −
/// scheduled emission time). Clients share this process, so the figures are
/// an upper bound of the server's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "load check, run on demand"]
async fn fanout_smoke() {
    let clients: usize = std::env::var("PUSHBENCH_FANOUT_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let (mut child, ready) = spawn_binary_ready(
        &[],
        &[
            "--rate",
            "100",
            "--topics",
            "1",
            "--tcp-listen",
            "127.0.0.1:0",
        ],
    )
    .await;
    let base = format!("http://{}", ready["listening"].as_str().unwrap());
    let tcp: SocketAddr = ready["tcp"].as_str().unwrap().parse().unwrap();
    let ws_base = base.replace("http://", "ws://");
    let run = Duration::from_secs(3);
    let mut tasks = Vec::new();
    for i in 0..clients * 3 {
        let (base, ws_base) = (base.clone(), ws_base.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut ids = Vec::new();
            let end = Instant::now() + run;
            if i % 3 == 0 {
                let mut sse = SseClient::open(format!("{base}/sse"), None).await;
                while Instant::now() < end {
                    let e = sse.event().await.unwrap();
                    let ev = Event::from_json(&e.data).unwrap();
                    lat.push(protocol::now_us().saturating_sub(ev.emitted_at_us));
                    ids.push(ev.id);
                }
            } else if i % 3 == 1 {
                let mut ws = ws_connect(format!("{ws_base}/ws")).await;
                while Instant::now() < end {
                    let ev = ws_event(&mut ws).await.unwrap();
                    lat.push(protocol::now_us().saturating_sub(ev.emitted_at_us));
                    ids.push(ev.id);
                }
            } else {
                let mut client = TcpClient::open(tcp, "SUB t0 -\n").await;
                while Instant::now() < end {
                    let ev = client.event().await.unwrap();
                    lat.push(protocol::now_us().saturating_sub(ev.emitted_at_us));
                    ids.push(ev.id);
                }
            }
            assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "gap or reorder");
            (i % 3, lat)
        }));
    }
    let mut by_transport = [Vec::new(), Vec::new(), Vec::new()];
    for t in tasks {
        let (kind, lat) = t.await.unwrap();
        by_transport[kind].extend(lat);
    }
    for (name, lat) in ["sse", "ws", "tcp"].iter().zip(&mut by_transport) {
        lat.sort_unstable();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
        eprintln!(
            "{name}: {clients} clients, {} deliveries, latency µs p50 {} p90 {} p99 {} max {}",
            lat.len(),
            p(0.5),
            p(0.9),
            p(0.99),
            p(1.0)
        );
    }
    let stats: StatsSnapshot = serde_json::from_slice(
        &http()
            .get(format!("{base}/stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    eprintln!(
        "generator lag µs mean {:.0} max {}; bytes_out {}",
        stats.generator_lag_us_mean, stats.generator_lag_us_max, stats.bytes_out
    );
    sigterm(&child);
    timeout(WAIT, child.wait()).await.unwrap().unwrap();
}

/// Opens an SSE, a WebSocket and a raw-TCP subscription to `t0` from the
/// live edge and reads `n` events from each, checked against the schedule.
async fn one_of_each_reads(s: &Server, n: usize) {
    let mut sse = SseClient::open(s.url("/sse?topic=t0"), None).await;
    let mut ws = ws_connect(s.ws_url("/ws?topic=t0")).await;
    let mut tcp = TcpClient::open(s.tcp(), "SUB t0 -\n").await;
    let (a, b, c) = tokio::join!(sse.events(n), ws_events(&mut ws, n), tcp.events(n));
    for events in [a, b, c] {
        s.check_run(0, events[0].id, &events);
    }
}

#[tokio::test]
async fn direct_fanout_carries_the_streams_and_tasks_fanout_does_not_use_it() {
    for fanout in [servers::Fanout::Direct, servers::Fanout::Tasks] {
        let s = Server::start(ServerConfig {
            fanout,
            ..config(50.0)
        })
        .await;
        one_of_each_reads(&s, 30).await;
        let stats = s.stats().await;
        assert_eq!(stats.config.fanout, fanout);
        match fanout {
            // Clients that keep up are written to by the generator itself:
            // most of the 90 deliveries (the first of each stream and any
            // that raced a park go through the task); a third is a bound
            // a loaded machine still meets.
            servers::Fanout::Direct => assert!(
                stats.direct_writes >= 30,
                "direct writes {} of 90 deliveries",
                stats.direct_writes
            ),
            servers::Fanout::Tasks => {
                assert_eq!((stats.direct_writes, stats.direct_handoffs), (0, 0));
            }
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn direct_streams_whose_client_stalls_stay_well_formed_and_complete() {
    // 200 events/s of 32 KiB: a client that stops reading until it owes
    // 200 events owes ~6.5 MB, more than the socket buffers hold, so direct writes meet
    // full buffers and partial writes, and hand the sockets back to their
    // tasks; every stream must still parse and deliver every id in order.
    const BIG: usize = 32 * 1024;
    let s = Server::start(ServerConfig {
        hub: HubConfig {
            payload_bytes: BIG,
            history: 8192,
            ..config(200.0).hub
        },
        ..ServerConfig::default()
    })
    .await;
    let mut sse = SseClient::open(s.url("/sse?topic=t0"), None).await;
    let mut ws = ws_connect(s.ws_url("/ws?topic=t0")).await;
    let mut tcp = TcpClient::open(s.tcp(), "SUB t0 -\n").await;
    let first = tokio::join!(sse.events(1), ws_events(&mut ws, 1), tcp.events(1));
    // Stop reading until ~6.5 MB (200 events) are owed: more than the
    // socket buffers of a reader that does not read (its receive buffer
    // stays at its initial 128 KiB, the send buffer grows to at most 4 MiB). Bounded, and paced by
    // the generator, not by the clock (a loaded machine generates slower).
    let deadline = Instant::now() + Duration::from_secs(30);
    let behind = loop {
        let latest = s.poll("topic=t0").await.next;
        let behind = latest.saturating_sub(first.0[0].id);
        if behind >= 200 {
            break behind;
        }
        assert!(
            Instant::now() < deadline,
            "only {behind} events owed after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let n = behind as usize + 20;
    let (a, b, c) = tokio::join!(sse.events(n), ws_events(&mut ws, n), tcp.events(n));
    for (start, events) in [(&first.0, a), (&first.1, b), (&first.2, c)] {
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.id, start[0].id + 1 + i as u64, "ids not contiguous");
            assert_eq!(e.data.len(), BIG);
        }
    }
    let stats = s.stats().await;
    assert!(
        stats.direct_handoffs > 0,
        "no socket was ever full: {stats:?}"
    );
    assert!(stats.direct_writes > 0);
    assert_eq!(stats.closed_slow, 0);
    // Gone before the shutdown: a client that stopped reading would hold
    // the server's closing writes behind full buffers.
    drop((sse, ws, tcp));
    // 32 KiB events are slow to encode in a debug build on a loaded
    // machine: the generator may be far behind when the stop comes.
    s.inner.stop(Duration::from_secs(20)).await;
}
