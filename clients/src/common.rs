//! What the four transports share: the reconnect loop, the HTTP client every
//! HTTP transport builds, URL building, one polling request, event decoding
//! and the idle watchdog of streaming connections.
//!
//! Each transport implements [`Transport`]: one *session* (a connection, or
//! for polling one run of successful requests) that ends cleanly, fails, or
//! stops. [`drive`] turns sessions into a subscriber: it reports failures,
//! reports the disconnection, waits a backoff pause, and starts the next
//! session, until the stop token is cancelled; and it times each outage
//! from the disconnection to the first event after it. So the reconnect
//! policy and its measurement exist once, not five times.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use protocol::{Event, PollResponse};
use reqwest::Url;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::{Backoff, ClientConfig, Observer};

/// Stops reading for `pause` ([`crate::behaviour`]); false when `stop`
/// was cancelled meanwhile.
pub(crate) async fn pause_reading(pause: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(pause) => true,
    }
}

/// Floor of the pause between sessions, so that a zero `backoff_initial` or
/// `retry: 0` against a server that refuses at once cannot become a busy loop.
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(10);

/// Bound on reading the first chunk of an error response's body (for the
/// error message only); short so that it never delays a stop noticeably.
const ERROR_BODY_WAIT: Duration = Duration::from_millis(250);

/// One transport's connection life cycle, driven by [`drive`].
pub(crate) trait Transport {
    /// Runs one session until the server ends it (`Ok`), it fails (`Err`),
    /// or `stop` is cancelled (`Ok`, promptly). Calls `observer.connected`
    /// at most once.
    async fn session<O: Observer>(
        &mut self,
        observer: &mut O,
        stop: &CancellationToken,
    ) -> anyhow::Result<()>;

    /// The subscriber's reconnect policy.
    fn backoff(&mut self) -> &mut Backoff;

    /// The initial pause the server asked for, if any (SSE's `retry:`).
    fn server_retry(&self) -> Option<Duration> {
        None
    }

    /// Turns to the next server of [`ClientConfig::fallback_urls`] (none:
    /// nothing changes), after a session ended.
    fn fail_over(&mut self) {}
}

/// Runs sessions of `transport` back to back until `stop` is cancelled.
///
/// A failed session is reported with `observer.error`; a session that had
/// connected is followed by `observer.disconnected`. Then it waits the
/// backoff pause (cut short by `stop`), reports a reconnect attempt and
/// starts again. A session that delivered an event resets the backoff.
///
/// The outage is timed from the end of the first session that had
/// connected since the last event (the moment the loss was detected) to
/// the first event after it, across any failed attempts in between; both
/// ends read the same clock as event receive times ([`protocol::now_us`]).
pub(crate) async fn drive<T: Transport, O: Observer>(
    transport: &mut T,
    observer: &mut O,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut disconnected_at_us = None;
    let mut first = true;
    while !stop.is_cancelled() {
        if !std::mem::take(&mut first) {
            observer.reconnect_attempt();
        }
        let mut tracked = Tracked {
            inner: &mut *observer,
            connected: false,
            got_event: false,
            disconnected_at_us,
        };
        let outcome = transport.session(&mut tracked, &stop).await;
        let (connected, got_event) = (tracked.connected, tracked.got_event);
        disconnected_at_us = tracked.disconnected_at_us;
        if stop.is_cancelled() {
            break; // whatever the session was doing, stopping is not a failure
        }
        if let Err(err) = outcome {
            observer.error(&format!("{err:#}"));
        }
        if got_event {
            transport.backoff().reset();
        }
        transport.fail_over();
        if connected {
            observer.disconnected();
            // A session that connected but delivered nothing does not end
            // the outage that began before it.
            disconnected_at_us.get_or_insert_with(protocol::now_us);
        }
        let retry = transport.server_retry();
        let delay = transport
            .backoff()
            .next_delay(retry)
            .max(MIN_RECONNECT_DELAY);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    Ok(())
}

/// Forwards to the real observer and remembers what the session did, so
/// [`drive`] knows whether to report a disconnection and reset the
/// backoff, and reports the end of an outage at its first event.
struct Tracked<'a, O> {
    inner: &'a mut O,
    connected: bool,
    got_event: bool,
    /// When the current outage was detected (`None`: no outage).
    disconnected_at_us: Option<u64>,
}

