//! `push-server`: runs pushbench's push server until SIGINT or SIGTERM.
//!
//! Parses flags, binds, prints one JSON line on stdout when ready (so a
//! parent process learns the ports without guessing), then serves:
//! `{"listening":"ADDR"}`, plus `"tcp":"ADDR"` when `--tcp-listen` is given.
//! Logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use protocol::Schedule;
use protocol::schedule::TopicGroup;
use servers::{Buffers, HubConfig, Listeners, ServerConfig};
use tokio_util::sync::CancellationToken;

/// pushbench's push server: short polling, long polling, SSE and WebSocket
/// (and the raw-TCP floor) over one event generator.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed when ready).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Events per second per topic (fractional allowed; 0 generates nothing).
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Number of topics, named t0, t1, ….
    #[arg(long, default_value_t = 1)]
    topics: u32,
    /// A group of topics with its own rate, NAME:COUNT:RATE (e.g.
    /// idle:1900:0.033); repeat for more groups. The groups take consecutive
    /// topics (the first t0…t{COUNT-1}, the next from there) and replace
    /// --topics and --rate [default: none].
    #[arg(long, value_name = "NAME:COUNT:RATE", value_parser = parse_topic_group,
          conflicts_with_all = ["topics", "rate"])]
    topic_group: Vec<TopicGroup>,
    /// Size of each event's data filler, in bytes.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// Events kept per topic for resuming clients.
    #[arg(long, default_value_t = 1024)]
    history: usize,
    /// Schedule start, µs since the Unix epoch; a restarted server given the
    /// same value continues the same ids [default: now].
    #[arg(long)]
    start_epoch_us: Option<u64>,
    /// Named SSE event type for all topics [default: none, i.e. `message`].
    #[arg(long)]
    event_type: Option<String>,
    /// SSE `retry:` value sent at stream start, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    retry_ms: u64,
    /// Silence after which SSE streams get a comment and WebSockets a ping (e.g. 15s, 500ms).
    #[arg(long, default_value = "15s")]
    keepalive: humantime::Duration,
    /// Longest long-poll hold, whatever timeout_ms asks (e.g. 60s).
    #[arg(long, default_value = "60s")]
    max_longpoll_timeout: humantime::Duration,
    /// Most events in one poll or long-poll answer.
    #[arg(long, default_value_t = 1000)]
    max_batch: usize,
    /// How events reach SSE, WebSocket and raw-TCP connections: `direct`
    /// (whoever appends an event writes it to every caught-up socket in one
    /// loop) or `tasks` (every event wakes every subscriber's task, which
    /// writes what it owes).
    #[arg(long, default_value = "direct")]
    fanout: servers::Fanout,
    /// End every SSE stream and WebSocket after this age so clients must
    /// resume, as proxies do (e.g. 30s) [default: never].
    #[arg(long)]
    stream_max_age: Option<humantime::Duration>,
    /// Also serve the raw-TCP floor transport on this address (e.g.
    /// 127.0.0.1:0; the port is printed when ready) [default: off].
    #[arg(long)]
    tcp_listen: Option<SocketAddr>,
    /// WebSocket read buffer per connection, bytes (allocated at upgrade).
    #[arg(long, default_value_t = Buffers::default().ws_read)]
    ws_read_buffer: usize,
    /// WebSocket write buffer per connection, bytes: buffered messages are
    /// written out at this size, and at the end of each wake-up.
    #[arg(long, default_value_t = Buffers::default().ws_write)]
    ws_write_buffer: usize,
    /// WebSocket write buffer ceiling, bytes (must exceed the write buffer
    /// plus one event message).
    #[arg(long, default_value_t = Buffers::default().ws_max_write)]
    ws_max_write_buffer: usize,
    /// Largest WebSocket message or frame accepted from a client, bytes.
    #[arg(long, default_value_t = Buffers::default().ws_max_message)]
    ws_max_message: usize,
    /// hyper's HTTP/1 read buffer ceiling per connection, bytes; also the
    /// largest request head. hyper's minimum, 8192, is also where its read
    /// buffer starts, so the default keeps it at 8 KiB.
    #[arg(long, default_value_t = Buffers::default().http_max_buf)]
    http_max_buf: usize,
    /// Reset a connection whose write makes no progress for this long (its
    /// client stopped reading), on every transport (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s")]
    write_timeout: humantime::Duration,
    /// Answer 408 and close a connection whose request body (POST /publish)
    /// has not arrived whole within this long (e.g. 10s, 2s).
    #[arg(long, default_value = "10s")]
    body_timeout: humantime::Duration,
    /// Turn on the /admin fault-injection routes; each request must carry
    /// `Authorization: Bearer TOKEN`. Prefer the environment variable: a
    /// command line is visible to every user [default: off, /admin is 404].
    #[arg(long, env = "PUSH_SERVER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Share one event stream with other push-servers through Redis Streams
    /// (redis://HOST:PORT): every server reads it, so clients may resume on
    /// any of them; all must run the same schedule (start epoch, rate,
    /// topics, payload). POST /publish is refused with a broker [default:
    /// none, this server generates its own events].
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// With --broker: this server runs the schedule and publishes every
    /// event (exactly one server of a deployment does).
    #[arg(long, requires = "broker")]
    broker_publish: bool,
    /// With --broker: how servers learn of new events: `streams` (each
    /// reads every topic's stream) or `pubsub` (each subscribes to one
    /// channel the publisher publishes on; history stays in the streams)
    /// [default: streams].
    #[arg(long, value_enum, requires = "broker", default_value = "streams")]
    broker_fanout: servers::broker::BrokerFanout,
    /// Serve the live demo page at / (the four transports side by side;
    /// `pushbench demo` starts a server for it) [default: off, / is 404].
    #[arg(long)]
    demo_page: bool,
    /// Log filter for stderr (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, default_value = "info")]
    log: String,
}

