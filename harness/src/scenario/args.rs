//! The scenario flags of `pushbench run` and `pushbench capacity`
//! (`--scenario`, `--clients`, `--rate`…): a scenario file or the default,
//! with the flags applied on top.

use crate::scenario::Scenario;
use crate::scenario::ScenarioPatch;
use crate::scenario::contender::Contender;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// The scenario flags shared by `run` and `capacity`; each overrides the scenario's value.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenario file (TOML); keys it leaves out keep the default scenario's values
    /// [default: the embedded default scenario, scenarios/default.toml].
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Transports to measure, in order, comma-separated: short-poll, long-poll, sse, ws,
    /// and tcp (the raw-TCP floor; put it last: reports show ratios to it), or
    /// names of targets the scenario declares under [targets]
    /// [default: short-poll,long-poll,sse,ws,tcp].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub transports: Option<Vec<Contender>>,
    /// Runs of each transport (a count); repetitions alternate the order (ABCD DCBA …) and
    /// the report shows the median and min–max of every figure [default: 1].
    #[arg(long, value_name = "K")]
    pub repeat: Option<u32>,
    /// Placement: auto (server on the first core, fleet on the others), none,
    /// or server:0,fleet:1 (cores as N, N-M or N+M) [default: auto].
    #[arg(long, value_name = "SPEC")]
    pub pin: Option<String>,
    /// Simulated clients, one connection each [default: 100].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub clients: Option<usize>,
    /// Events per second per topic, fractional allowed, 0 = none [default: 10].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Size of each event's data filler, in bytes [default: 64].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub payload_bytes: Option<usize>,
    /// Length of the measured window, e.g. 10s, 1m [default: 10s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Time the fleet runs before the window opens, e.g. 3s, 500ms [default: 3s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Short polling: each client's request interval, e.g. 1s, 200ms [default: 1s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub poll_interval: Option<Duration>,
    /// Number of topics t0..t{N-1}; client i subscribes to t{i % N} [default: 1].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub topics: Option<u32>,
    /// push-server's fan-out to SSE, WebSocket and raw-TCP connections:
    /// direct (the appender writes each event to every caught-up socket in
    /// one loop) or tasks (every event wakes every subscriber's task)
    /// [default: direct].
    #[arg(long, value_name = "MODE")]
    pub fanout: Option<protocol::Fanout>,
    /// Chat: how many of the clients also send messages on their topic;
    /// needs --rate 0 and no tcp transport [default: 0, none].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub senders: Option<usize>,
    /// Chat: messages per second per sender, fractional allowed [default: 1].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub send_rate: Option<f64>,
    /// A fault to inject into every transport's run, repeatable; replaces the
    /// scenario's `faults`: KIND@AT[:ARG] with AT from the window's start,
    /// e.g. drop@4s:0.5, restart@8s:1s, storm@12s [default: the scenario's].
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// Client habits, replacing the scenario's [behaviour]: `polite`, or
    /// ping=DUR (WebSocket pings), pause=FOR/EVERY (reading pauses, every
    /// transport), junk=DUR (unexpected WebSocket messages), comma-separated,
    /// e.g. ping=2s,pause=3s/10s [default: the scenario's; polite].
    #[arg(long, value_name = "SPEC")]
    pub behaviour: Option<String>,
    /// The link between the fleet and the server: loopback, lan, wifi, 4g,
    /// 3g or lossy-4g, optionally with overrides (4g,loss=2%); anything but
    /// loopback relays every client through an emulated link [default: the
    /// scenario's; loopback].
    #[arg(long, value_name = "PROFILE")]
    pub link: Option<String>,
    /// Round-trip time of the link, e.g. 50ms [default: the link profile's].
    #[arg(long, value_name = "DUR")]
    pub rtt: Option<String>,
    /// Jitter of each one-way delay (± this, never reordering), e.g. 10ms
    /// [default: the link profile's].
    #[arg(long, value_name = "DUR")]
    pub jitter: Option<String>,
    /// Bandwidth per client, DOWN/UP or one value for both, e.g. 10mbit/5mbit
    /// [default: the link profile's].
    #[arg(long, value_name = "BW")]
    pub bandwidth: Option<String>,
    /// Share of TCP segments lost (each resent one RTO later), e.g. 1%
    /// [default: the link profile's].
    #[arg(long, value_name = "P")]
    pub loss: Option<String>,
    /// Which emulator carries the link: auto (the kernel's netem and tbf
    /// where it has them, else the relay), relay or kernel [default: the
    /// scenario's; auto].
    #[arg(long, value_name = "EMULATOR")]
    pub link_emulator: Option<crate::link::Emulator>,
    /// Headless Chromium pages per transport beside the fleet, each a client
    /// using the browser's own fetch, EventSource or WebSocket (none for
    /// tcp); needs Node.js 20+ and Chromium [default: the scenario's; 0].
    #[arg(long, value_name = "N")]
    pub browser_clients: Option<usize>,
    /// push-server processes sharing one event stream through the broker;
    /// client i connects to server i % N [default: the scenario's; 1].
    #[arg(long, value_name = "N")]
    pub servers: Option<usize>,
    /// The broker between servers: none, redis (servers read Redis
    /// Streams) or redis-pubsub (servers subscribe to one channel; history
    /// from the streams); pushbench starts redis-server itself [default:
    /// the scenario's; none].
    #[arg(long, value_name = "BROKER")]
    pub broker: Option<crate::scenario::broker::Broker>,
    /// Fleet agents: N `pushbench agent` processes, client i in agent i % N,
    /// their histograms merged exactly; 0 runs the fleet in this process
    /// [default: the scenario's; 0].
    #[arg(long, value_name = "N")]
    pub agents: Option<usize>,
}

