//! SVG charts (plotters, SVG backend only), derived from `run.json` alone.
//!
//! Every chart gives a transport the same colour ([`colour`]), so a reader
//! who learned "SSE is green" on one plot can read the next without a legend.
//! Charts are rendered into a string and written atomically, so a half-drawn
//! file is never left behind.
//!
//! Every chart is listed once, in [`PLOTS`] (file name, title, renderer):
//! the report writes and embeds them from that list, so a new chart is one
//! row. The latency percentile spectrum ([`latency_spectrum_svg`]); the cost
//! bars — server memory per connection ([`memory_svg`]), server CPU per
//! delivered event ([`cpu_svg`]) and bytes per delivered event, down and up
//! stacked ([`bytes_svg`]) — each with the raw-TCP floor as a dashed
//! reference line and min–max whiskers over repetitions; and the server's
//! memory over time ([`timeline_svg`]).

pub use crate::report::plot::bars::{bytes_svg, cpu_svg, memory_svg};
use crate::report::plot::link::{
    rtt_bytes_svg, rtt_connect_svg, rtt_p50_svg, rtt_p99_svg, sweeps_rtt,
};
use crate::report::plot::spectra::spectrum_series;
use crate::report::plot::spectra::{
    chat_spectrum_svg, latency_spectrum_svg, reconnect_spectrum_svg,
};
pub use crate::report::plot::style::{colour, colour_hex};
pub use crate::report::plot::timeline::timeline_svg;
use crate::report::plot::timeline::{connected_svg, faults_svg};
use crate::report::plot::xy::{p50_svg, p99_svg, throughput_svg};
use crate::report::rows::is_sweep;
use crate::results::{self, RunFile};
use anyhow::anyhow;
use std::path::Path;

pub mod bars;
pub mod browser;
pub mod link;
pub mod spectra;
pub mod style;
pub mod timeline;
pub mod xy;

/// File name of the latency percentile spectrum inside a run directory.
pub const LATENCY_SVG: &str = "latency.svg";

/// File name of the server-memory-per-connection bars.
pub const MEMORY_SVG: &str = "memory.svg";

/// File name of the server-CPU-per-event bars.
pub const CPU_SVG: &str = "cpu.svg";

/// File name of the bytes-per-event bars.
pub const BYTES_SVG: &str = "bytes.svg";

/// File name of the server-memory timeline.
pub const TIMELINE_SVG: &str = "timeline.svg";

/// File name of the delivery timeline around faults.
pub const FAULTS_SVG: &str = "faults.svg";

/// File name of the reconnect-time spectrum.
pub const RECONNECT_SVG: &str = "reconnect.svg";

/// File name of the connected-clients timeline around faults.
pub const CONNECTED_SVG: &str = "connected.svg";

/// File name of a sweep's median latency against clients.
pub const SWEEP_P50_SVG: &str = "sweep-p50.svg";

/// File name of a sweep's p99 latency against clients.
pub const SWEEP_P99_SVG: &str = "sweep-p99.svg";

/// File name of a sweep's delivered against offered events/s.
pub const SWEEP_THROUGHPUT_SVG: &str = "sweep-throughput.svg";

/// File names of a link sweep's charts against round-trip time.
pub const SWEEP_RTT_P50_SVG: &str = "sweep-rtt-p50.svg";
/// See [`SWEEP_RTT_P50_SVG`].
pub const SWEEP_RTT_P99_SVG: &str = "sweep-rtt-p99.svg";
/// See [`SWEEP_RTT_P50_SVG`].
pub const SWEEP_RTT_CONNECT_SVG: &str = "sweep-rtt-connect.svg";
/// See [`SWEEP_RTT_P50_SVG`].
pub const SWEEP_RTT_BYTES_SVG: &str = "sweep-rtt-bytes.svg";

/// File name of the browser-against-fleet latency bars.
pub const BROWSER_SVG: &str = "browser.svg";

/// File name of the chat round-trip spectrum.
pub const CHAT_SVG: &str = "chat_round_trip.svg";

/// One chart of a report: where it goes, what it is called, how it is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Plot {
    /// File name inside the run directory.
    pub file: &'static str,
    /// Title (also the image's alt text in reports).
    pub title: &'static str,
    /// Renders the chart of a run as SVG text.
    pub render: fn(&RunFile) -> anyhow::Result<String>,
    /// Whether a run has this chart (fault charts: runs with faults only).
    pub applies: fn(&RunFile) -> bool,
}

/// Every run but a sweep has this chart (a sweep's points would mix in it).
pub(crate) fn always(run: &RunFile) -> bool {
    !is_sweep(run)
}

