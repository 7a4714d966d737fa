//! Raw TCP, the floor: the same hub and event JSON, length-prefixed frames
//! on a second port (`--tcp-listen`).
//!
//! Protocol: the client sends one request line, `SUB <topic> <after|->\n`
//! (`-`: start at the live edge; a number: resume after that id), at most
//! [`MAX_REQUEST_LINE`] bytes within [`REQUEST_TIMEOUT`]. The server then
//! writes frames ([`protocol::encode::tcp_frame`]: 4-byte big-endian length,
//! then the event JSON), and an empty frame (four zero bytes) as keep-alive
//! after [`keepalive`] of silence, so the client's idle watchdog works as
//! for SSE comments and WebSocket pings. The client sends nothing more. A
//! bad request line is answered `ERR <reason>\n` and the connection closed.
//!
//! It is the floor because it is what every other transport does minus its
//! protocol: the same accept path and socket setup ([`net`](crate::net):
//! `TCP_NODELAY`, counted bytes), the same cursor and wakeups (`feed.rs`),
//! and each wake-up writes the pre-encoded frames it owes with one
//! vectored write (up to 64 frames per system call), copying nothing into a
//! user-space buffer. With direct fan-out (the default) a caught-up stream
//! is not woken: the appender sends it each frame itself, exactly as it
//! does for SSE and WebSocket ([`crate::direct`]).
//!
//! The stream ends when the server shuts down or at [`stream_max_age`]: the
//! server closes the connection (so it, not the client, holds TIME_WAIT)
//! and the client resumes with `SUB <topic> <last id>`. It is reset instead
//! when aborted (`/admin/drop`, or a client that fell further behind than
//! the log holds), and when a write makes no progress for the socket's
//! write timeout.
//!
//! [`keepalive`]: crate::ServerConfig::keepalive
//! [`stream_max_age`]: crate::ServerConfig::stream_max_age

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use crate::AppState;
use crate::conns::Open;
use crate::direct::Framing;
use crate::event::EncodedEvent;
use crate::feed::{End, Feed, Next};
use crate::net::CountingStream;
use crate::request::{parse_u64, topic};
use crate::stats::Route;

/// Longest request line accepted, newline included.
pub const MAX_REQUEST_LINE: usize = 256;
/// How long a new connection may take to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The keep-alive: an empty frame.
pub const KEEPALIVE: [u8; protocol::encode::TCP_PREFIX_LEN] = [0; protocol::encode::TCP_PREFIX_LEN];
/// Bound on writing an `ERR` line or closing.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one accepted connection of the raw-TCP port until it ends.
pub(crate) async fn connection(mut stream: CountingStream, state: AppState) {
    let (topic, after) = match read_request(&mut stream).await {
        Ok(line) => {
            state.stats().request(Route::Tcp);
            match resolve(&state, &line) {
                Ok(sub) => sub,
                Err(reason) => return refuse(stream, &state, &reason).await,
            }
        }
        Err(Refusal::Bad(reason)) => {
            state.stats().request(Route::Tcp);
            return refuse(stream, &state, &reason).await;
        }
        Err(Refusal::Gone) => return,
    };
    let conn = stream.conn().clone();
    let _open = state.stats().open(Open::Tcp, Some(&conn));
    let mut feed = Feed::new(&state, topic, after, Some((&conn, Framing::Tcp)));
    // Created once: registering for the abort takes a lock.
    let aborted = conn.aborted();
    tokio::pin!(aborted);
    // The client must not speak again: a read only notices that it left.
    let mut scratch = [0u8; 16];
    loop {
        tokio::select! {
            biased;
            // Dropping the stream resets the connection.
            () = &mut aborted => return,
            next = feed.next() => {
                // A write that makes no progress fails after the socket's write timeout.
                let written = match next {
                    Next::Events => write_frames(&mut stream, feed.owed()).await,
                    Next::KeepAlive => stream.write_all(&KEEPALIVE).await,
                    Next::Flush => match stream.flush().await {
                        Ok(()) => continue,
                        Err(e) => return tracing::debug!("tcp flush failed: {e}"),
                    },
                    Next::End(End::Slow) => return conn.abort(),
                    Next::End(End::Shutdown | End::MaxAge) => break,
                };
                match written {
                    Ok(()) => feed.written(),
                    Err(e) => return tracing::debug!("tcp write failed: {e}"),
                }
            }
            read = stream.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return, // the client left
                Ok(_) => return tracing::debug!("tcp client spoke after its request line; closing"),
            },
        }
    }
    // Shutdown or max age: close from this side.
    let _ = timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
}

