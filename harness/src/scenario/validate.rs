//! Checking a scenario before anything runs: every key against its range,
//! the fleet against the open-file limit, sweeps point by point. Each
//! message names the key, the allowed range and the value given.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, bail};
use protocol::TransportKind;

use crate::scenario::check::{check_name, fmt_duration, positive};
use crate::scenario::{Contender, MAX_BROWSER_CLIENTS, Scenario, max_clients};

impl Scenario {
    /// Checks every value; `fd_limit` is the open-file limit the fleet must
    /// fit in (`None` when unknown: no client bound beyond sanity).
    ///
    /// The message names the key, the allowed range and the value given.
    ///
    /// A sweep is checked list by list, then point by point: every point must
    /// be a valid scenario (fit the open-file limit, say), and the first that
    /// is not is named, before anything runs.
    pub fn validate_with_fd_limit(&self, fd_limit: Option<u64>) -> anyhow::Result<()> {
        self.link_spec()?;
        if self.browser_clients > MAX_BROWSER_CLIENTS {
            bail!(
                "`browser_clients` must be between 0 and {}, got {} (each page is a Chromium \
                 renderer process)",
                MAX_BROWSER_CLIENTS,
                self.browser_clients
            );
        }
        if self.browser_clients > 0 && self.is_mixed() {
            bail!("`browser_clients` cannot be used with `[[group]]` (mixed runs) yet");
        }
        if self.is_mixed() {
            self.validate_groups(fd_limit)?;
        }
        self.validate_scale()?;
        if self.sweep.is_active() {
            self.sweep.validate()?;
            let points = self.points();
            let n = points.len();
            for p in &points {
                self.at(p)
                    .validate_with_fd_limit(fd_limit)
                    .with_context(|| format!("sweep point {} of {n} ({p})", p.index))?;
            }
            return Ok(());
        }
        check_name(&self.name)?;
        self.behaviour.validate("behaviour", self.idle_timeout)?;
        if self.transports.is_empty() {
            let names: Vec<&str> = TransportKind::ALL.iter().map(|t| t.as_str()).collect();
            bail!(
                "`transports` is empty: name at least one of {} (or a declared target)",
                names.join(", ")
            );
        }
        let mut seen = BTreeSet::new();
        for t in &self.transports {
            if !seen.insert(t) {
                bail!("`transports` names `{t}` twice: each transport runs at most once");
            }
            if let Contender::Target(name) = t
                && !self.targets.contains_key(name)
            {
                let builtins: Vec<&str> = TransportKind::ALL.iter().map(|t| t.as_str()).collect();
                let declared: Vec<&str> = self.targets.keys().map(String::as_str).collect();
                bail!(
                    "`transports` names `{name}`, which is neither a built-in transport ({}) \
                     nor a declared target ({})",
                    builtins.join(", "),
                    if declared.is_empty() {
                        "none declared under [targets]".to_string()
                    } else {
                        declared.join(", ")
                    }
                );
            }
        }
        for (name, target) in &self.targets {
            target.validate(name)?;
        }
        let max_clients = max_clients(fd_limit).saturating_mul(self.processes() as u64);
        if self.clients < 1 || self.clients as u64 > max_clients {
            let why = match fd_limit {
                Some(l) => format!(
                    " (the open-file limit is {l} per process; one file per client plus \
                     headroom{})",
                    self.more_processes_hint()
                ),
                None => String::new(),
            };
            bail!(
                "`clients` must be between 1 and {max_clients}{why}, got {}",
                self.clients
            );
        }
        if self.topics < 1 || self.topics > 1_000_000 {
            bail!(
                "`topics` must be between 1 and 1000000 (0 in a scenario file means one per \
                 client), got {}",
                self.topics
            );
        }
        if self.repeat < 1 || self.repeat > 100 {
            bail!("`repeat` must be between 1 and 100, got {}", self.repeat);
        }
        self.pin_spec()?;
        if !self.rate.is_finite() || self.rate < 0.0 || self.rate > 1_000_000.0 {
            bail!(
                "`rate` (events/s per topic) must be a number between 0 and 1000000, got {}",
                self.rate
            );
        }
        if self.payload_bytes > 1 << 20 {
            bail!(
                "`payload_bytes` must be between 0 and 1048576 (1 MiB), got {}",
                self.payload_bytes
            );
        }
        if self.history < 1 || self.history > 10_000_000 {
            bail!(
                "`history` must be between 1 and 10000000 events, got {}",
                self.history
            );
        }
        if let Some(ty) = &self.event_type
            && (ty.is_empty() || ty.chars().any(|c| c.is_control()))
        {
            bail!("`event_type` must be a non-empty name without control characters, got {ty:?}");
        }
        positive("duration", self.duration)?;
        positive("poll_interval", self.poll_interval)?;
        positive("longpoll_timeout", self.longpoll_timeout)?;
        positive("connect_timeout", self.connect_timeout)?;
        positive("keepalive", self.keepalive)?;
        for (key, d) in [
            ("warmup", self.warmup),
            ("duration", self.duration),
            ("poll_interval", self.poll_interval),
            ("longpoll_timeout", self.longpoll_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reconnect_delay", self.reconnect_delay),
            ("idle_timeout", self.idle_timeout),
            ("keepalive", self.keepalive),
        ] {
            // A day bounds every wait of a run and keeps µs arithmetic far from overflow.
            if d > Duration::from_secs(86_400) {
                bail!("`{key}` must be at most 24h, got {}", fmt_duration(d));
            }
        }
        if self.idle_timeout <= self.keepalive {
            bail!(
                "`idle_timeout` ({}) must be longer than `keepalive` ({}), or idle streams \
                 would be torn down between keep-alives",
                fmt_duration(self.idle_timeout),
                fmt_duration(self.keepalive)
            );
        }
        if !self.connect_rate.is_finite() || self.connect_rate <= 0.0 {
            bail!(
                "`connect_rate` (connections/s) must be a number above 0, got {}",
                self.connect_rate
            );
        }
        for (i, f) in self.faults.iter().enumerate() {
            f.validate(i, self.duration)?;
        }
        if self.faults.windows(2).any(|w| w[1].at < w[0].at) {
            bail!("`faults` must be in order of `at`");
        }
        self.validate_chat()?;
        if self.retry_ms > 86_400_000 {
            bail!(
                "`retry_ms` must be between 0 and 86400000, got {}",
                self.retry_ms
            );
        }
        Ok(())
    }
}