impl<O: Observer> Observer for Tracked<'_, O> {
    fn connected(&mut self, connect_us: u64) {
        self.connected = true;
        self.inner.connected(connect_us);
    }
    #[inline]
    fn event(&mut self, event: &Event, received_at_us: u64) {
        if let Some(since) = self.disconnected_at_us.take() {
            self.inner.reconnected(received_at_us.saturating_sub(since));
        }
        self.got_event = true;
        self.inner.event(event, received_at_us);
    }
    fn reconnect_attempt(&mut self) {
        self.inner.reconnect_attempt();
    }
    fn reconnected(&mut self, disconnect_to_first_event_us: u64) {
        self.inner.reconnected(disconnect_to_first_event_us);
    }
    fn request(&mut self) {
        self.inner.request();
    }
    fn disconnected(&mut self) {
        self.inner.disconnected();
    }
    fn error(&mut self, message: &str) {
        self.inner.error(message);
    }
}

/// Microseconds elapsed since `since` (for connect times).
pub(crate) fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Where a subscriber's requests go: the server's base URL and the topic.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    base: Url,
    topic: String,
    /// [`ClientConfig::path`], already filled in and parsed.
    stream: Option<Url>,
    /// Every server to take turns on: `base_url`, then the fallbacks
    /// (each with its stream URL); one entry without fallbacks.
    servers: Vec<(Url, Option<Url>)>,
    /// Index of the current one in `servers`.
    current: usize,
}

impl Target {
    /// Checks the base URL once, so that later URL building cannot fail.
    pub(crate) fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        let mut servers = Vec::with_capacity(1 + config.fallback_urls.len());
        for url in std::iter::once(&config.base_url).chain(&config.fallback_urls) {
            let base = Url::parse(url).with_context(|| format!("bad base URL `{url}`"))?;
            if base.scheme() != "http" || base.host().is_none() {
                // No TLS is compiled in: the benchmark measures transports, not crypto.
                bail!("base URL `{url}` must be http://host[:port]");
            }
            let stream = config
                .path
                .as_deref()
                .map(|template| stream_url(&base, template, &config.topic))
                .transpose()?;
            servers.push((base, stream));
        }
        let (base, stream) = servers[0].clone();
        Ok(Self {
            base,
            topic: config.topic.clone(),
            stream,
            servers,
            current: 0,
        })
    }

    /// Turns to the next server, round the list (one server: no change).
    pub(crate) fn fail_over(&mut self) {
        if self.servers.len() > 1 {
            self.current = (self.current + 1) % self.servers.len();
            (self.base, self.stream) = self.servers[self.current].clone();
        }
    }

    /// The URL of a streaming subscription: the configured path template
    /// (plus `after=N` when given), else `{base}{default_path}?topic=T[&after=N]`.
    pub(crate) fn stream_url(&self, default_path: &str, after: Option<u64>) -> Url {
        let Some(url) = &self.stream else {
            return self.url(default_path, after, &[]);
        };
        let mut url = url.clone();
        if let Some(after) = after {
            url.query_pairs_mut()
                .append_pair("after", &after.to_string());
        }
        url
    }

    /// `{base}{path}?topic=T[&after=N][&k=v…]`, query values percent-encoded.
    /// A path prefix in the base URL (`http://host/prefix`) is kept.
    pub(crate) fn url(&self, path: &str, after: Option<u64>, extra: &[(&str, u64)]) -> Url {
        let mut url = self.base.clone();
        let full = format!("{}{path}", self.base.path().trim_end_matches('/'));
        url.set_path(&full);
        url.set_fragment(None);
        {
            let mut query = url.query_pairs_mut();
            query.clear().append_pair("topic", &self.topic);
            if let Some(after) = after {
                query.append_pair("after", &after.to_string());
            }
            for (key, value) in extra {
                query.append_pair(key, &value.to_string());
            }
        }
        url
    }
}

