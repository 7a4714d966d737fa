//! A mixed run's groups as scenarios: each group's clients alone are a
//! one-transport scenario ([`Group::scenario`]), built and checked by the
//! same rules as any other.

use anyhow::bail;
use protocol::TransportKind;

use crate::scenario::Scenario;
use crate::scenario::group::Group;

impl Group {
    /// The scenario of this group's clients alone: `base` with the group's
    /// transport, fleet, topics, rate and chat keys. Fleets, expected counts
    /// and chat checks are built from it exactly as for a one-transport run.
    pub fn scenario(&self, base: &Scenario) -> Scenario {
        let mut s = base.clone();
        s.group = Vec::new();
        s.transports = vec![self.transport.into()];
        s.clients = self.clients;
        s.topics = self.topics;
        s.rate = self.rate;
        s.senders = self.senders;
        s.send_rate = self.send_rate;
        if let Some(b) = &self.behaviour {
            s.behaviour = b.clone();
        }
        s
    }

    /// The checks of one group (`i` is its place in `[[group]]`).
    pub(crate) fn validate(&self, i: usize, fd_limit: Option<u64>) -> anyhow::Result<()> {
        let key = |k: &str| format!("`group[{i}].{k}`");
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !name_ok {
            bail!(
                "`group[{i}].name` must be 1 to 32 letters, digits, `-` or `_`, got {:?}",
                self.name
            );
        }
        if self.transport == TransportKind::Tcp {
            bail!(
                "{} must be one of short-poll, long-poll, sse, ws (the raw-TCP floor is a \
                 reference, not something clients of a deployment speak), got tcp (group `{}`)",
                key("transport"),
                self.name
            );
        }
        if self.clients < 1 {
            bail!(
                "{} must be at least 1, got 0 (group `{}`)",
                key("clients"),
                self.name
            );
        }
        // The group's own values, checked by the one-transport rules with its key names.
        let mut alone = Group::scenario(self, &Scenario::default());
        alone.resolve_topics();
        alone.validate_with_fd_limit(fd_limit).map_err(|e| {
            // The one-transport message names the top-level key: name the group's.
            let msg = e.to_string().replacen('`', &format!("`group[{i}]."), 1);
            anyhow::anyhow!("{msg} (group `{}`)", self.name)
        })?;
        Ok(())
    }
}
