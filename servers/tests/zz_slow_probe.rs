//! TEMPORARY experiment (deleted before hand-off).
use std::time::Duration;
use protocol::Schedule;
use servers::{HubConfig, ServerConfig, StatsSnapshot};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

fn rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with("VmRSS")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}
fn tcp_mem() -> String {
    std::fs::read_to_string("/proc/net/sockstat").unwrap().lines().find(|l| l.starts_with("TCP")).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    let which = std::env::var("PROBE").unwrap_or("sse".into());
    let config = ServerConfig {
        hub: HubConfig {
            schedule: Schedule { start_epoch_us: protocol::now_us(), rate: 2000.0, topics: 1 },
            payload_bytes: 1024, history: 1024, event_type: None,
        },
        write_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcpl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let taddr = tcpl.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(servers::serve(servers::Listeners { http, tcp: Some(tcpl) }, config, stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = if which == "tcp" { TcpStream::connect(taddr).await.unwrap() } else { TcpStream::connect(addr).await.unwrap() };
        let req = match which.as_str() {
            "sse" => "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            "ws" => "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(),
            "longpoll" => "GET /longpoll?after=0 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50),
            "tcp" => "SUB t0 -\n".to_string(),
            _ => panic!(),
        };
        s.write_all(req.as_bytes()).await.unwrap();
        held.push(s);
    }
    let c = reqwest::Client::new();
    let rss0 = rss_kb();
    for i in 0..12 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let st = c.get(format!("http://{addr}/stats")).send().await.unwrap().bytes().await.unwrap(); let st: StatsSnapshot = serde_json::from_slice(&st).unwrap();
        println!("{which} slow={} t={:.1}s out={}KB open={:?} rss+{}KB {}", st.closed_slow, (i + 1) as f64 / 2.0, st.bytes_out / 1024, st.open, rss_kb() as i64 - rss0 as i64, tcp_mem());
    }
    stop.cancel();
}
