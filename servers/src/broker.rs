//! `--broker redis://HOST:PORT`: several push-servers share one event
//! stream through Redis Streams, so a client may resume on any of them.
//!
//! - **One publisher** (`--broker-publish`) runs the schedule and adds each
//!   event once to its topic's stream (`XADD pushbench:{start epoch}:t{n}
//!   {id}-0 at … data …`, trimmed to about the history): the stream entry's
//!   id is the event's id.
//! - **Every server** (the publisher too) reads every topic's stream
//!   (`XREAD BLOCK`) and appends what it reads to its own log with that id
//!   ([`Hub::append_fed`]), then fans it out as its own generator would.
//!   At start it fills its history from the streams (`XRANGE`), so a
//!   client that reconnects to a server started later still resumes with
//!   `Last-Event-ID` / `after=` and gets no gap and no duplicate.
//!
//! With `--broker-fanout pubsub` the history stays in the streams, but the
//! publisher also `PUBLISH`es each event once on one channel
//! (`pushbench:{start epoch}:events`) and every server `SUBSCRIBE`s to it
//! instead of reading the streams: Redis then pushes each event to N
//! subscribers rather than answering N readers' `XREAD` over every
//! topic's stream. A subscriber that loses messages (a reconnect) sees the
//! gap at the next event and fills it from the stream, as with `XREAD`.
//!
//! Every server must run the same schedule (same start epoch, rate, topics
//! and payload): the keys carry the start epoch, so two deployments on one
//! Redis do not mix. `POST /publish` is refused with a broker (it would
//! need ids assigned across servers). Both sides use their own blocking
//! connection on a thread of their own, like the generator.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use redis::Value;
use tokio_util::sync::CancellationToken;

use crate::hub::{Fed, Hub};

/// Per stream (by its index in the keys), its entries `(id, at_us, data)`.
type Entries = Vec<(usize, Vec<(u64, u64, String)>)>;

/// How the server uses the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `redis://HOST:PORT`.
    pub url: String,
    /// This server runs the schedule and publishes every event.
    pub publish: bool,
    /// How servers learn of new events.
    pub fanout: BrokerFanout,
}

/// How servers learn of new events from the broker (`--broker-fanout`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerFanout {
    /// Each server reads every topic's stream (`XREAD BLOCK`).
    #[default]
    Streams,
    /// Each server subscribes to one channel the publisher `PUBLISH`es
    /// every event on; the streams keep the history.
    Pubsub,
}

/// The channel of every event, for `--broker-fanout pubsub`.
pub fn channel(start_epoch_us: u64) -> String {
    format!("pushbench:{start_epoch_us}:events")
}

/// Bound on connecting to Redis and on each command but the blocking read.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one `XREAD` blocks (also how soon the reader notices shutdown).
const BLOCK_MS: u64 = 200;
/// Entries one `XREAD` returns at most.
const READ_COUNT: usize = 1000;
/// Wait before reconnecting after a broker error.
const RETRY: Duration = Duration::from_millis(200);

/// The stream of `topic` for a schedule starting at `start_epoch_us`.
pub fn stream_key(start_epoch_us: u64, topic: u32) -> String {
    format!("pushbench:{start_epoch_us}:t{topic}")
}

fn connect(url: &str) -> anyhow::Result<redis::Connection> {
    let client = redis::Client::open(url).with_context(|| format!("bad broker URL {url:?}"))?;
    let conn = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .with_context(|| format!("cannot reach the broker at {url}"))?;
    conn.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    Ok(conn)
}

/// Connects (failing at once, with the reason, when Redis cannot be
/// reached), fills every topic's history from its stream, then starts the
/// reader thread and, with `publish`, the publisher thread.
pub fn spawn(
    hub: Arc<Hub>,
    cfg: &BrokerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let epoch = hub.config().schedule.start_epoch_us;
    let keys: Vec<String> = (0..hub.topics()).map(|t| stream_key(epoch, t)).collect();
    let mut conn = connect(&cfg.url)?;
    let history = hub.config().history.max(1) as u64;
    for (t, key) in keys.iter().enumerate() {
        let next = hub.next_id(t as u32);
        if next <= 1 {
            continue;
        }
        let from = next.saturating_sub(history).max(1);
        let events = range(&mut conn, key, from, next - 1)?;
        let n = hub.backfill(t as u32, &events);
        tracing::debug!(topic = t, taken = n, "history from the broker");
    }
    let mut threads = Vec::new();
    {
        let (hub, url, keys, shutdown) =
            (hub.clone(), cfg.url.clone(), keys.clone(), shutdown.clone());
        let fanout = cfg.fanout;
        threads.push(
            std::thread::Builder::new()
                .name("broker-reader".into())
                .spawn(move || match fanout {
                    BrokerFanout::Streams => read_loop(&hub, &url, &keys, &shutdown),
                    BrokerFanout::Pubsub => subscribe_loop(&hub, &url, &keys, &shutdown),
                })?,
        );
    }
    if cfg.publish {
        let url = cfg.url.clone();
        let channel = (cfg.fanout == BrokerFanout::Pubsub).then(|| channel(epoch));
        threads.push(
            std::thread::Builder::new()
                .name("broker-publisher".into())
                .spawn(move || publish_loop(&hub, &url, (&keys, channel.as_deref()), &shutdown))?,
        );
    }
    Ok(threads)
}