impl ScenarioArgs {
    /// The scenario flags given, as `--flag value` strings.
    /// A mixed scenario's groups decide the fleet: the flags that would
    /// override it are refused, not guessed at (which group would
    /// `--clients 500` resize?).
    fn refuse_group_overrides(&self) -> anyhow::Result<()> {
        let set = [
            ("--transports", "transport", self.transports.is_some()),
            ("--clients", "clients", self.clients.is_some()),
            ("--topics", "topics", self.topics.is_some()),
            ("--rate", "rate", self.rate.is_some()),
            ("--senders", "senders", self.senders.is_some()),
            ("--send-rate", "send_rate", self.send_rate.is_some()),
            ("--fault", "faults", !self.faults.is_empty()),
        ];
        if let Some((flag, key, _)) = set.iter().find(|(_, _, on)| *on) {
            anyhow::bail!(
                "{flag} cannot be used with a mixed scenario ([[group]]): each group sets its \
                 own `{key}` in the file (faults are not measured in mixed runs)"
            );
        }
        Ok(())
    }

    /// A validation error, with the scenario file's name and line when the
    /// value it names came from the file (not from a flag).
    pub fn locate(&self, error: anyhow::Error) -> anyhow::Error {
        let Some(path) = &self.scenario else {
            return error;
        };
        let message = error.to_string();
        let from_flag = self.overrides().iter().any(|o| {
            let flag = o.split_whitespace().next().unwrap_or("");
            let key = flag.trim_start_matches("--").replace('-', "_");
            message.starts_with(&format!("`{key}`"))
        });
        match std::fs::read_to_string(path) {
            Ok(text) if !from_flag => crate::scenario::lines::locate(path, &text, error),
            _ => error,
        }
    }

