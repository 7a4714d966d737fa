//! WebSocket: `GET /ws?topic=T&after=N`.
//!
//! One text message per event, carrying the event's shared JSON bytes (no
//! copy, no re-validation). Each wake-up feeds every owed message into the
//! socket and flushes once, so a connection that is behind catches up in a
//! few large writes.
//!
//! The cursor, wakeups, keep-alive clock and end conditions are the shared
//! `Feed` (`feed.rs`). With direct fan-out (the default) a caught-up
//! connection is not woken: the appender sends it each event as a text
//! frame encoded once, by tungstenite, for every connection ([`crate::direct`]).
//!
//! Buffers are stated, not defaulted ([`Buffers`](crate::Buffers)), because
//! tungstenite's defaults cost about 134 KB per connection (its 128 KiB read
//! buffer is allocated up front): the read buffer is `ws_read` (allocated at
//! upgrade), the write buffer is written out once it holds `ws_write` or at
//! the flush after each wake-up, and client frames and messages are capped
//! at `ws_max_message` (client messages are small upstream JSON).
//!
//! Reading: pings are answered by tungstenite on the next read or write; a
//! text message is the upstream path: `{"data":"…"}`, as the body of
//! `POST /publish`, is published on the socket's topic (every subscriber of
//! the topic gets it, this one included; [`Hub::publish`](crate::Hub::publish)
//! stamps it with its receipt time). A Close is answered and ends the task.
//!
//! Unexpected messages lose nothing: a text message that is not
//! `{"data":"…"}` (a greeting, a client's own protocol) and a binary message
//! are answered on the same socket with one text message
//! `{"error":"<one-line reason>"}` (never an event: it has no `id`), and
//! the subscription goes on. Close codes are kept for real RFC 6455
//! violations: 1002 a protocol error (reserved bits or opcodes, an unmasked
//! frame, …), 1007 invalid UTF-8, 1009 a message over `ws_max_message`.
//! Nothing a client sends moves the connection's cursor. While idle the
//! server pings every `keepalive`. At shutdown or at
//! [`stream_max_age`](crate::ServerConfig::stream_max_age) the server
//! sends Close 1001 (going away) and waits briefly for the reply, so the
//! server side closes the TCP connection.
//!
//! Aborted connections (`/admin/drop`, or a client that fell further behind
//! than the log holds) get no Close frame: the socket is dropped and reset.
//! A client that stops reading is bounded by the socket's write timeout
//! ([`ServerConfig::write_timeout`](crate::ServerConfig::write_timeout)): a
//! blocked write fails, and the connection is reset.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::SinkExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite;

use crate::AppState;
use crate::conns::ConnHandle;
use crate::conns::Open;
use crate::direct::Framing;
use crate::event::EncodedEvent;
use crate::feed::{End, Feed, Next};
use crate::request::{RawParams, Subscription};
use crate::stats::Route;

/// How long the closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /ws`.
pub(crate) async fn handler(
    State(state): State<AppState>,
    conn: Option<Extension<Arc<ConnHandle>>>,
    query: RawParams,
    upgrade: WebSocketUpgrade,
) -> Response {
    state.stats().request(Route::Ws);
    let sub = match Subscription::parse(&state, query, None) {
        Ok(sub) => sub,
        Err(bad) => return bad.into_response(),
    };
    // The cursor is fixed at the handshake: events generated while the
    // upgrade completes are owed too.
    let conn = conn.map(|Extension(c)| c);
    let feed = Feed::new(
        &state,
        sub.topic,
        sub.after,
        conn.as_ref().map(|c| (c, Framing::Ws)),
    );
    // Upgraded sockets live outside hyper's connection; this token lets
    // `serve` wait for them.
    let tracked = state.tracker().token();
    let buffers = &state.config().buffers;
    upgrade
        .read_buffer_size(buffers.ws_read)
        .write_buffer_size(buffers.ws_write)
        .max_write_buffer_size(buffers.ws_max_write)
        .max_message_size(buffers.ws_max_message)
        .max_frame_size(buffers.ws_max_message)
        .on_upgrade(move |socket| async move {
            let _tracked = tracked;
            run(socket, state, sub.topic, feed, conn).await;
        })
}

/// Why the server ends a connection with a Close frame.
struct Closing {
    code: u16,
    reason: &'static str,
}

const SHUTTING_DOWN: Closing = Closing {
    code: close_code::AWAY,
    reason: "server shutting down",
};
const MAX_AGE: Closing = Closing {
    code: close_code::AWAY,
    reason: "stream max age reached",
};