/// Why no subscription came of a connection.
#[derive(Debug)]
enum Refusal {
    /// Answer `ERR <reason>`.
    Bad(String),
    /// The peer left (or failed) before finishing its line: nobody to answer.
    Gone,
}

/// The request line: up to [`MAX_REQUEST_LINE`] bytes ending in `\n`, read
/// within [`REQUEST_TIMEOUT`]. Returned without the line ending.
async fn read_request(stream: &mut CountingStream) -> Result<String, Refusal> {
    let mut buf = [0u8; MAX_REQUEST_LINE];
    let mut filled = 0;
    let read = async {
        loop {
            let n = stream
                .read(&mut buf[filled..])
                .await
                .map_err(|_| Refusal::Gone)?;
            if n == 0 {
                return Err(Refusal::Gone);
            }
            let start = filled;
            filled += n;
            if let Some(i) = buf[start..filled].iter().position(|&b| b == b'\n') {
                return Ok(start + i);
            }
            if filled == MAX_REQUEST_LINE {
                return Err(Refusal::Bad(format!(
                    "request line longer than {MAX_REQUEST_LINE} bytes"
                )));
            }
        }
    };
    let newline = timeout(REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| Refusal::Bad(format!("no request line within {REQUEST_TIMEOUT:?}")))??;
    if newline + 1 != filled {
        return Err(Refusal::Bad(
            "unexpected bytes after the request line".into(),
        ));
    }
    let line = buf[..newline]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..newline]);
    String::from_utf8(line.to_vec()).map_err(|_| Refusal::Bad("request line is not UTF-8".into()))
}

/// `SUB <topic> <after|->` as (topic name, cursor), or the one-line reason
/// it is not one.
fn parse_line(line: &str) -> Result<(&str, Option<u64>), String> {
    const USAGE: &str = "expected `SUB <topic> <after|->`";
    let mut parts = line.split(' ');
    let (Some("SUB"), Some(topic), Some(after), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{USAGE}, got {:?}", truncate(line)));
    };
    if topic.is_empty() {
        return Err(format!("{USAGE}: the topic is empty"));
    }
    let after = match after {
        "-" => None,
        n => Some(parse_u64(n).ok_or_else(|| {
            format!(
                "after must be `-` or a non-negative integer, got {:?}",
                truncate(n)
            )
        })?),
    };
    Ok((topic, after))
}

/// The subscription a request line asks for, validated against this server.
fn resolve(state: &AppState, line: &str) -> Result<(u32, Option<u64>), String> {
    let (name, after) = parse_line(line)?;
    Ok((topic(state, name)?, after))
}

/// At most 64 characters of client text, for error messages.
fn truncate(s: &str) -> &str {
    s.char_indices().nth(64).map_or(s, |(i, _)| &s[..i])
}

