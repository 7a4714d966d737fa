//! A drop resets the chosen fraction of each transport's connections and
//! spares the rest.

use std::io;
use std::time::Duration;

use servers::conns::DropReport;
use tokio::io::AsyncWriteExt as _;
use tokio::time::timeout;

use crate::helpers::*;

#[tokio::test]
async fn a_drop_resets_the_chosen_fraction_of_each_transport_and_spares_the_rest() {
    // t0 at 50 events/s; t1 quiet, so that a long poll on it is held.
    let mut cfg = config(50.0, 16);
    cfg.hub.schedule.topics = 2;
    cfg.hub.groups = vec![
        protocol::schedule::TopicGroup {
            name: "busy".into(),
            topics: 1,
            rate: 50.0,
            event_type: None,
        },
        protocol::schedule::TopicGroup {
            name: "quiet".into(),
            topics: 1,
            rate: 0.0,
            event_type: None,
        },
    ];
    let s = Server::start(cfg).await;
    let mut sse = Vec::new();
    for _ in 0..10 {
        let mut c = raw(s.addr, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n").await;
        read_some(&mut c, 20).await; // headers have begun: the stream is open
        sse.push(c);
    }
    let mut ws = raw(s.addr, WS_UPGRADE).await;
    read_some(&mut ws, 12).await; // "HTTP/1.1 101"
    let mut tcp = raw(s.tcp(), "SUB t0 -\n").await;
    // Held: the quiet topic has no event to answer with.
    let mut longpoll = raw(
        s.addr,
        "GET /longpoll?topic=t1&timeout_ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let mut idle = raw(s.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    read_some(&mut idle, 12).await;
    s.wait_stats(WAIT, "all streams open", |st| {
        (st.open.sse, st.open.ws, st.open.tcp, st.open.longpoll) == (10, 1, 1, 1)
    })
    .await;
    let counts = s.connections().await;
    assert_eq!(
        (counts.sse, counts.ws, counts.tcp, counts.longpoll),
        (10, 1, 1, 1),
        "{counts:?}"
    );
    assert!(
        counts.idle >= 1 && counts.total == counts.idle + 13,
        "{counts:?}"
    );

    // Half of the SSE streams, and nothing else.
    let report = s.drop_fraction("fraction=0.5&transport=sse").await;
    assert_eq!(
        report,
        DropReport {
            dropped: 5,
            open_before: 10
        }
    );
    s.wait_stats(WAIT, "five SSE streams gone", |st| st.open.sse == 5)
        .await;
    let mut reset = 0;
    let mut alive = Vec::new();
    for mut c in sse {
        // A dropped stream ends with a reset; a spared one keeps streaming.
        match timeout(
            Duration::from_millis(500),
            read_to_end_or_reset(&mut c, WAIT),
        )
        .await
        {
            Ok((_, ending)) => {
                assert_eq!(
                    ending,
                    Err(io::ErrorKind::ConnectionReset),
                    "abrupt, not a clean end"
                );
                reset += 1;
            }
            Err(_) => alive.push(c),
        }
    }
    assert_eq!((reset, alive.len()), (5, 5));

    // Each other transport by name; then everything that is left.
    for (transport, stream) in [
        ("ws", &mut ws),
        ("tcp", &mut tcp),
        ("longpoll", &mut longpoll),
    ] {
        let report = s
            .drop_fraction(&format!("fraction=1&transport={transport}"))
            .await;
        assert_eq!(
            report,
            DropReport {
                dropped: 1,
                open_before: 1
            },
            "{transport}"
        );
        let (_, ending) = read_to_end_or_reset(stream, WAIT).await;
        assert_eq!(ending, Err(io::ErrorKind::ConnectionReset), "{transport}");
    }
    let report = s.drop_fraction("fraction=1").await;
    assert_eq!(
        report,
        DropReport {
            dropped: 5,
            open_before: 5
        }
    );
    for mut c in alive {
        assert_eq!(
            read_to_end_or_reset(&mut c, WAIT).await.1,
            Err(io::ErrorKind::ConnectionReset)
        );
    }
    // Idle keep-alive connections are not streams: never dropped.
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_some(&mut idle, 12).await;
    let stats = s.stats().await;
    assert_eq!(stats.admin_dropped, 13);
    assert_eq!(
        (
            stats.open.sse,
            stats.open.ws,
            stats.open.tcp,
            stats.open.longpoll
        ),
        (0, 0, 0, 0)
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Slow readers