/// A sweep has this chart.
pub(crate) fn sweep_only(run: &RunFile) -> bool {
    is_sweep(run)
}

/// A sweep that does not vary the link's RTT has this chart (one that does
/// draws against RTT instead).
fn sweep_not_rtt(run: &RunFile) -> bool {
    is_sweep(run) && !sweeps_rtt(run)
}

/// Whether any entry of `run` had faults injected (not a sweep: its points would mix).
pub fn has_faults(run: &RunFile) -> bool {
    always(run) && run.transports.iter().any(|t| !t.recovery.faults.is_empty())
}

/// Whether `run` had browser clients (not a sweep: its points would mix).
pub fn has_browser_clients(run: &RunFile) -> bool {
    always(run) && run.transports.iter().any(|t| t.browser.is_some())
}

/// Whether `run` is a chat run (some clients sent messages).
pub fn has_chat(run: &RunFile) -> bool {
    spectrum_series(run).iter().any(|(_, r)| r.chat.is_some())
}

/// The charts of [`PLOTS`] that `run` has, in reading order.
pub fn plots_for(run: &RunFile) -> impl Iterator<Item = &'static Plot> + '_ {
    PLOTS.iter().filter(move |p| (p.applies)(run))
}

/// Every chart a report has, in reading order.
pub const PLOTS: &[Plot] = &[
    Plot {
        file: LATENCY_SVG,
        title: "Latency percentile spectrum",
        render: latency_spectrum_svg,
        applies: always,
    },
    Plot {
        file: MEMORY_SVG,
        title: "Server memory per connection",
        render: memory_svg,
        applies: always,
    },
    Plot {
        file: CPU_SVG,
        title: "Server CPU per delivered event",
        render: cpu_svg,
        applies: always,
    },
    Plot {
        file: BYTES_SVG,
        title: "Bytes on the wire per delivered event",
        render: bytes_svg,
        applies: always,
    },
    Plot {
        file: TIMELINE_SVG,
        title: "Server memory over time",
        render: timeline_svg,
        applies: always,
    },
    Plot {
        file: FAULTS_SVG,
        title: "Events delivered per second around faults",
        render: faults_svg,
        applies: has_faults,
    },
    Plot {
        file: CONNECTED_SVG,
        title: "Connected clients around faults",
        render: connected_svg,
        applies: has_faults,
    },
    Plot {
        file: RECONNECT_SVG,
        title: "Reconnect-time spectrum",
        render: reconnect_spectrum_svg,
        applies: has_faults,
    },
    Plot {
        file: CHAT_SVG,
        title: "Chat round-trip spectrum",
        render: chat_spectrum_svg,
        applies: has_chat,
    },
    Plot {
        file: BROWSER_SVG,
        title: "Browser and fleet latency",
        render: crate::report::plot::browser::browser_svg,
        applies: has_browser_clients,
    },
    Plot {
        file: SWEEP_P50_SVG,
        title: "Median latency against clients",
        render: p50_svg,
        applies: sweep_not_rtt,
    },
    Plot {
        file: SWEEP_P99_SVG,
        title: "p99 latency against clients",
        render: p99_svg,
        applies: sweep_not_rtt,
    },
    Plot {
        file: SWEEP_RTT_P50_SVG,
        title: "Median latency against round-trip time",
        render: rtt_p50_svg,
        applies: sweeps_rtt,
    },
    Plot {
        file: SWEEP_RTT_P99_SVG,
        title: "p99 latency against round-trip time",
        render: rtt_p99_svg,
        applies: sweeps_rtt,
    },
    Plot {
        file: SWEEP_RTT_CONNECT_SVG,
        title: "Median connect time against round-trip time",
        render: rtt_connect_svg,
        applies: sweeps_rtt,
    },
    Plot {
        file: SWEEP_RTT_BYTES_SVG,
        title: "Bytes down per delivered event against round-trip time",
        render: rtt_bytes_svg,
        applies: sweeps_rtt,
    },
    Plot {
        file: SWEEP_THROUGHPUT_SVG,
        title: "Delivered against offered events per second",
        render: throughput_svg,
        applies: sweep_only,
    },
];

/// Renders every chart of [`PLOTS`] into `dir`, atomically each.
pub fn write_all(run: &RunFile, dir: &Path) -> anyhow::Result<()> {
    for p in plots_for(run) {
        let path = dir.join(p.file);
        let svg = (p.render)(run).map_err(|e| anyhow!("rendering {}: {e:#}", p.file))?;
        results::io::write_atomic(&path, svg.as_bytes())?;
    }
    Ok(())
}
