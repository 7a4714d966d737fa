//! push-server against hostile and broken clients: request bodies sent one
//! byte at a time, stalled or trickling bodies, cursors from another
//! server's run, web pages calling the admin routes, and token guessing.
//! Every case gets a bounded answer and costs bounded memory and time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use protocol::sse::SseParser;
use protocol::{Event, PollResponse, Schedule};
use servers::{HubConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

mod common;

/// Bound on any single wait.
const WAIT: Duration = Duration::from_secs(5);

fn config(rate: f64) -> ServerConfig {
    ServerConfig {
        hub: HubConfig {
            schedule: Schedule {
                start_epoch_us: protocol::now_us(),
                rate,
                topics: 1,
            },
            payload_bytes: 16,
            history: 64,
            event_type: None,
            groups: Vec::new(),
            fed: false,
        },
        ..ServerConfig::default()
    }
}

/// Starts the `push-server` binary with `args` (its log on stderr); the
/// child and its HTTP address.
async fn binary(args: &[&str]) -> (tokio::process::Child, SocketAddr) {
    let mut all = vec!["--log", "warn"];
    all.extend_from_slice(args);
    let (child, ready) = common::spawn_ready(&[], &all, true).await;
    let addr = ready["listening"].as_str().unwrap().parse().unwrap();
    (child, addr)
}

/// The resident set of process `pid`, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// The head of a `POST /publish` promising `len` body bytes.
fn publish_head(len: usize) -> Vec<u8> {
    format!(
        "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// Reads an HTTP answer's status line and the rest until the server
/// closes (bounded).
async fn status_of(stream: &mut TcpStream) -> (u16, String) {
    let mut out = Vec::new();
    let _ = timeout(WAIT, stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_one_byte_at_a_time_costs_memory_in_proportion_to_its_bytes() {
    let (child, addr) = binary(&[]).await;
    let pid = child.id().unwrap();
    // Two connections, each sending a whole 16,000-byte body one byte per
    // write (with TCP_NODELAY, most become a segment of their own). This
    // once cost up to ≈4 KB of server memory per byte. (Sizes are
    // kept small because the debug server takes ≈80 µs per segment; the
    // README gives the full 64 KB figures measured on the release build.)
    const CONNS: usize = 2;
    const LEN: usize = 16_000;
    let mut body = br#"{"data":""#.to_vec();
    body.resize(LEN - 2, b'x');
    body.extend_from_slice(br#""}"#);
    // Blocking sockets on a thread of their own: one `write` per byte,
    // as fast as the kernel takes them.
    let mut conns = Vec::new();
    for _ in 0..CONNS {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        conns.push(s);
    }
    for s in &mut conns {
        std::io::Write::write_all(s, &publish_head(LEN)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss(pid);
    let (conns, peak) = tokio::task::spawn_blocking(move || {
        let mut peak = 0;
        for (i, byte) in body.iter().enumerate() {
            for s in &mut conns {
                std::io::Write::write_all(s, std::slice::from_ref(byte)).unwrap();
            }
            if i % 4096 == 0 {
                peak = peak.max(rss(pid));
            }
        }
        (conns, peak)
    })
    .await
    .unwrap();
    let mut peak = peak.max(before);
    let mut conns: Vec<TcpStream> = conns
        .into_iter()
        .map(|s| {
            s.set_nonblocking(true).unwrap();
            TcpStream::from_std(s).unwrap()
        })
        .collect();
    for s in &mut conns {
        let (status, text) = status_of(s).await;
        assert_eq!(status, 200, "{text}");
    }
    peak = peak.max(rss(pid));
    let sent = (CONNS * LEN) as u64;
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 4 * sent + (1 << 20),
        "RSS grew {growth} B for {sent} B of bodies (limit: 4× the bytes + 1 MiB)"
    );
}

#[tokio::test]
async fn stalled_and_trickling_bodies_are_answered_408_and_closed() {
    let mut cfg = config(0.0);
    cfg.body_timeout = Duration::from_millis(500);
    let s = common::InProcess::start(cfg, false).await;
    // A head promising 100 bytes, and no body at all.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(s.addr).await.unwrap();
    stalled.write_all(&publish_head(100)).await.unwrap();
    // A body of 100 bytes at one byte every 100 ms: 2 s of it, then it stops.
    let mut trickle = TcpStream::connect(s.addr).await.unwrap();
    trickle.write_all(&publish_head(100)).await.unwrap();
    let trickler = tokio::spawn(async move {
        for _ in 0..20 {
            if trickle.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        trickle
    });
    let (status, text) = status_of(&mut stalled).await;
    assert_eq!(status, 408, "{text}");
    assert!(
        text.contains("request body not received within 500 ms"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let mut trickle = timeout(Duration::from_secs(15), trickler)
        .await
        .unwrap()
        .unwrap();
    let (status, text) = status_of(&mut trickle).await;
    // The answer came at the deadline, while the body was still arriving.
    assert!(status == 408 || text.is_empty(), "{text}");
    s.stop(WAIT).await;
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_it_is_read() {
    let s = common::InProcess::start(config(0.0), false).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(&publish_head(10_000_000)).await.unwrap();
    let (status, text) = status_of(&mut stream).await;
    assert_eq!(status, 413, "{text}");
    s.stop(WAIT).await;
}

/// Polls `/poll?{query}`.
async fn poll(s: &common::InProcess, query: &str) -> PollResponse {
    let body = reqwest::get(s.url(&format!("/poll?{query}")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_far_ahead_resume_at_the_live_edge_on_every_transport() {
    let s = common::InProcess::start(config(50.0), true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for ahead in [1_000_000_000_000u64, u64::MAX] {
        // Short polling: nothing yet, and `next` is the real edge.
        let edge = poll(&s, "topic=t0").await.next;
        let p = poll(&s, &format!("topic=t0&after={ahead}")).await;
        assert!(p.events.is_empty());
        assert!(
            p.next >= edge && p.next < edge + 100,
            "{ahead}: next {}",
            p.next
        );
        // Long polling: the next event, not a timeout.
        let url = s.url(&format!("/longpoll?topic=t0&after={ahead}&timeout_ms=3000"));
        let started = Instant::now();
        let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        let lp: PollResponse = serde_json::from_slice(&body).unwrap();
        assert!(!lp.events.is_empty(), "{ahead}: long poll got nothing");
        assert!(lp.events[0].id > edge && started.elapsed() < Duration::from_secs(1));
        // SSE with Last-Event-ID, and with ?after=.
        for (path, header) in [
            ("/sse?topic=t0".to_string(), Some(ahead.to_string())),
            (format!("/sse?topic=t0&after={ahead}"), None),
        ] {
            let mut req = reqwest::Client::new().get(s.url(&path));
            if let Some(id) = &header {
                req = req.header("Last-Event-ID", id);
            }
            let mut body = req.send().await.unwrap().bytes_stream();
            let mut parser = SseParser::new();
            let event = timeout(WAIT, async {
                loop {
                    let chunk = body.next().await.unwrap().unwrap();
                    if let Some(e) = parser.feed(&chunk).into_iter().next() {
                        return Event::from_json(&e.data).unwrap();
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{ahead}: no SSE event via {path}"));
            assert!(event.id > edge, "{ahead}: {}", event.id);
        }
        // WebSocket.
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?topic=t0&after={ahead}", s.addr))
                .await
                .unwrap();
        let first = timeout(WAIT, async {
            loop {
                if let Some(Ok(Message::Text(t))) = ws.next().await {
                    return Event::from_json(&t).unwrap();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{ahead}: no WebSocket event"));
        assert!(first.id > edge);
        // Raw TCP.
        let mut tcp = TcpStream::connect(s.tcp()).await.unwrap();
        tcp.write_all(format!("SUB t0 {ahead}\n").as_bytes())
            .await
            .unwrap();
        let mut prefix = [0u8; 4];
        loop {
            timeout(WAIT, tcp.read_exact(&mut prefix))
                .await
                .unwrap_or_else(|_| panic!("{ahead}: no raw-TCP frame"))
                .unwrap();
            let len = u32::from_be_bytes(prefix) as usize;
            if len == 0 {
                continue; // keep-alive
            }
            let mut json = vec![0u8; len];
            tcp.read_exact(&mut json).await.unwrap();
            let e = Event::from_json(std::str::from_utf8(&json).unwrap()).unwrap();
            assert!(e.id > edge);
            break;
        }
    }
    // A stale cursor (older than the log holds) resumes at the oldest event kept.
    let p = poll(&s, "topic=t0&after=0").await;
    let ids: Vec<u64> = p.events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    assert_eq!(ids.last(), Some(&p.next));
    // Everything the log holds: its 64 events, or every one generated so
    // far (the generator's first id is the first due after it started).
    assert!(ids.len() == 64 || ids[0] <= 2, "{ids:?}");
    s.stop(WAIT).await;
}

#[tokio::test]
async fn admin_routes_carry_no_cors_and_token_guessing_is_limited() {
    let mut cfg = config(0.0);
    cfg.admin_token = Some("s3cret".into());
    let s = common::InProcess::start(cfg, false).await;
    let http = reqwest::Client::new();
    let origin = "https://evil.example";
    // The public routes allow any origin; the admin routes none.
    let public = http
        .get(s.url("/stats"))
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        public.headers()["access-control-allow-origin"],
        "*",
        "public routes keep CORS"
    );
    let admin = http
        .get(s.url("/admin/connections"))
        .header("Origin", origin)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    assert!(admin.headers().get("access-control-allow-origin").is_none());
    // Guessing: after MAX_FAILURES wrong tokens in a second, 429 for everyone.
    let mut statuses = Vec::new();
    for i in 0..(servers::admin::MAX_FAILURES + 3) {
        let r = http
            .get(s.url("/admin/connections"))
            .bearer_auth(format!("guess{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let max = servers::admin::MAX_FAILURES as usize;
    assert!(statuses[..max].iter().all(|&c| c == 401), "{statuses:?}");
    assert!(statuses[max..].iter().all(|&c| c == 429), "{statuses:?}");
    let locked = http
        .get(s.url("/admin/connections"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        locked.status(),
        429,
        "even the right token waits out the window"
    );
    assert_eq!(locked.headers()["retry-after"], "1");
    tokio::time::sleep(servers::admin::FAILURE_WINDOW + Duration::from_millis(100)).await;
    let after = http
        .get(s.url("/admin/connections"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    // A preflight from a page gets no CORS grant either (and, carrying no
    // token, counts as a failed attempt).
    let preflight = http
        .request(reqwest::Method::OPTIONS, s.url("/admin/drop"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(preflight.status(), 401);
    s.stop(WAIT).await;
}

#[tokio::test]
async fn failed_admin_attempts_are_logged() {
    let (mut child, addr) = binary(&["--admin-token", "s3cret"]).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http
            .post(format!("http://{addr}/admin/drop?fraction=1"))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    child.start_kill().unwrap();
    let mut stderr = String::new();
    timeout(
        WAIT,
        child.stderr.take().unwrap().read_to_string(&mut stderr),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        stderr.contains("admin: rejected request(s) without the right token")
            && stderr.contains("wrong admin token"),
        "{stderr}"
    );
}
