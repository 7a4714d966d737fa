//! The browser pages' records as figures like the fleet's: the events of
//! the measured window on each page's topic, every id once and in order,
//! and the latency histogram (receive time − scheduled emission time, µs).

use std::collections::HashSet;

use protocol::Schedule;

use crate::browser::BrowserReport;
use crate::recorder::total_histogram;
use crate::results::{BrowserFigures, FLEET_CPU_BOUND, Summary, encode_histogram};

/// The figures of `report` over the window `[from_us, to_us)` of
/// `schedule`, for pages that were asked to be `clients`, on `cores`
/// cores shared with the fleet.
pub fn figures(
    report: &BrowserReport,
    schedule: &Schedule,
    (from_us, to_us): (u64, u64),
    clients: usize,
    cores: usize,
) -> BrowserFigures {
    let mut f = BrowserFigures {
        clients,
        reported: report.pages.len(),
        ..BrowserFigures::default()
    };
    let mut hist = total_histogram();
    for page in &report.pages {
        let Some(topic) = protocol::schedule::topic_index(&page.topic) else {
            f.problems
                .push(format!("a page reported an unknown topic {:?}", page.topic));
            continue;
        };
        let expected = schedule.count_in_window(topic, from_us, to_us);
        let range = schedule.ids_in_window(topic, from_us, to_us);
        let mut seen = HashSet::new();
        let mut highest = 0u64;
        for &(id, emitted, received) in &page.events {
            if emitted < from_us || emitted >= to_us {
                continue;
            }
            if !seen.insert(id) {
                f.duplicated += 1;
                continue;
            }
            if id < highest {
                f.out_of_order += 1;
            }
            highest = highest.max(id);
            if range.is_some_and(|(lo, hi)| (lo..=hi).contains(&id)) {
                f.delivered += 1;
            }
            // The histogram takes at least 1 µs (a clock a hair ahead is 1 µs, not lost).
            let _ = hist.record(received.saturating_sub(emitted).max(1));
        }
        f.expected += expected;
        f.reconnects += page.reconnects;
        if let Some(e) = page.errors.first() {
            f.problems.push(format!(
                "page on {}: {} error(s), first: {e}",
                page.topic,
                page.errors.len()
            ));
        }
    }
    f.missing = f.expected.saturating_sub(f.delivered);
    f.latency = Summary::from_histogram(&hist);
    f.histogram_us = encode_histogram(&hist);
    f.console_errors = report.console_errors.clone();
    f.cpu_s = report.cpu_s;
    f.cpu_share = if report.wall_s > 0.0 && cores > 0 {
        report.cpu_s / report.wall_s / cores as f64
    } else {
        0.0
    };
    f.saturated = f.cpu_share > FLEET_CPU_BOUND;
    if f.reported < clients {
        f.problems
            .push(format!("{} of {clients} pages reported", f.reported));
    }
    f.verified = f.reported == clients
        && f.missing == 0
        && f.duplicated == 0
        && f.out_of_order == 0
        && f.expected > 0;
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::PageRecord;

    fn schedule() -> Schedule {
        // 10 events/s on one topic from t = 1 s: id k at 1 s + (k-1)·100 ms.
        Schedule {
            start_epoch_us: 1_000_000,
            rate: 10.0,
            topics: 1,
        }
    }

    fn page(ids: &[u64]) -> PageRecord {
        let s = schedule();
        PageRecord {
            topic: "t0".into(),
            events: ids
                .iter()
                .map(|&id| {
                    let at = s.scheduled_at(0, id);
                    (id, at, at + 2_000)
                })
                .collect(),
            reconnects: 0,
            errors: Vec::new(),
        }
    }

    fn report(pages: Vec<PageRecord>) -> BrowserReport {
        BrowserReport {
            pages,
            console_errors: Vec::new(),
            cpu_s: 0.5,
            wall_s: 10.0,
        }
    }

    #[test]
    fn a_page_with_every_id_of_the_window_verifies_with_its_latency() {
        let s = schedule();
        // The window holds ids 11..=20 (2.0 s to 3.0 s); events outside it are ignored.
        let (from, to) = (s.scheduled_at(0, 11), s.scheduled_at(0, 21));
        let ids: Vec<u64> = (5..=25).collect();
        let f = figures(&report(vec![page(&ids), page(&ids)]), &s, (from, to), 2, 1);
        assert_eq!((f.expected, f.delivered, f.missing), (20, 20, 0));
        assert!(f.verified, "{f:?}");
        assert_eq!(f.latency.count, 20);
        assert!((f.latency.p50 as i64 - 2_000).abs() <= 2, "{:?}", f.latency);
        assert!((f.cpu_share - 0.05).abs() < 1e-9);
        assert!(!f.saturated);
    }

    #[test]
    fn gaps_duplicates_reordering_and_silent_pages_fail() {
        let s = schedule();
        let (from, to) = (s.scheduled_at(0, 11), s.scheduled_at(0, 21));
        let gap: Vec<u64> = (11..=20).filter(|&i| i != 15).collect();
        let f = figures(&report(vec![page(&gap)]), &s, (from, to), 1, 1);
        assert_eq!(f.missing, 1);
        assert!(!f.verified);
        let dup = [11, 12, 12, 13, 14, 15, 16, 17, 18, 19, 20];
        let f = figures(&report(vec![page(&dup)]), &s, (from, to), 1, 1);
        assert_eq!((f.duplicated, f.missing), (1, 0));
        assert!(!f.verified);
        let swapped = [11, 13, 12, 14, 15, 16, 17, 18, 19, 20];
        let f = figures(&report(vec![page(&swapped)]), &s, (from, to), 1, 1);
        assert_eq!(f.out_of_order, 1);
        assert!(!f.verified);
        let all: Vec<u64> = (11..=20).collect();
        let f = figures(&report(vec![page(&all)]), &s, (from, to), 2, 1);
        assert!(
            !f.verified && f.problems[0].contains("1 of 2 pages"),
            "{f:?}"
        );
    }

    #[test]
    fn a_browser_using_the_fleet_s_cores_is_saturated() {
        let s = schedule();
        let mut r = report(vec![page(&[11])]);
        r.cpu_s = 9.5;
        let f = figures(&r, &s, (s.scheduled_at(0, 11), s.scheduled_at(0, 12)), 1, 1);
        assert!(f.saturated);
    }
}