    fn overrides(&self) -> Vec<String> {
        let dur = |d: &Option<Duration>| d.map(crate::scenario::check::fmt_duration);
        [
            (
                "--transports",
                self.transports
                    .as_ref()
                    .map(|t| t.iter().map(Contender::name).collect::<Vec<_>>().join(",")),
            ),
            ("--repeat", self.repeat.map(|v| v.to_string())),
            ("--pin", self.pin.clone()),
            ("--clients", self.clients.map(|v| v.to_string())),
            ("--rate", self.rate.map(|v| v.to_string())),
            ("--payload-bytes", self.payload_bytes.map(|v| v.to_string())),
            ("--duration", dur(&self.duration)),
            ("--warmup", dur(&self.warmup)),
            ("--poll-interval", dur(&self.poll_interval)),
            ("--topics", self.topics.map(|v| v.to_string())),
            ("--fanout", self.fanout.map(|v| v.as_str().to_string())),
            ("--senders", self.senders.map(|v| v.to_string())),
            ("--send-rate", self.send_rate.map(|v| v.to_string())),
            (
                "--fault",
                (!self.faults.is_empty()).then(|| self.faults.join(" --fault ")),
            ),
            ("--behaviour", self.behaviour.clone()),
            ("--link", self.link.clone()),
            ("--rtt", self.rtt.clone()),
            ("--jitter", self.jitter.clone()),
            ("--bandwidth", self.bandwidth.clone()),
            ("--loss", self.loss.clone()),
            (
                "--browser-clients",
                self.browser_clients.map(|v| v.to_string()),
            ),
            ("--servers", self.servers.map(|v| v.to_string())),
            ("--broker", self.broker.map(|b| b.as_str().to_string())),
            ("--agents", self.agents.map(|v| v.to_string())),
            (
                "--link-emulator",
                self.link_emulator.map(|e| format!("{e:?}").to_lowercase()),
            ),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.map(|v| format!("{flag} {v}")))
        .collect()
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write durations like 3s, 500ms, 1m)"))
}

impl ScenarioArgs {
    /// The scenario these flags describe: the file (or the default), flags applied.
    /// Not yet validated.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut s = match &self.scenario {
            Some(path) => Scenario::load(path)?,
            None => Scenario::default(),
        };
        if s.is_mixed() {
            self.refuse_group_overrides()?;
        }
        let overrides = self.overrides();
        if !overrides.is_empty() {
            // The description was written for the scenario as it stood; say what changed.
            let note = format!("Overridden on the command line: {}.", overrides.join(" "));
            s.description = if s.description.is_empty() {
                note
            } else {
                format!("{} {note}", s.description)
            };
        }
        s.apply(ScenarioPatch {
            transports: self.transports.clone(),
            repeat: self.repeat,
            pin: self.pin.clone(),
            clients: self.clients,
            rate: self.rate,
            payload_bytes: self.payload_bytes,
            duration: self.duration,
            warmup: self.warmup,
            poll_interval: self.poll_interval,
            topics: self.topics,
            fanout: self.fanout,
            senders: self.senders,
            send_rate: self.send_rate,
            faults: if self.faults.is_empty() {
                None
            } else {
                Some(
                    self.faults
                        .iter()
                        .map(|f| crate::scenario::Fault::parse_spec(f))
                        .collect::<anyhow::Result<_>>()?,
                )
            },
            behaviour: self
                .behaviour
                .as_deref()
                .map(crate::scenario::behaviour::Behaviour::parse_spec)
                .transpose()?,
            link: self.link_flags(&s.link),
            link_emulator: self.link_emulator,
            browser_clients: self.browser_clients,
            servers: self.servers,
            broker: self.broker,
            agents: self.agents,
            ..ScenarioPatch::default()
        });
        Ok(s)
    }

    /// The link the flags ask for: `--link` (or the scenario's `current`)
    /// with `--rtt`, `--jitter`, `--bandwidth` and `--loss` appended as
    /// overrides; `None` when no link flag is given.
    fn link_flags(&self, current: &str) -> Option<String> {
        let overrides: Vec<String> = [
            ("rtt", &self.rtt),
            ("jitter", &self.jitter),
            ("bandwidth", &self.bandwidth),
            ("loss", &self.loss),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
        if self.link.is_none() && overrides.is_empty() {
            return None;
        }
        let mut spec = self.link.clone().unwrap_or_else(|| current.to_string());
        for o in overrides {
            spec.push(',');
            spec.push_str(&o);
        }
        Some(spec)
    }
}
