//! Unit tests of the report's metrics, rows and formatting.

use super::about::*;
use super::format::*;
use super::metrics::*;
use super::rows::*;
use serde_json::Value;

#[test]
fn ms_precision_follows_magnitude() {
    assert_eq!(format_ms(0.0), "0");
    assert_eq!(format_ms(0.001), "0.001");
    assert_eq!(format_ms(0.4123), "0.412");
    assert_eq!(format_ms(4.123), "4.12");
    assert_eq!(format_ms(41.23), "41.2");
    assert_eq!(format_ms(4123.4), "4123");
    assert_eq!(format_ms(f64::NAN), "–");
}

#[test]
fn significant_digits_follow_the_rounded_value() {
    assert_eq!(format_significant(0.99999), "1.00");
    assert_eq!(format_significant(0.4123), "0.412");
    assert_eq!(format_significant(9.999), "10.0");
    assert_eq!(format_significant(99.96), "100");
    assert_eq!(format_significant(183.4), "183");
    assert_eq!(Unit::Multiple.format(2.5), "2.50×");
}

#[test]
fn figures_are_medians_with_ranges() {
    let f = Figure::of(&[3.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
    assert_eq!((f.median, f.min, f.max, f.n), (2.5, 1.0, 10.0, 4));
    assert_eq!(f.format(Unit::Us), "2.50 (1.00–10.0)");
    let one = Figure::of(&[7.0]).unwrap();
    assert_eq!(one.format(Unit::Bytes), "7.00");
    // A range that rounds to one number is shown as that number.
    let flat = Figure::of(&[134.1, 134.2, 134.3]).unwrap();
    assert_eq!(flat.format(Unit::Bytes), "134");
    assert_eq!(Figure::of(&[]), None);
}

#[test]
fn metric_keys_are_unique() {
    let mut keys: Vec<_> = METRICS.iter().map(|m| m.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), METRICS.len());
    assert!(metric("latency_p99").is_some() && metric("nope").is_none());
}

#[test]
fn scenario_values_are_found_in_any_usual_shape() {
    let s = serde_json::json!({
        "name": "fanout",
        "fleet": { "clients": 100, "warmup": "2s" },
        "generator": { "rate": 10.5, "topics": 4, "payload_bytes": 256 },
        "duration_s": 10,
        "poll_interval": { "secs": 0, "nanos": 250_000_000 },
    });
    assert_eq!(scenario_name(&s).as_deref(), Some("fanout"));
    assert_eq!(lookup_str(&s, &["clients"]).as_deref(), Some("100"));
    assert_eq!(lookup_str(&s, &["rate"]).as_deref(), Some("10.5"));
    assert_eq!(lookup_duration(&s, "warmup").as_deref(), Some("2s"));
    assert_eq!(lookup_duration(&s, "duration").as_deref(), Some("10s"));
    assert_eq!(
        lookup_duration(&s, "poll_interval").as_deref(),
        Some("250ms")
    );
    assert_eq!(lookup_duration(&s, "absent"), None);
    assert_eq!(scenario_name(&Value::Null), None);
}

#[test]
fn free_text_is_escaped_and_quoted() {
    assert_eq!(escape_md("a|b *c* <x>"), r"a\|b \*c\* \<x\>");
    assert_eq!(one_line("two\nlines  here"), "two lines here");
    assert_eq!(code_span("a`b"), "``a`b``");
    assert_eq!(
        shell_join(&[
            "pushbench".into(),
            "run".into(),
            "--out".into(),
            "my dir".into(),
            "it's".into()
        ]),
        r"pushbench run --out 'my dir' 'it'\''s'"
    );
}

#[test]
fn generator_bound_thresholds_are_the_results_constants() {
    use crate::results::{FLEET_CPU_BOUND, FLEET_LAG_BOUND_US};
    let cpu = metric("fleet_cpu").unwrap().description;
    assert!(
        cpu.contains(&format!("≥ {:.0} %", FLEET_CPU_BOUND * 100.0)),
        "{cpu}"
    );
    let lag = metric("fleet_lag_p99").unwrap().description;
    assert!(
        lag.contains(&format!("> {} ms", FLEET_LAG_BOUND_US / 1000)),
        "{lag}"
    );
}
