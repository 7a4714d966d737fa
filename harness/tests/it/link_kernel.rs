//! The kernel link emulator (network namespace, veth pair, `netem` and
//! `tbf`), validated like the relay: a round trip over it is the link's RTT
//! within 10 %, a bulk transfer runs at its bandwidth within 10 %, and a run
//! through it verifies every transport.
//!
//! Each test needs what the kernel emulator needs (root, `ip`, `tc`, and
//! `netem` for delay or loss) and says so when it skips: this machine class
//! has no `netem`, so the RTT test skips here and runs where netem exists;
//! bandwidth needs only `tbf`, so the bandwidth test and the run run here.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant};

use crate::common::run_options;
use harness::link::Link;
use harness::link::kernel::{self, Netns};
use harness::results;
use harness::runner::{self};
use harness::scenario::Scenario;
use protocol::TransportKind;

/// Whether the kernel can carry `link` here; prints why not (the visible
/// reason of a skip).
fn can_run(test: &str, link: &Link) -> bool {
    match kernel::check(link) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// Runs `serve` on a thread inside `ns`'s namespace, on a listener bound to
/// the server's end of the pair; returns the listener's address.
fn serve_in(ns: &Netns, serve: impl FnOnce(TcpListener) + Send + 'static) -> SocketAddr {
    let (path, ip) = (format!("/var/run/netns/{}", ns.name), ns.ns_ip);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: setns with a valid namespace descriptor moves only this
        // thread (its own network namespace), which the test owns.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let l = TcpListener::bind((ip, 0)).unwrap();
        tx.send(l.local_addr().unwrap()).unwrap();
        serve(l);
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the server thread listens")
}

#[test]
fn a_round_trip_over_the_kernel_link_takes_the_configured_rtt() {
    for rtt_ms in [10u64, 50, 150] {
        let link: Link = format!("loopback,rtt={rtt_ms}ms").parse().unwrap();
        if !can_run("kernel RTT", &link) {
            return;
        }
        let ns = Netns::create(&link, 1).unwrap();
        let addr = serve_in(&ns, |l| {
            let (mut s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut b = [0u8; 64];
            while let Ok(n) = s.read(&mut b) {
                if n == 0 || s.write_all(&b[..n]).is_err() {
                    break;
                }
            }
        });
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        c.set_nodelay(true).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rtts = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            rtts.push(t.elapsed());
        }
        rtts.sort();
        let median = rtts[rtts.len() / 2].as_secs_f64() * 1000.0;
        let want = rtt_ms as f64;
        assert!(
            (median - want).abs() <= want * 0.10,
            "rtt {rtt_ms} ms: measured median {median:.2} ms over the kernel link ({rtts:?})"
        );
        eprintln!("rtt {rtt_ms} ms: median {median:.2} ms over the kernel link");
    }
}

#[test]
fn a_bulk_transfer_over_the_kernel_link_runs_at_the_configured_bandwidth() {
    const BYTES: usize = 1_000_000;
    // 8 Mbit/s down: 1 MB takes one second.
    let link: Link = "loopback,down=8mbit,up=8mbit".parse().unwrap();
    if !can_run("kernel bandwidth", &link) {
        return;
    }
    let ns = Netns::create(&link, 1).unwrap();
    let addr = serve_in(&ns, |l| {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&vec![7u8; BYTES]).unwrap();
    });
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut got, mut first) = (0, None);
    let mut b = vec![0u8; 64 * 1024];
    loop {
        let n = c.read(&mut b).unwrap();
        if n == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        got += n;
    }
    let secs = first.unwrap().elapsed().as_secs_f64();
    assert_eq!(got, BYTES);
    let mbit = got as f64 * 8.0 / secs / 1e6;
    eprintln!("8 Mbit/s configured: {mbit:.2} Mbit/s over the kernel link in {secs:.2} s");
    assert!(
        (mbit - 8.0).abs() <= 0.8,
        "configured 8 Mbit/s, measured {mbit:.2} Mbit/s over {secs:.2} s"
    );
    drop(ns);
}

/// A run with `--link-emulator kernel`: push-server in its namespace, every
/// transport verified, the emulator recorded and named in the report.
async fn run_over_the_kernel(name: &str, link_spec: &str) -> Option<results::RunFile> {
    let link: Link = link_spec.parse().unwrap();
    if !can_run(name, &link) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let mut scenario = Scenario::from_toml(&format!(
        r#"
        name = "{name}"
        clients = 4
        rate = 20.0
        duration = "2s"
        warmup = "500ms"
        link = "{link_spec}"
        link_emulator = "kernel"
        "#
    ))
    .unwrap();
    scenario.transports = harness::scenario::builtins(&TransportKind::ALL);
    scenario.validate().unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        runner::run(&scenario, &run_options(&out)),
    )
    .await
    .expect("the run ends in bounded time")
    .expect("the run produced results");
    assert!(outcome.passed(), "{name}: {:?}", outcome.failure());
    let run = results::io::read_run(&out).unwrap();
    for t in &run.transports {
        assert!(t.verified, "{name} {}: {:?}", t.transport, t.problems);
        assert_eq!(t.fleet.link_emulator.as_deref(), Some("kernel"));
        assert_eq!(t.fleet.relay_cpu_s, None, "no relay ran");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("emulated by the kernel"), "{md}");
    Some(run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_verifies_over_a_kernel_shaped_link() {
    // Bandwidth only: tbf, which every kernel here has.
    run_over_the_kernel("kernel-tbf", "loopback,bandwidth=20mbit/10mbit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_verifies_over_a_kernel_lossy_link_and_pays_its_delay() {
    // Delay and loss: netem (skipped where the kernel has none).
    let Some(run) = run_over_the_kernel("kernel-netem", "loopback,rtt=40ms,loss=2%").await else {
        return;
    };
    for t in &run.transports {
        let p50 = t.latency.p50 as f64 / 1000.0;
        if t.transport != TransportKind::ShortPoll {
            assert!(
                (18.0..=40.0).contains(&p50),
                "{}: p50 {p50} ms, want ≈ 20 ms (one way of a 40 ms RTT)",
                t.transport
            );
        }
    }
}

#[test]
fn the_kernel_emulator_says_why_it_cannot_run() {
    // Where it can, nothing to say; where it cannot, the reason names what is missing.
    let link: Link = "4g".parse().unwrap();
    if let Err(why) = kernel::check(&link) {
        assert!(
            why.contains("netem") || why.contains("root") || why.contains("iproute2"),
            "{why}"
        );
    }
}