impl Args {
    fn config(&self) -> anyhow::Result<ServerConfig> {
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            bail!("--rate must be a finite number >= 0, got {}", self.rate);
        }
        if self.topics == 0 {
            bail!("--topics must be at least 1");
        }
        let mut total_topics = 0u32;
        for (i, g) in self.topic_group.iter().enumerate() {
            if self.topic_group[..i].iter().any(|h| h.name == g.name) {
                bail!(
                    "--topic-group names `{}` twice: group names must differ",
                    g.name
                );
            }
            total_topics = total_topics
                .checked_add(g.topics)
                .with_context(|| format!("--topic-group: more than {} topics in all", u32::MAX))?;
        }
        if self.history == 0 {
            bail!("--history must be at least 1");
        }
        if self.max_batch == 0 {
            bail!("--max-batch must be at least 1");
        }
        if self.keepalive.is_zero() {
            bail!("--keepalive must be more than 0");
        }
        if self.write_timeout.is_zero() {
            bail!("--write-timeout must be more than 0");
        }
        if self.body_timeout.is_zero() {
            bail!("--body-timeout must be more than 0");
        }
        if let Some(token) = &self.admin_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            // It must fit an HTTP header value after "Bearer " to be usable at all.
            bail!("--admin-token must be non-empty printable ASCII without spaces");
        }
        if self.broker.is_some() && self.start_epoch_us.is_none() {
            bail!(
                "--broker needs --start-epoch-us: every server sharing the broker must run the \
                 same schedule (e.g. --start-epoch-us $(date +%s000000) on all of them)"
            );
        }
        if let Some(ty) = &self.event_type
            && (ty.is_empty() || ty.contains(['\r', '\n']))
        {
            bail!("--event-type must be a non-empty single line");
        }
        let buffers = Buffers {
            ws_read: self.ws_read_buffer,
            ws_write: self.ws_write_buffer,
            ws_max_write: self.ws_max_write_buffer,
            ws_max_message: self.ws_max_message,
            http_max_buf: self.http_max_buf,
        };
        buffers
            .check(self.payload_bytes)
            .map_err(anyhow::Error::msg)?;
        Ok(ServerConfig {
            hub: HubConfig {
                // With groups, the schedule's own rate is unused; its topics
                // are the groups' total, which /stats reports.
                schedule: Schedule {
                    start_epoch_us: self.start_epoch_us.unwrap_or_else(protocol::now_us),
                    rate: if self.topic_group.is_empty() {
                        self.rate
                    } else {
                        0.0
                    },
                    topics: if self.topic_group.is_empty() {
                        self.topics
                    } else {
                        total_topics
                    },
                },
                groups: self.topic_group.clone(),
                payload_bytes: self.payload_bytes,
                history: self.history,
                event_type: self.event_type.clone(),
                // Set from `broker` by AppState::new.
                fed: false,
            },
            retry_ms: self.retry_ms,
            keepalive: *self.keepalive,
            max_longpoll_timeout: *self.max_longpoll_timeout,
            max_batch: self.max_batch,
            stream_max_age: self.stream_max_age.map(Duration::from),
            buffers,
            tcp_listen: self.tcp_listen,
            write_timeout: *self.write_timeout,
            body_timeout: *self.body_timeout,
            admin_token: self.admin_token.clone(),
            fanout: self.fanout,
            demo_page: self.demo_page,
            broker: self
                .broker
                .clone()
                .map(|url| servers::broker::BrokerConfig {
                    url,
                    publish: self.broker_publish,
                    fanout: self.broker_fanout,
                }),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .with_context(|| format!("bad --log filter {:?}", args.log))?,
        )
        .init();
    let config = args.config()?;
    let listeners = Listeners::bind(&args.listen, &config).await?;
    let addr = listeners.http.local_addr()?;

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", listeners.ready_line()?)?;
        out.flush()?;
    }
    tracing::info!(
        %addr,
        rate = args.rate,
        topics = args.topics,
        open_files_limit = servers::limits::open_file_limit(),
        "push-server ready"
    );
    servers::serve(listeners, config, shutdown).await?;
    tracing::info!("push-server stopped");
    Ok(())
}