/// `template` (`/events/?channel={topic}`) on `base`, `{topic}` replaced by
/// the percent-encoded topic. A base path prefix is kept, as in [`Target::url`].
fn stream_url(base: &Url, template: &str, topic: &str) -> anyhow::Result<Url> {
    if !template.starts_with('/') || !template.contains("{topic}") {
        bail!("stream path `{template}` must start with `/` and contain `{{topic}}`");
    }
    // The query encoder of `Url` (what `Target::url` uses for `topic=`), without a new dependency.
    let mut encoder = Url::parse("http://x/").expect("a constant URL parses");
    encoder.query_pairs_mut().append_pair("t", topic);
    let topic = encoder.query().unwrap_or("t=")[2..].to_string();
    let filled = template.replace("{topic}", &topic);
    let joined = format!("{}{filled}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined)
        .with_context(|| format!("stream path `{template}` makes a bad URL `{joined}`"))
}

/// The HTTP client of one subscriber: its own connection pool of one, as a
/// browser tab would hold, with the socket setup every transport shares
/// (no proxy, `TCP_NODELAY`, HTTP/1.1, chosen source address).
pub(crate) fn http_client(config: &ClientConfig) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .connect_timeout(config.connect_timeout)
        .local_address(config.local_addr)
        .http1_only()
        .build()
        .context("building the HTTP client")
}

/// A TCP connection to `addr` with the socket setup every transport shares:
/// from the chosen source address (`None`: the OS's choice), `TCP_NODELAY`.
/// Unbounded: callers bound it with their connect timeout.
pub(crate) async fn connect(
    addr: SocketAddr,
    local_addr: Option<IpAddr>,
) -> anyhow::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    if let Some(ip) = local_addr {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding source address {ip}"))?;
    }
    socket.set_nodelay(true)?;
    socket
        .connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))
}

/// Turns a response with an unexpected status into an error carrying the
/// status and the first line of the body (the servers send a one-line reason).
pub(crate) async fn status_error(mut response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let reason = match tokio::time::timeout(ERROR_BODY_WAIT, response.chunk()).await {
        Ok(Ok(Some(chunk))) => String::from_utf8_lossy(&chunk)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect(),
        _ => String::new(),
    };
    anyhow!("unexpected status {status} {reason}")
}

/// The polling cursor: one HTTP client, the target, and the position in the
/// topic. Short and long polling differ only in *when* they call
/// [`Poller::poll`] and in the path and parameters they pass.
#[derive(Debug)]
pub(crate) struct Poller {
    client: reqwest::Client,
    pub(crate) target: Target,
    /// `None` until the first answer: the first request asks for the live edge.
    after: Option<u64>,
    /// Bound on one whole request (connect, headers and body).
    request_timeout: Duration,
}

impl Poller {
    /// A poller whose requests each take at most `request_timeout`.
    pub(crate) fn new(config: &ClientConfig, request_timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: http_client(config)?,
            target: Target::new(config)?,
            after: None,
            request_timeout,
        })
    }

    /// One request: `GET {path}?topic=T[&after=N]{extra}`, then every event
    /// of the answer to the observer and the cursor moved to `next`.
    ///
    /// `connected` is the session's flag: the first successful answer of a
    /// session reports the connect time (the session's first attempt, since
    /// any failure ends the session).
    pub(crate) async fn poll<O: Observer>(
        &mut self,
        path: &str,
        extra: &[(&str, u64)],
        observer: &mut O,
        connected: &mut bool,
    ) -> anyhow::Result<()> {
        let url = self.target.url(path, self.after, extra);
        let started = Instant::now();
        observer.request();
        let response = self
            .client
            .get(url)
            .timeout(self.request_timeout)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        let body = response.bytes().await?;
        // Read once, right after the body arrived: every event in it arrived then.
        let received_at_us = protocol::now_us();
        let answer: PollResponse =
            serde_json::from_slice(&body).context("undecodable poll answer")?;
        if !*connected {
            *connected = true;
            observer.connected(elapsed_us(started));
        }
        for event in &answer.events {
            observer.event(event, received_at_us);
        }
        self.after = Some(answer.next);
        Ok(())
    }
}

/// Decodes one event's JSON and hands it to the observer, returning its id.
/// Undecodable data is reported and skipped: one bad event must not end a
/// connection that otherwise works.
pub(crate) fn deliver<O: Observer>(
    observer: &mut O,
    json: &str,
    received_at_us: u64,
) -> Option<u64> {
    match Event::from_json(json) {
        Ok(event) => {
            observer.event(&event, received_at_us);
            Some(event.id)
        }
        Err(err) => {
            observer.error(&format!("undecodable event ({err}): {:.80}", json));
            None
        }
    }
}

/// Detects a streaming connection that has gone silent (a peer that vanished
/// without closing), so that no read waits forever.
///
/// The timer is not re-armed per message: a message only records the time,
/// and when the timer fires it is pushed to `last message + timeout` if the
/// connection spoke in between. Busy connections touch the timer wheel once
/// per timeout period, not once per event.
pub(crate) struct IdleWatch {
    timeout: Duration,
    last_rx: Instant,
    // Boxed so the watch can live in a plain `let` across the select loop.
    sleep: std::pin::Pin<Box<Sleep>>,
}

