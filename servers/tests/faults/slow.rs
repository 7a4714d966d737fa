//! Slow readers: a client that stops reading is reset after the write timeout;
//! one that falls behind the history is reset, not skipped ahead.

use std::io;
use std::time::Duration;

use futures_util::StreamExt as _;
use protocol::Event;
use protocol::sse::SseParser;
use servers::ServerConfig;
use tokio::io::AsyncReadExt as _;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

#[tokio::test]
async fn clients_that_stop_reading_are_reset_after_the_write_timeout() {
    // 4 MB/s of 4 KiB events: each stalled connection fills the kernel's
    // buffers (a few MB) within a second or two, then its writes block.
    let s = Server::start(ServerConfig {
        write_timeout: Duration::from_millis(500),
        max_batch: 1000,
        ..config(1000.0, 4096)
    })
    .await;
    let mut stalled = vec![
        (
            "sse",
            raw(s.addr, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n").await,
        ),
        ("ws", raw(s.addr, WS_UPGRADE).await),
        ("tcp", raw(s.tcp(), "SUB t0 -\n").await),
    ];
    // Long polling: 1000-event answers (4 MB each) that are never read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let request = "GET /longpoll?after=0 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(8);
    stalled.push(("longpoll", raw(s.addr, &request).await));
    s.wait_stats(
        Duration::from_secs(15),
        "every stalled client closed as slow",
        |st| st.closed_slow == 4 && (st.open.sse, st.open.ws, st.open.tcp) == (0, 0, 0),
    )
    .await;
    let stats = s.stats().await;
    assert_eq!(stats.closed_slow_backlog, 0, "these were write timeouts");
    assert_eq!(stats.config.write_timeout_ms, 500);
    // What went out is what the socket buffers took, not an ever-growing amount.
    assert!(
        stats.bytes_out < 4 * (32 << 20),
        "bytes out {}",
        stats.bytes_out
    );
    for (transport, mut stream) in stalled {
        let (_, ending) = read_to_end_or_reset(&mut stream, WAIT).await;
        assert_eq!(ending, Err(io::ErrorKind::ConnectionReset), "{transport}");
    }
    s.stop().await;
}

/// The ids of the events in an SSE body, read with reqwest until it fails.
async fn sse_ids_until_failure(resp: reqwest::Response) -> (Vec<u64>, bool) {
    let mut parser = SseParser::new();
    let mut ids = Vec::new();
    let mut body = resp.bytes_stream();
    loop {
        match timeout(WAIT, body.next()).await.expect("SSE bytes in time") {
            Some(Ok(chunk)) => {
                parser.feed_with(&chunk, |e| ids.push(Event::from_json(&e.data).unwrap().id));
            }
            Some(Err(_)) => return (ids, true),
            None => return (ids, false),
        }
    }
}

fn assert_contiguous(transport: &str, ids: &[u64]) {
    assert!(ids.len() > 100, "{transport}: only {} events", ids.len());
    for w in ids.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{transport}: the server skipped ahead");
    }
}

#[tokio::test]
async fn clients_that_fall_behind_the_history_are_reset_not_skipped_ahead() {
    // A history of 64 events is 64 ms at 1000/s: a client that stops
    // reading for 2 s is far behind it once the socket buffers are full.
    let mut cfg = config(1000.0, 4096);
    cfg.hub.history = 64;
    cfg.write_timeout = Duration::from_secs(60);
    let s = Server::start(cfg).await;
    let sse = reqwest::Client::new()
        .get(s.url("/sse"))
        .send()
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.addr))
        .await
        .unwrap();
    let mut tcp = raw(s.tcp(), "SUB t0 -\n").await;
    s.wait_stats(WAIT, "streams open", |st| {
        (st.open.sse, st.open.ws, st.open.tcp) == (1, 1, 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Now read as fast as possible: everything received is contiguous,
    // then the connection is reset.
    let sse = tokio::spawn(sse_ids_until_failure(sse));
    let ws = tokio::spawn(async move {
        let mut ids = Vec::new();
        loop {
            match timeout(WAIT, ws.next()).await.expect("WS message in time") {
                Some(Ok(Message::Text(t))) => ids.push(Event::from_json(&t).unwrap().id),
                Some(Ok(_)) => {}
                Some(Err(_)) => return (ids, true),
                None => return (ids, false),
            }
        }
    });
    let tcp = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut ids = Vec::new();
        loop {
            let read = timeout(WAIT, tcp.read_buf(&mut buf))
                .await
                .expect("TCP bytes in time");
            let mut used = 0;
            while let Some((body, n)) = protocol::encode::tcp_decode(&buf[used..]) {
                if !body.is_empty() {
                    ids.push(
                        Event::from_json(std::str::from_utf8(body).unwrap())
                            .unwrap()
                            .id,
                    );
                }
                used += n;
            }
            buf.drain(..used);
            match read {
                Ok(0) => return (ids, false),
                Ok(_) => {}
                Err(e) => return (ids, e.kind() == io::ErrorKind::ConnectionReset),
            }
        }
    });
    for (transport, task) in [("sse", sse), ("ws", ws), ("tcp", tcp)] {
        let (ids, failed) = task.await.unwrap();
        assert!(
            failed,
            "{transport}: the connection must fail, not end cleanly"
        );
        assert_contiguous(transport, &ids);
    }
    let stats = s.stats().await;
    assert_eq!(
        (stats.closed_slow, stats.closed_slow_backlog),
        (3, 3),
        "{stats:#?}"
    );
    s.stop().await;
}
