//! Property-based fuzzing of push-server's request parsing and WebSocket
//! message handling (stable Rust, proptest), against one real in-process
//! server.
//!
//! - Any query string and any extra header on any route: an answer with a
//!   status below 500 (a one-line 4xx for mistakes), never a panic or a
//!   dropped connection, and the server goes on serving.
//! - Any sequence of WebSocket messages (text, binary, JSON or not, of any
//!   size up to the limit): each is published or answered with
//!   `{"error":…}`, the connection stays subscribed, and nothing it sends
//!   moves its cursor: the events it receives stay contiguous.
//!
//! Depth: `PROPTEST_CASES` (default 128 here; `scripts/fuzz.sh` runs far
//! more). Seeds that once mattered are in `tests/corpus/requests.txt`.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use proptest::prelude::*;
use protocol::{Event, Schedule};
use servers::{HubConfig, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// Bound on any single wait.
const WAIT: Duration = Duration::from_secs(5);

/// One server for every case, on a runtime of its own.
fn server() -> &'static (Runtime, SocketAddr) {
    static SERVER: OnceLock<(Runtime, SocketAddr)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let addr = rt.block_on(async {
            let listeners = servers::Listeners {
                http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                tcp: None,
            };
            let addr = listeners.http.local_addr().unwrap();
            let config = ServerConfig {
                hub: HubConfig {
                    schedule: Schedule {
                        start_epoch_us: protocol::now_us(),
                        rate: 100.0,
                        topics: 2,
                    },
                    payload_bytes: 8,
                    history: 4096,
                    event_type: None,
                    groups: Vec::new(),
                    fed: false,
                },
                admin_token: Some("t0k3n".into()),
                ..ServerConfig::default()
            };
            let stop = tokio_util::sync::CancellationToken::new();
            tokio::spawn(servers::serve(listeners, config, stop));
            addr
        });
        (rt, addr)
    })
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends `request` on a fresh connection; the answer's status code (0: no
/// status line came back).
async fn status_of(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 256];
    let mut got = 0;
    // A status line is enough: streams (SSE, an upgrade) never end by themselves.
    while got < 12 {
        match timeout(WAIT, s.read(&mut buf[got..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got += n,
        }
    }
    // Lossy: the read may end inside a reason's multi-byte character.
    String::from_utf8_lossy(&buf[..got])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A request for `route` with `query` and one extra header line.
fn request(route: &str, query: &str, header: &str) -> Vec<u8> {
    let mut r = format!("GET {route}?{query} HTTP/1.1\r\nHost: x\r\n").into_bytes();
    if route == "/ws" {
        r.extend_from_slice(
            b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
    }
    r.extend_from_slice(header.as_bytes());
    r.extend_from_slice(b"\r\n\r\n");
    r
}

/// Query values: numbers at the edges, text, and percent-encoded junk.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("t1".to_string()),
        Just("t99999999999".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[ -~]{0,24}".prop_map(|s| s.replace([' ', '#'], "%20")),
        proptest::collection::vec(any::<u8>(), 0..16)
            .prop_map(|b| b.iter().map(|x| format!("%{x:02X}")).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(128)))]

    #[test]
    fn any_query_and_header_on_any_route_gets_a_sane_answer(
        route in prop::sample::select(vec![
            "/poll", "/longpoll", "/sse", "/ws", "/publish", "/stats", "/healthz",
            "/admin/drop", "/admin/connections", "/nope",
        ]),
        params in proptest::collection::vec(
            (prop::sample::select(vec!["topic", "after", "timeout_ms", "fraction", "transport", "x"]), value()),
            0..5,
        ),
        header in prop_oneof![
            Just(String::new()),
            value().prop_map(|v| format!("Last-Event-ID: {v}\r\n")),
            value().prop_map(|v| format!("Authorization: Bearer {v}\r\n")),
            "[ -~]{0,40}".prop_map(|v| format!("X-Junk: {v}\r\n")),
        ],
    ) {
        let (rt, addr) = server();
        let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Long polls are not held: the case is about parsing, not waiting.
        if route == "/longpoll" {
            query.push("timeout_ms=0".into());
        }
        let status = rt.block_on(status_of(*addr, &request(route, &query.join("&"), &header)));
        prop_assert!((100..500).contains(&status), "{route}?{query:?} {header:?}: status {status}");
        // And the server still answers.
        let health = rt.block_on(status_of(*addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
        prop_assert_eq!(health, 200);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(32)))]

    #[test]
    fn any_websocket_messages_keep_the_subscription_and_its_cursor(
        messages in proptest::collection::vec(
            prop_oneof![
                "[ -~]{0,64}".prop_map(Message::text),
                "\\PC{0,32}".prop_map(|d| Message::text(serde_json::json!({ "data": d }).to_string())),
                Just(Message::text(r#"{"data":1}"#)),
                Just(Message::text("{\"data\":\"x\"")),
                proptest::collection::vec(any::<u8>(), 0..64).prop_map(Message::binary),
                Just(Message::Ping(Vec::new().into())),
                Just(Message::Pong(vec![1, 2, 3].into())),
            ],
            1..12,
        ),
    ) {
        let (rt, addr) = server();
        let outcome: Result<(), String> = rt.block_on(async {
            // t1: every case is on the same topic, so publishes interleave
            // with the generator's events; ids stay contiguous whatever.
            let url = format!("ws://{addr}/ws?topic=t1");
            let (mut ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
                .await
                .map_err(|_| "handshake timed out")?
                .map_err(|e| e.to_string())?;
            for m in &messages {
                ws.send(m.clone()).await.map_err(|e| e.to_string())?;
            }
            // Every message was handled: read until 30 events arrived after them.
            let mut ids = Vec::new();
            while ids.len() < 30 {
                match timeout(WAIT, ws.next()).await {
                    Err(_) => return Err(format!("silent after {messages:?}")),
                    Ok(None) => return Err(format!("closed after {messages:?}")),
                    Ok(Some(Err(e))) => return Err(format!("{e} after {messages:?}")),
                    Ok(Some(Ok(Message::Text(t)))) => {
                        if let Ok(e) = Event::from_json(&t) {
                            ids.push(e.id);
                        } else if !t.starts_with("{\"error\":") {
                            return Err(format!("neither an event nor an error reply: {t}"));
                        }
                    }
                    Ok(Some(Ok(Message::Close(f)))) => return Err(format!("closed {f:?} after {messages:?}")),
                    Ok(Some(Ok(_))) => {}
                }
            }
            if ids.windows(2).any(|w| w[1] != w[0] + 1) {
                return Err(format!("ids not contiguous: {ids:?}"));
            }
            let _ = ws.close(None).await;
            Ok(())
        });
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

#[test]
fn the_seed_requests_get_sane_answers() {
    let (rt, addr) = server();
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/requests.txt");
    let text = std::fs::read_to_string(&corpus).unwrap();
    let mut n = 0;
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        // One request per line: `\r\n` written as the two characters.
        let raw = line.replace("\\r\\n", "\r\n");
        let status = rt.block_on(status_of(*addr, raw.as_bytes()));
        assert!((100..500).contains(&status), "{line}: status {status}");
        n += 1;
    }
    assert!(n >= 10, "the corpus has its seeds");
}
