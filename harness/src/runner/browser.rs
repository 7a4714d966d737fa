//! The browser clients' part of a transport's run: started before the
//! fleet, stopped after it, their figures put on the entry (a browser that
//! lost, duplicated or reordered an event fails the entry's verification,
//! like a fleet client; a saturated browser marks it generator-bound).

use crate::browser::{BrowserClients, BrowserReport, BrowserSpec, verify};
use crate::results::{BrowserFigures, FLEET_CPU_BOUND, TransportResult};
use crate::runner::plan::{RunId, server_log_name};
use crate::scenario::Scenario;
use protocol::{Schedule, TransportKind};
use std::path::Path;

/// Starts the scenario's browser clients against `base_url`; `Ok(None)`
/// when it asks for none or the transport has no browser API (raw TCP).
pub(super) async fn start_browsers(
    scenario: &Scenario,
    transport: TransportKind,
    base_url: &str,
    cpus: &[usize],
    (out_dir, id, name): (&Path, &RunId, &str),
) -> Result<Option<BrowserClients>, String> {
    if scenario.browser_clients == 0 || transport == TransportKind::Tcp {
        return Ok(None);
    }
    let spec = BrowserSpec {
        base_url: base_url.to_string(),
        transport,
        clients: scenario.browser_clients,
        topics: scenario.topics,
        poll_interval: scenario.poll_interval,
        longpoll_timeout: scenario.longpoll_timeout,
        event_type: scenario.event_type.clone(),
    };
    let log = out_dir.join(server_log_name(id, name).replacen("server-", "browser-", 1));
    BrowserClients::start(&spec, cpus, &log)
        .await
        .map(Some)
        .map_err(|e| format!("{e:#}"))
}

/// Puts the figures of the browser clients' report (stopped after the
/// fleet) on `result`.
pub(super) fn finish_browsers(
    browsers: Result<Option<anyhow::Result<BrowserReport>>, String>,
    schedule: &Schedule,
    (window_start, window_end): (u64, u64),
    scenario: &Scenario,
    result: &mut TransportResult,
) {
    let failed = |problem: String| BrowserFigures {
        clients: scenario.browser_clients,
        problems: vec![problem],
        ..BrowserFigures::default()
    };
    let figures = match browsers {
        Ok(None) => return,
        Err(problem) => failed(problem),
        Ok(Some(stopped)) => match stopped {
            Ok(report) => verify::figures(
                &report,
                schedule,
                (window_start, window_end),
                scenario.browser_clients,
                result.fleet.cpus.len().max(1),
            ),
            Err(e) => failed(format!("{e:#}")),
        },
    };
    if !figures.verified {
        let why = figures.problems.first().cloned().unwrap_or_else(|| {
            format!(
                "{} missing, {} duplicated, {} out of order",
                figures.missing, figures.duplicated, figures.out_of_order
            )
        });
        result
            .problems
            .push(format!("browser clients did not verify: {why}"));
        result.verified = false;
    }
    // The browsers share the fleet's cores: together they must stay under the bound.
    let fleet_share = if result.window_s > 0.0 {
        result.fleet.cpu_s / result.window_s / result.fleet.cpus.len().max(1) as f64
    } else {
        0.0
    };
    if figures.saturated || fleet_share + figures.cpu_share > FLEET_CPU_BOUND {
        result.fleet.generator_bound = true;
        result.fleet.generator_bound_reasons.push(format!(
            "the browser clients used {:.0} % and the fleet {:.0} % of the fleet's cores (> {:.0} %)",
            figures.cpu_share * 100.0,
            fleet_share * 100.0,
            FLEET_CPU_BOUND * 100.0
        ));
    }
    result.browser = Some(figures);
}