/// The reply to an unexpected message: `{"error":"<reason>"}`.
fn error_reply(reason: &str) -> Message {
    let reason = reason.replace(['\r', '\n'], " ");
    Message::Text(serde_json::json!({ "error": reason }).to_string().into())
}

async fn run(
    mut socket: WebSocket,
    state: AppState,
    topic: u32,
    mut feed: Feed,
    conn: Option<Arc<ConnHandle>>,
) {
    let _open = state.stats().open(Open::Ws, conn.as_ref());
    // Created once: registering for the abort takes a lock.
    let aborted = async {
        match &conn {
            Some(conn) => conn.aborted().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(aborted);
    let closing = loop {
        tokio::select! {
            biased;
            // Dropping the socket resets the connection: no Close frame.
            () = &mut aborted => return,
            next = feed.next() => {
                // A write that makes no progress fails after the socket's write timeout.
                let sent = match next {
                    Next::Events => send_all(&mut socket, feed.owed()).await,
                    Next::KeepAlive => socket.send(Message::Ping(Bytes::new())).await,
                    Next::Flush => match socket.flush().await {
                        Ok(()) => continue,
                        Err(e) => return tracing::debug!("ws flush failed: {e}"),
                    },
                    Next::End(End::Shutdown) => break SHUTTING_DOWN,
                    Next::End(End::MaxAge) => break MAX_AGE,
                    Next::End(End::Slow) => {
                        if let Some(conn) = &conn {
                            conn.abort();
                        }
                        return;
                    }
                };
                match sent {
                    Ok(()) => feed.written(),
                    Err(e) => return tracing::debug!("ws write failed: {e}"),
                }
            }
            msg = socket.recv() => match msg {
                // The peer is gone, or the closing handshake completed.
                None => return,
                Some(Ok(Message::Text(text))) => {
                    state.stats().ws_message_in();
                    let reply = match crate::publish::parse(text.as_bytes()) {
                        Ok(data) => match state.hub().publish(topic, &data) {
                            Some(_) => continue,
                            None => "publishing is not available with --broker".to_string(),
                        },
                        Err(reason) => reason,
                    };
                    state.stats().ws_message_refused();
                    if let Err(e) = socket.send(error_reply(&reply)).await {
                        return tracing::debug!("ws error reply failed: {e}");
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    state.stats().ws_message_in();
                    state.stats().ws_message_refused();
                    let reply = error_reply("binary messages are not accepted: send {\"data\":\"...\"} as text");
                    if let Err(e) = socket.send(reply).await {
                        return tracing::debug!("ws error reply failed: {e}");
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    // tungstenite queued the Close reply; send it, then drop the socket.
                    let _ = timeout(CLOSE_TIMEOUT, socket.flush()).await;
                    return;
                }
                // Pings are answered by tungstenite itself; pongs need nothing.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(e)) => match closing_for(e) {
                    Some(closing) => break closing,
                    None => return,
                },
            },
        }
    };
    close(socket, closing).await;
}

/// Feeds every owed message, then flushes once.
async fn send_all(socket: &mut WebSocket, owed: &[Arc<EncodedEvent>]) -> Result<(), axum::Error> {
    for event in owed {
        socket.feed(Message::Text(event.ws.clone())).await?;
    }
    socket.flush().await
}

/// The Close frame owed to a peer whose read failed, if any (a vanished
/// peer is owed nothing).
fn closing_for(error: axum::Error) -> Option<Closing> {
    use tungstenite::error::{Error, ProtocolError};
    let error = error.into_inner();
    match error.downcast_ref::<Error>()? {
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        Error::Protocol(e) => {
            tracing::debug!("ws protocol error: {e}");
            Some(Closing {
                code: close_code::PROTOCOL,
                reason: "protocol error",
            })
        }
        Error::Utf8(_) => Some(Closing {
            code: close_code::INVALID,
            reason: "invalid UTF-8",
        }),
        Error::Capacity(_) => Some(Closing {
            code: close_code::SIZE,
            reason: "message too big",
        }),
        _ => None,
    }
}

/// Sends Close and waits (bounded) for the peer's reply.
async fn close(mut socket: WebSocket, closing: Closing) {
    let frame = CloseFrame {
        code: closing.code,
        reason: Utf8Bytes::from_static(closing.reason),
    };
    let _ = timeout(CLOSE_TIMEOUT, async {
        if socket.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(_)) = socket.recv().await {}
        }
    })
    .await;
}