impl IdleWatch {
    /// A watch for a connection that just opened.
    pub(crate) fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            timeout,
            last_rx: now,
            sleep: Box::pin(tokio::time::sleep_until(now + timeout)),
        }
    }

    /// Records that the connection just received something.
    pub(crate) fn touch(&mut self) {
        self.last_rx = Instant::now();
    }

    /// Completes once nothing has been received for the timeout; returns an
    /// error naming the silence, ready to end the session with.
    pub(crate) async fn silent(&mut self) -> anyhow::Error {
        loop {
            self.sleep.as_mut().await;
            let deadline = self.last_rx + self.timeout;
            if Instant::now() >= deadline {
                return anyhow!("no data for {:?}: connection deemed dead", self.timeout);
            }
            self.sleep.as_mut().reset(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_takes_turns_over_its_servers_and_one_server_stays() {
        let mut config = ClientConfig::new(protocol::TransportKind::Sse, "http://127.0.0.1:1");
        config.topic = "t3".into();
        let mut one = Target::new(&config).unwrap();
        one.fail_over();
        assert_eq!(
            one.url("/sse", None, &[]).as_str(),
            "http://127.0.0.1:1/sse?topic=t3"
        );
        config.fallback_urls = vec!["http://127.0.0.1:2".into(), "http://127.0.0.1:3".into()];
        let mut t = Target::new(&config).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(t.stream_url("/sse", Some(7)).port().unwrap());
            t.fail_over();
        }
        assert_eq!(seen, [1, 2, 3, 1]);
        config.fallback_urls = vec!["ftp://x".into()];
        assert!(
            Target::new(&config).is_err(),
            "a bad fallback is refused up front"
        );
    }

    #[test]
    fn urls_carry_topic_cursor_and_extras_encoded() {
        let mut config =
            ClientConfig::new(protocol::TransportKind::LongPoll, "http://127.0.0.1:9/");
        config.topic = "a b&c".to_string();
        let target = Target::new(&config).unwrap();
        assert_eq!(
            target.url("/poll", None, &[]).as_str(),
            "http://127.0.0.1:9/poll?topic=a+b%26c"
        );
        assert_eq!(
            target
                .url("/longpoll", Some(7), &[("timeout_ms", 500)])
                .as_str(),
            "http://127.0.0.1:9/longpoll?topic=a+b%26c&after=7&timeout_ms=500"
        );
    }

    #[test]
    fn url_keeps_a_base_path_prefix() {
        let config = ClientConfig::new(protocol::TransportKind::Sse, "http://host:1/push");
        let target = Target::new(&config).unwrap();
        assert_eq!(
            target.url("/sse", None, &[]).as_str(),
            "http://host:1/push/sse?topic=t0"
        );
    }

    #[test]
    fn a_path_template_replaces_the_default_stream_route() {
        let mut config = ClientConfig::new(protocol::TransportKind::Sse, "http://h:1/app/");
        config.topic = "t 1".to_string();
        config.path = Some("/events/?channel={topic}".to_string());
        let target = Target::new(&config).unwrap();
        assert_eq!(
            target.stream_url("/sse", None).as_str(),
            "http://h:1/app/events/?channel=t+1"
        );
        assert_eq!(
            target.stream_url("/ws", Some(4)).as_str(),
            "http://h:1/app/events/?channel=t+1&after=4"
        );
        config.path = None;
        let target = Target::new(&config).unwrap();
        assert_eq!(
            target.stream_url("/sse", None).as_str(),
            "http://h:1/app/sse?topic=t+1"
        );
    }

    #[test]
    fn a_path_template_without_topic_or_slash_is_refused() {
        for path in ["/events", "events/{topic}"] {
            let mut config = ClientConfig::new(protocol::TransportKind::Sse, "http://h:1");
            config.path = Some(path.to_string());
            let err = Target::new(&config).unwrap_err().to_string();
            assert!(err.contains(path), "{err}");
        }
    }

    #[test]
    fn bad_base_urls_are_rejected_not_panicked_on() {
        for base in ["", "127.0.0.1:80", "https://x", "ftp://x", "http://"] {
            let config = ClientConfig::new(protocol::TransportKind::Sse, base);
            assert!(Target::new(&config).is_err(), "{base}");
        }
    }
}
