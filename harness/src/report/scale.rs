//! "Beyond one process": how an entry was spread (servers behind a broker,
//! fleet agents), what the broker cost per event, and how well the
//! agents' clocks agree with the coordinator's.

use crate::report::format::escape_md;
use crate::report::metrics::cpu_us_per_event;
use crate::results::{RunFile, TransportResult};
use std::fmt::Write as _;

/// The section: one row per entry spread over processes (none: nothing).
pub(crate) fn scale_section(md: &mut String, run: &RunFile) {
    if !run.transports.iter().any(|t| t.scale.is_some()) {
        return;
    }
    md.push_str("## Beyond one process\n\n");
    md.push_str(
        "Servers behind a broker share one event stream: one of them publishes each event once, \
         every server fans out what it reads from the broker, and client *i* connects to server \
         *i mod N* (and resumes on the next one when its server goes). The entry's server \
         figures are every push-server's, summed; the broker's are its own. *Broker CPU / event* \
         is the broker's CPU over the window per event the schedule published in it. Fleet \
         agents run client *i* in agent *i mod N*; their histograms are added bucket by bucket \
         (percentiles are never averaged), and each agent's clock offset to the coordinator is \
         measured at start (*clock*: the largest |offset| + bound).\n\n",
    );
    md.push_str(
        "| transport | servers | broker | events published | broker CPU / event | server CPU / delivery | broker memory | agents | clock |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let several = run.transports.iter().any(|t| t.repetition > 1);
    for t in run.transports.iter().filter(|t| t.scale.is_some()) {
        row(md, t, several);
    }
    md.push('\n');
}

fn row(md: &mut String, t: &TransportResult, several: bool) {
    let Some(s) = &t.scale else { return };
    let label = if several {
        format!("{} #{}", t.label(), t.repetition)
    } else {
        t.label()
    };
    let per_event = match (s.broker_cpu_s, s.events_in_window) {
        (Some(cpu), n) if n > 0 => format!("{:.1} µs", cpu * 1e6 / n as f64),
        _ => "–".into(),
    };
    let clock = s
        .agent_clocks
        .iter()
        .map(|c| c.offset_us.unsigned_abs() + c.bound_us)
        .max()
        .map_or("–".into(), |b| format!("±{b} µs"));
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {per_event} | {} | {} | {} | {clock} |",
        escape_md(&label),
        s.servers,
        s.broker.as_deref().unwrap_or("–"),
        s.events_in_window,
        cpu_us_per_event(t).map_or("–".into(), |c| format!("{c:.2} µs")),
        s.broker_rss_bytes
            .map_or("–".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
        s.agents,
    );
}
