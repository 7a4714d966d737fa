//! The upstream path: `POST /publish?topic=T` with `{"data":"…"}`, as an
//! SSE or polling client (or a script) sends a message into the server's
//! hub; every subscriber of the topic, of any transport, receives it.
//!
//! The server stamps a published event with the time it received it, so the
//! subscribers' latency of such an event starts at the server; a sender that
//! wants the full round trip times it itself (e.g. from before
//! [`Publisher::publish`] to its own subscriber's receipt).

use std::time::Duration;

use anyhow::Context as _;
use protocol::TransportKind;
use serde::Deserialize;

use crate::ClientConfig;
use crate::common::{Target, http_client, status_error};

/// Bound on one publish: connecting, sending and reading the answer.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's answer to a publish.
#[derive(Debug, Deserialize)]
struct Published {
    id: u64,
}

/// Publishes to one server over one kept-alive HTTP connection, with the
/// socket setup of the subscribers (source address, `TCP_NODELAY`).
#[derive(Debug, Clone)]
pub struct Publisher {
    client: reqwest::Client,
    base_url: String,
}

impl Publisher {
    /// A publisher to `config.base_url`, from `config.local_addr`, bounded
    /// by `config.connect_timeout` to connect (and [`PUBLISH_TIMEOUT`] in all).
    /// Fails on a base URL that is not `http://host[:port]`.
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        // Checked here so that `publish` fails only on I/O and answers.
        Target::new(config)?;
        Ok(Self {
            client: http_client(config)?,
            base_url: config.base_url.clone(),
        })
    }

    /// Publishes `data` on `topic`; returns the id the server gave the event.
    /// A non-200 answer is an error carrying the status and the server's
    /// one-line reason.
    pub async fn publish(&self, topic: &str, data: &str) -> anyhow::Result<u64> {
        let mut config = ClientConfig::new(TransportKind::ShortPoll, self.base_url.clone());
        config.topic = topic.to_string();
        let url = Target::new(&config)?.url("/publish", None, &[]);
        let body = serde_json::json!({ "data": data }).to_string();
        let exchange = async {
            let response = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .context("sending the publish request")?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(status_error(response).await);
            }
            let answer = response.bytes().await.context("reading the answer")?;
            let published: Published = serde_json::from_slice(&answer).with_context(|| {
                format!("unexpected answer {:?}", String::from_utf8_lossy(&answer))
            })?;
            Ok(published.id)
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, exchange)
            .await
            .with_context(|| format!("no answer to the publish within {PUBLISH_TIMEOUT:?}"))?
    }
}

/// Publishes `data` on `topic` of the server at `base_url` (e.g.
/// `http://127.0.0.1:8080`) once; returns the event's id. Opens a connection
/// per call: to publish repeatedly, keep a [`Publisher`].
pub async fn publish(base_url: &str, topic: &str, data: &str) -> anyhow::Result<u64> {
    let config = ClientConfig::new(TransportKind::ShortPoll, base_url);
    Publisher::new(&config)?.publish(topic, data).await
}