/// Answers `ERR <reason>\n` and closes.
async fn refuse(mut stream: CountingStream, state: &AppState, reason: &str) {
    state.stats().bad_request();
    // One line, whatever the client sent (reasons quote it with `{:?}`).
    let line = format!("ERR {}\n", reason.replace(['\r', '\n'], " "));
    let _ = timeout(CLOSE_TIMEOUT, async {
        stream.write_all(line.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Writes the frames of `owed` with vectored writes of the shared bytes.
async fn write_frames(stream: &mut CountingStream, owed: &[Arc<EncodedEvent>]) -> io::Result<()> {
    if let [one] = owed {
        return stream.write_all(&one.tcp).await;
    }
    stream.write_all_buf(&mut Frames::new(owed)).await
}

/// The frames of several events as one [`Buf`], so that tokio writes them
/// with `writev` straight from the shared bytes.
struct Frames<'a> {
    events: &'a [Arc<EncodedEvent>],
    /// Bytes of `events[0]` already written.
    offset: usize,
    remaining: usize,
}

impl<'a> Frames<'a> {
    fn new(events: &'a [Arc<EncodedEvent>]) -> Self {
        Self {
            remaining: events.iter().map(|e| e.tcp.len()).sum(),
            events,
            offset: 0,
        }
    }
}

impl Buf for Frames<'_> {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.events.first().map_or(&[], |e| &e.tcp[self.offset..])
    }

    fn chunks_vectored<'b>(&'b self, dst: &mut [io::IoSlice<'b>]) -> usize {
        let mut n = 0;
        for (i, event) in self.events.iter().enumerate() {
            let Some(slot) = dst.get_mut(n) else { break };
            let offset = if i == 0 { self.offset } else { 0 };
            *slot = io::IoSlice::new(&event.tcp[offset..]);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of the frames");
        self.remaining -= cnt;
        while cnt > 0 {
            let left = self.events[0].tcp.len() - self.offset;
            if cnt < left {
                self.offset += cnt;
                return;
            }
            cnt -= left;
            self.events = &self.events[1..];
            self.offset = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_parse_or_say_why_not() {
        assert_eq!(parse_line("SUB t0 -"), Ok(("t0", None)));
        assert_eq!(parse_line("SUB t3 42"), Ok(("t3", Some(42))));
        for (line, reason) in [
            ("", "expected `SUB"),
            ("GET / HTTP/1.1", "expected `SUB"),
            ("SUB t0", "expected `SUB"),
            ("SUB t0 - extra", "expected `SUB"),
            ("SUB  -", "the topic is empty"),
            ("sub t0 -", "expected `SUB"),
            ("SUB t0 -1", "after must be"),
            ("SUB t0 1.5", "after must be"),
            ("SUB t0 18446744073709551616", "after must be"),
        ] {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(reason), "{line:?}: {err}");
        }
        let long = format!("SUB t0 {}", "9".repeat(200));
        assert!(parse_line(&long).unwrap_err().len() < 200);
    }

    fn event(id: u64, len: usize) -> Arc<EncodedEvent> {
        Arc::new(EncodedEvent {
            id,
            json: bytes::Bytes::new(),
            ws: Default::default(),
            sse: bytes::Bytes::new(),
            tcp: bytes::Bytes::from(vec![id as u8; len]),
            sse_chunk: bytes::Bytes::new(),
            ws_frame: bytes::Bytes::new(),
        })
    }

    #[test]
    fn frames_yield_every_byte_in_order_across_partial_advances() {
        let events = [event(1, 5), event(2, 3), event(3, 7)];
        let expected: Vec<u8> = events.iter().flat_map(|e| e.tcp.to_vec()).collect();
        for step in 1..=expected.len() {
            let mut frames = Frames::new(&events);
            let mut out = Vec::new();
            while frames.has_remaining() {
                let mut slices = [io::IoSlice::new(&[]); 2];
                let n = frames.chunks_vectored(&mut slices);
                assert!(n >= 1);
                let gathered: Vec<u8> = slices[..n].iter().flat_map(|s| s.to_vec()).collect();
                assert_eq!(gathered[..frames.chunk().len()], *frames.chunk());
                let take = step.min(frames.remaining());
                out.extend_from_slice(&gathered[..take.min(gathered.len())]);
                frames.advance(take.min(gathered.len()));
            }
            assert_eq!(out, expected, "step {step}");
        }
    }
}
