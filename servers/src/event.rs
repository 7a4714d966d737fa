//! One event, encoded once for every transport when it enters the log: the
//! hub stores it, and every transport (and the direct fan-out) writes its
//! bytes.
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;

/// One event, encoded once for every transport when it entered the log.
///
/// The JSON and the WebSocket text are slices of the SSE frame
/// (`id: N\ndata: <json>\n\n`); the raw-TCP frame (length prefix + JSON) is
/// the one other allocation.
#[derive(Debug)]
pub struct EncodedEvent {
    /// The event id (contiguous per topic).
    pub id: u64,
    /// The canonical JSON object (poll answers concatenate these).
    pub json: Bytes,
    /// The same JSON as a WebSocket text payload (UTF-8 checked once, here).
    pub ws: Utf8Bytes,
    /// The complete SSE frame.
    pub sse: Bytes,
    /// The complete raw-TCP frame: 4-byte big-endian length, then the JSON.
    pub tcp: Bytes,
    /// The SSE frame as one HTTP/1.1 chunk (`<hex length>\r\n<frame>\r\n`,
    /// as hyper frames a body chunk), for direct writes ([`crate::direct`]).
    pub sse_chunk: Bytes,
    /// The JSON as one complete WebSocket text frame from a server
    /// (unmasked), for direct writes ([`crate::direct`]).
    pub ws_frame: Bytes,
}

impl EncodedEvent {
    pub(crate) fn new(
        id: u64,
        at_us: u64,
        topic: &str,
        data: &str,
        event_type: Option<&str>,
    ) -> Self {
        let json = protocol::encode::event_json(id, topic, at_us, data);
        let sse = protocol::encode::sse_frame(id, event_type, &json);
        let tcp = protocol::encode::tcp_frame(&json);
        // Share the frame's bytes when the frame ends with `<json>\n\n`, as
        // `sse_frame` promises; otherwise fall back to a separate copy.
        let json_bytes = sse
            .len()
            .checked_sub(2 + json.len())
            .map(|start| sse.slice(start..start + json.len()))
            .filter(|slice| slice[..] == *json.as_bytes())
            .unwrap_or_else(|| Bytes::from(json.clone()));
        // Cannot fail: the bytes equal a `String`. The fallback keeps it panic-free.
        let ws = Utf8Bytes::try_from(json_bytes.clone()).unwrap_or_else(|_| Utf8Bytes::from(json));
        Self {
            id,
            sse_chunk: chunk(&sse),
            ws_frame: ws_text_frame(&json_bytes),
            json: json_bytes,
            ws,
            sse,
            tcp,
        }
    }
}

/// `data` as one HTTP/1.1 chunk, framed as hyper frames a body chunk.
fn chunk(data: &[u8]) -> Bytes {
    let mut out = format!("{:X}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// `text` as a final, unmasked WebSocket text frame, encoded by tungstenite.
fn ws_text_frame(text: &Bytes) -> Bytes {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let frame = Frame::message(text.clone(), OpCode::Data(Data::Text), true);
    let mut out = Vec::with_capacity(frame.len());
    // Writing into a Vec cannot fail.
    let _ = frame.format(&mut out);
    Bytes::from(out)
}
