//! Server-Sent Events: one `GET /sse` response that never ends, one
//! `text/event-stream` frame per event; on reconnect `Last-Event-ID` resumes
//! the stream where it broke.

use std::time::Duration;

use anyhow::{anyhow, bail};
use futures_util::StreamExt as _;
use protocol::sse::SseParser;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Habit, Habits};
use crate::common::{
    IdleWatch, Target, Transport, deliver, elapsed_us, http_client, pause_reading, status_error,
};
use crate::{Backoff, ClientConfig, Observer};

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// An SSE subscriber.
#[derive(Debug)]
pub struct Sse {
    client: reqwest::Client,
    target: Target,
    /// Kept across connections: it remembers the server's `retry:` and the
    /// last event id, which it updates only when an event is complete, so a
    /// stream cut mid-event resumes before that event, not after it.
    parser: SseParser,
    connect_timeout: Duration,
    idle_timeout: Duration,
    backoff: Backoff,
    /// The event type delivered ([`ClientConfig::event_type`]).
    event_type: String,
    /// Reading pauses ([`ClientConfig::behaviour`]).
    pub(crate) habits: Habits,
}

impl Sse {
    /// Builds the subscriber (no I/O yet).
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: http_client(config)?,
            target: Target::new(config)?,
            parser: SseParser::new(),
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            backoff: Backoff::from_config(config),
            event_type: config
                .event_type
                .clone()
                .unwrap_or_else(|| "message".to_string()),
            habits: Habits::new(&config.behaviour, false),
        })
    }

    /// Sends the request and checks that an event stream is what came back.
    async fn open<O: Observer>(&self, observer: &mut O) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .client
            .get(self.target.stream_url("/sse", None))
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        let last_event_id = self.parser.last_event_id();
        if !last_event_id.is_empty() {
            match HeaderValue::from_str(last_event_id) {
                Ok(id) => request = request.header(LAST_EVENT_ID, id),
                // Resuming is impossible; the live edge is the next best thing
                // and the observer counts the gap from the ids.
                Err(_) => observer.error("last event id is not a valid header value; not resuming"),
            }
        }
        let response = tokio::time::timeout(self.connect_timeout, request.send())
            .await
            .map_err(|_| anyhow!("no response headers within {:?}", self.connect_timeout))??;
        if response.status() != reqwest::StatusCode::OK {
            return Err(status_error(response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("text/event-stream") {
            bail!("content type `{content_type}` is not text/event-stream");
        }
        Ok(response)
    }
}

impl Transport for Sse {
    async fn session<O: Observer>(
        &mut self,
        observer: &mut O,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let response = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            opened = self.open(observer) => opened?,
        };
        observer.connected(elapsed_us(started));
        let mut body = response.bytes_stream();
        let mut idle = IdleWatch::new(self.idle_timeout);
        let outcome = loop {
            tokio::select! {
                () = stop.cancelled() => break Ok(()),
                silent = idle.silent() => break Err(silent),
                habit = self.habits.next(), if self.habits.active() => if let Habit::Pause(pause) = habit {
                    // The body is not read meanwhile: the server's writes back up.
                    if !pause_reading(pause, stop).await {
                        break Ok(());
                    }
                    idle.touch();
                },
                chunk = body.next() => match chunk {
                    Some(Ok(bytes)) => {
                        // Read once per chunk: every event completed by it arrived now.
                        let received_at_us = protocol::now_us();
                        idle.touch();
                        let listened = &self.event_type;
                        self.parser.feed_ref(&bytes, |event| {
                            if event.event_type == listened {
                                deliver(observer, event.data, received_at_us);
                            }
                        });
                    }
                    Some(Err(err)) => break Err(err.into()),
                    None => break Ok(()), // the server ended the stream
                },
            }
        };
        // A half-received event is discarded; the resume re-sends it.
        self.parser.finish();
        outcome
    }

    fn fail_over(&mut self) {
        self.target.fail_over();
    }

    fn backoff(&mut self) -> &mut Backoff {
        &mut self.backoff
    }

    fn server_retry(&self) -> Option<Duration> {
        self.parser.retry_ms().map(Duration::from_millis)
    }
}