/// The publisher: the schedule's due slots, each added once to its stream
/// and, with a `channel`, published once on it (`topic id at data`).
fn publish_loop(
    hub: &Hub,
    url: &str,
    (keys, channel): (&[String], Option<&str>),
    shutdown: &CancellationToken,
) {
    let payload = protocol::encode::payload(hub.config().payload_bytes);
    let maxlen = hub.config().history.max(1000);
    let mut conn: Option<redis::Connection> = None;
    let mut last_warn: Option<Instant> = None;
    hub.run_schedule(shutdown, |due| {
        let mut pipe = redis::pipe();
        for &(first, slot) in due {
            let topic = (first + slot.topic) as usize;
            pipe.cmd("XADD")
                .arg(&keys[topic])
                .arg("MAXLEN")
                .arg("~")
                .arg(maxlen)
                .arg(format!("{}-0", slot.id))
                .arg("at")
                .arg(slot.at_us)
                .arg("data")
                .arg(&payload)
                .ignore();
            if let Some(ch) = channel {
                pipe.cmd("PUBLISH")
                    .arg(ch)
                    .arg(format!("{topic} {} {} {payload}", slot.id, slot.at_us))
                    .ignore();
            }
        }
        let sent = (|| -> anyhow::Result<()> {
            if conn.is_none() {
                conn = Some(connect(url)?);
            }
            let c = conn.as_mut().ok_or_else(|| anyhow!("no connection"))?;
            pipe.query::<()>(c)?;
            Ok(())
        })();
        if let Err(e) = sent {
            // The events of this batch are lost to every server: Redis was
            // not there to take them. Clients see the gap and count it.
            conn = None;
            if last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                tracing::warn!("broker: publishing {} event(s) failed: {e:#}", due.len());
                last_warn = Some(Instant::now());
            }
        }
    });
}

/// The reader: every topic's new entries, appended in order.
fn read_loop(hub: &Hub, url: &str, keys: &[String], shutdown: &CancellationToken) {
    let mut conn: Option<redis::Connection> = None;
    let mut last_warn: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        let got = (|| -> anyhow::Result<Entries> {
            if conn.is_none() {
                conn = Some(connect(url)?);
            }
            let c = conn.as_mut().ok_or_else(|| anyhow!("no connection"))?;
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS");
            for k in keys {
                cmd.arg(k);
            }
            for t in 0..keys.len() {
                cmd.arg(format!("{}-0", hub.next_id(t as u32).saturating_sub(1)));
            }
            let reply: Value = cmd.query(c)?;
            parse_xread(&reply, keys)
        })();
        match got {
            Ok(streams) => {
                for (topic, events) in streams {
                    for (id, at_us, data) in events {
                        feed(
                            hub,
                            conn.as_mut(),
                            &keys[topic],
                            topic as u32,
                            (id, at_us, &data),
                        );
                    }
                }
            }
            Err(e) => {
                conn = None;
                if last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!("broker: reading failed: {e:#}");
                    last_warn = Some(Instant::now());
                }
                std::thread::sleep(RETRY);
            }
        }
    }
}

/// The subscriber (`--broker-fanout pubsub`): every event published on the
/// channel, appended in order; gaps are filled from the streams over a
/// second connection.
fn subscribe_loop(hub: &Hub, url: &str, keys: &[String], shutdown: &CancellationToken) {
    let channel = channel(hub.config().schedule.start_epoch_us);
    let mut last_warn: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        let run = (|| -> anyhow::Result<()> {
            let mut sub = connect(url)?;
            let mut ranges = connect(url)?;
            let mut pubsub = sub.as_pubsub();
            pubsub.subscribe(&channel)?;
            pubsub.set_read_timeout(Some(Duration::from_millis(BLOCK_MS)))?;
            while !shutdown.is_cancelled() {
                let msg = match pubsub.get_message() {
                    Ok(m) => m,
                    Err(e) if e.is_timeout() => continue,
                    Err(e) => return Err(e.into()),
                };
                let text = String::from_utf8_lossy(msg.get_payload_bytes());
                let Some((topic, id, at_us, data)) = parse_published(&text) else {
                    tracing::warn!("broker: an unreadable message on {channel}");
                    continue;
                };
                if let Some(key) = keys.get(topic as usize) {
                    feed(hub, Some(&mut ranges), key, topic, (id, at_us, data));
                }
            }
            Ok(())
        })();
        if let Err(e) = run {
            if last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                tracing::warn!("broker: subscribing failed: {e:#}");
                last_warn = Some(Instant::now());
            }
            std::thread::sleep(RETRY);
        }
    }
}

