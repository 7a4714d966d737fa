//! The userspace link emulator, validated against what it is configured to
//! be: a ping-pong's round trip through it is the link's RTT within 10 %,
//! and a bulk transfer's throughput is its bandwidth within 10 %.

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::link::Link;
use harness::link::relay::{RelayCounters, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A relay for `link` in front of `upstream`; returns its address.
async fn relay(
    link: Link,
    upstream: std::net::SocketAddr,
    stop: &CancellationToken,
) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve(
        l,
        upstream,
        link,
        Arc::new(RelayCounters::default()),
        stop.clone(),
    ));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_through_the_relay_takes_the_configured_rtt() {
    // An echo server.
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                s.set_nodelay(true).unwrap();
                let mut b = [0u8; 64];
                while let Ok(n) = s.read(&mut b).await {
                    if n == 0 || s.write_all(&b[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let stop = CancellationToken::new();
    for rtt_ms in [10u64, 50, 150] {
        let link: Link = format!("loopback,rtt={rtt_ms}ms").parse().unwrap();
        let addr = relay(link, echo_addr, &stop).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        let mut rtts = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            c.write_all(b"x").await.unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            rtts.push(t.elapsed());
        }
        rtts.sort();
        let median = rtts[rtts.len() / 2].as_secs_f64() * 1000.0;
        let want = rtt_ms as f64;
        assert!(
            (median - want).abs() <= want * 0.10,
            "rtt {rtt_ms} ms: measured median {median:.2} ms ({rtts:?})"
        );
        eprintln!("rtt {rtt_ms} ms: median {median:.2} ms through the relay");
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_transfer_through_the_relay_runs_at_the_configured_bandwidth() {
    const BYTES: usize = 1_000_000;
    let src = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let src_addr = src.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = src.accept().await.unwrap();
        s.write_all(&vec![7u8; BYTES]).await.unwrap();
        s.shutdown().await.unwrap();
    });
    let stop = CancellationToken::new();
    // 8 Mbit/s down: 1 MB takes one second.
    let link: Link = "loopback,down=8mbit,up=8mbit".parse().unwrap();
    let addr = relay(link, src_addr, &stop).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut got = 0;
    let mut first = None;
    let mut b = vec![0u8; 64 * 1024];
    loop {
        let n = c.read(&mut b).await.unwrap();
        if n == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        got += n;
    }
    let secs = first.unwrap().elapsed().as_secs_f64();
    assert_eq!(got, BYTES);
    let mbit = got as f64 * 8.0 / secs / 1e6;
    assert!(
        (mbit - 8.0).abs() <= 0.8,
        "configured 8 Mbit/s, measured {mbit:.2} Mbit/s over {secs:.2} s"
    );
    stop.cancel();
}

#[test]
fn profiles_and_overrides_parse_and_bad_specs_are_refused() {
    let g: Link = "4g".parse().unwrap();
    assert_eq!(g.rtt, Duration::from_millis(50));
    assert_eq!((g.down_bps, g.up_bps), (Some(10_000_000), Some(5_000_000)));
    let l: Link = "lossy-4g".parse().unwrap();
    assert!((l.loss - 0.01).abs() < 1e-12);
    let o: Link = "3g,loss=2%,bandwidth=2mbit/1mbit".parse().unwrap();
    assert_eq!((o.down_bps, o.up_bps), (Some(2_000_000), Some(1_000_000)));
    assert!((o.loss - 0.02).abs() < 1e-12);
    assert!("loopback".parse::<Link>().unwrap().is_loopback());
    assert_eq!(l.rto(), Duration::from_millis(200));
    for bad in [
        "5g",
        "4g,rtt=fast",
        "4g,loss=80%",
        "4g,colour=red",
        "loopback,rtt=10ms,jitter=8ms",
        "4g,down=1bit",
    ] {
        let e = bad.parse::<Link>().unwrap_err().to_string();
        assert!(!e.is_empty(), "{bad}");
    }
}