/// Parses `--topic-group NAME:COUNT:RATE[:EVENT_TYPE]`.
fn parse_topic_group(spec: &str) -> Result<TopicGroup, String> {
    let bad = |why: &str| {
        format!("expected NAME:COUNT:RATE[:EVENT_TYPE] (e.g. idle:1900:0.033), {why}, got {spec:?}")
    };
    let mut parts = spec.split(':');
    let (Some(name), Some(count), Some(rate), event_type, None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad("three or four fields"));
    };
    let event_type = match event_type {
        None => None,
        Some(t)
            if !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            Some(t.to_string())
        }
        Some(_) => return Err(bad("EVENT_TYPE of letters, digits, `-`, `_` or `.`")),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if !name_ok {
        return Err(bad("NAME of letters, digits, `-` or `_`"));
    }
    let topics: u32 = count
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| bad("COUNT at least 1"))?;
    let rate: f64 = rate
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| bad("RATE a finite number >= 0"))?;
    Ok(TopicGroup {
        name: name.to_string(),
        topics,
        rate,
        event_type,
    })
}

/// Cancels `shutdown` at the first SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_groups_parse_and_bad_ones_say_what_is_expected() {
        let g = parse_topic_group("idle:1900:0.033").unwrap();
        assert_eq!((g.name.as_str(), g.topics, g.rate), ("idle", 1900, 0.033));
        assert_eq!(g.event_type, None);
        let g = parse_topic_group("status:1:0.5:status").unwrap();
        assert_eq!(g.event_type.as_deref(), Some("status"));
        for bad in [
            "idle:0:1",
            "idle:2",
            "i dle:2:1",
            "idle:2:-1",
            "idle:2:1:a b",
            "idle:2:1:",
            "idle:2:1:a:b",
            ":2:1",
        ] {
            let e = parse_topic_group(bad).unwrap_err();
            assert!(e.contains("NAME:COUNT:RATE") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn topic_groups_replace_topics_and_rate_and_must_differ_by_name() {
        let args = Args::try_parse_from([
            "push-server",
            "--topic-group",
            "idle:3:0.5",
            "--topic-group",
            "hot:1:20",
        ])
        .unwrap();
        let c = args.config().unwrap();
        assert_eq!(c.hub.schedule.topics, 4, "the groups' total");
        assert_eq!(c.hub.groups.len(), 2);
        assert!(
            Args::try_parse_from(["push-server", "--topic-group", "a:1:1", "--rate", "3"]).is_err()
        );
        let twice = Args::try_parse_from([
            "push-server",
            "--topic-group",
            "a:1:1",
            "--topic-group",
            "a:2:1",
        ])
        .unwrap();
        let e = twice.config().unwrap_err().to_string();
        assert!(e.contains("`a` twice"), "{e}");
    }
}