/// A published event, `topic id at data`.
fn parse_published(text: &str) -> Option<(u32, u64, u64, &str)> {
    let mut it = text.splitn(4, ' ');
    let topic = it.next()?.parse().ok()?;
    let id = it.next()?.parse().ok()?;
    let at = it.next()?.parse().ok()?;
    Some((topic, id, at, it.next().unwrap_or("")))
}

/// Appends one event, first filling a gap before it from the stream. What
/// the stream no longer has (a broker that restarted empty) is skipped: the
/// log restarts at the first event that is still there, and clients count
/// the gap.
fn feed(
    hub: &Hub,
    conn: Option<&mut redis::Connection>,
    key: &str,
    topic: u32,
    (id, at_us, data): (u64, u64, &str),
) {
    if let Fed::Gap { expected } = hub.append_fed(topic, id, at_us, data) {
        let missing = conn
            .and_then(|c| range(c, key, expected, id - 1).ok())
            .unwrap_or_default();
        for (mid, mat, mdata) in missing
            .iter()
            .map(|(i, a, d)| (*i, *a, d.as_str()))
            .chain([(id, at_us, data)])
        {
            if let Fed::Gap { expected } = hub.append_fed(topic, mid, mat, mdata) {
                tracing::warn!(
                    topic,
                    from = expected,
                    to = mid - 1,
                    "broker: events no longer in the stream; clients will see the gap"
                );
                hub.restart_fed(topic, mid);
                hub.append_fed(topic, mid, mat, mdata);
            }
        }
    }
}

/// `XRANGE key from-0 to-0`: the entries with ids `from..=to`.
fn range(
    conn: &mut redis::Connection,
    key: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<(u64, u64, String)>> {
    let reply: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg(format!("{from}-0"))
        .arg(format!("{to}-0"))
        .query(conn)
        .with_context(|| format!("XRANGE {key}"))?;
    match reply {
        Value::Array(entries) => entries.iter().map(parse_entry).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(anyhow!("XRANGE answered {other:?}")),
    }
}

fn text(v: &Value) -> anyhow::Result<String> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        other => Err(anyhow!("expected a string, got {other:?}")),
    }
}

/// One stream entry `[id, [field, value, …]]` as `(id, at_us, data)`.
fn parse_entry(v: &Value) -> anyhow::Result<(u64, u64, String)> {
    let Value::Array(parts) = v else {
        return Err(anyhow!("a stream entry that is not an array: {v:?}"));
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return Err(anyhow!("a stream entry of an unexpected shape: {v:?}"));
    };
    let id = text(id)?;
    let id: u64 = id
        .split_once('-')
        .and_then(|(ms, _)| ms.parse().ok())
        .ok_or_else(|| anyhow!("a stream id that is not N-0: {id}"))?;
    let (mut at, mut data) = (None, None);
    for pair in fields.chunks(2) {
        if let [k, val] = pair {
            match text(k)?.as_str() {
                "at" => at = text(val)?.parse().ok(),
                "data" => data = Some(text(val)?),
                _ => {}
            }
        }
    }
    Ok((
        id,
        at.ok_or_else(|| anyhow!("entry {id} has no `at`"))?,
        data.ok_or_else(|| anyhow!("entry {id} has no `data`"))?,
    ))
}

/// An `XREAD` reply: per stream (by its index in `keys`), its entries.
fn parse_xread(v: &Value, keys: &[String]) -> anyhow::Result<Entries> {
    let streams: Vec<(Value, Value)> = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Ok((kv[0].clone(), kv[1].clone())),
                other => Err(anyhow!("an XREAD stream of an unexpected shape: {other:?}")),
            })
            .collect::<anyhow::Result<_>>()?,
        Value::Map(kv) => kv.clone(),
        other => return Err(anyhow!("XREAD answered {other:?}")),
    };
    streams
        .iter()
        .map(|(k, entries)| {
            let key = text(k)?;
            let topic = keys
                .iter()
                .position(|x| *x == key)
                .ok_or_else(|| anyhow!("XREAD answered an unknown stream {key}"))?;
            let Value::Array(entries) = entries else {
                return Err(anyhow!("XREAD entries of an unexpected shape"));
            };
            Ok((
                topic,
                entries
                    .iter()
                    .map(parse_entry)
                    .collect::<anyhow::Result<_>>()?,
            ))
        })
        .collect()
}
