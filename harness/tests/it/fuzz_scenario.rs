//! Property-based fuzzing of scenario parsing and the command line's value
//! parsers (stable Rust, proptest): for any input, a scenario is either
//! accepted and valid, or refused with a one-line reason; nothing panics.
//!
//! Depth: `PROPTEST_CASES` (default 256 here; `scripts/fuzz.sh` runs far
//! more). The seed corpus, `tests/corpus/scenarios/`, holds files that
//! must be refused, each with the words its refusal must contain on its
//! first line (`# expect: …`).

use harness::scenario::behaviour::Behaviour;
use harness::scenario::{Fault, Scenario};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// A TOML value of any kind, edge values common.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("18446744073709551615".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("\"\"".to_string()),
        Just("\"0s\"".to_string()),
        Just("\"1ms\"".to_string()),
        Just("\"999999999999h\"".to_string()),
        "[a-z0-9 ]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("[]".to_string()),
        Just("[\"sse\", \"sse\"]".to_string()),
        Just("{}".to_string()),
        Just("true".to_string()),
    ]
}

fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "name",
        "clients",
        "topics",
        "rate",
        "payload_bytes",
        "history",
        "warmup",
        "duration",
        "poll_interval",
        "longpoll_timeout",
        "connect_rate",
        "connect_timeout",
        "reconnect_delay",
        "idle_timeout",
        "retry_ms",
        "keepalive",
        "senders",
        "send_rate",
        "transports",
        "repeat",
        "pin",
        "event_type",
        "fanout",
        "faults",
        "unknown_key",
    ])
}

/// The outcome of reading and validating `text`: `Ok` or the message.
fn outcome(text: &str) -> Result<(), String> {
    let mut s = Scenario::from_toml(text).map_err(|e| format!("{e:#}"))?;
    s.resolve_topics();
    s.validate().map_err(|e| format!("{e:#}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_scenario_is_valid_or_refused_in_one_line(
        entries in proptest::collection::vec((key(), value()), 0..10),
        behaviour in proptest::collection::vec(
            (prop::sample::select(vec!["ws_ping_interval", "pause_every", "pause_for", "junk_interval", "nap"]), value()),
            0..4,
        ),
        group in proptest::option::of((value(), value(), value())),
    ) {
        let mut text: String = entries.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        if !behaviour.is_empty() {
            text.push_str("[behaviour]\n");
            for (k, v) in &behaviour {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        if let Some((clients, rate, transport)) = &group {
            text.push_str(&format!(
                "[[group]]\nname = \"g\"\ntransport = {transport}\nclients = {clients}\nrate = {rate}\n"
            ));
        }
        if let Err(msg) = outcome(&text) {
            prop_assert!(!msg.is_empty());
            // One line, whatever the input (a TOML error may quote the line
            // it points at on further lines; its first line says it all).
            prop_assert!(msg.lines().next().is_some_and(|l| l.len() > 10), "{msg:?}");
        }
    }

    #[test]
    fn any_bytes_as_a_scenario_never_panic(text in "\\PC{0,200}") {
        let _ = outcome(&text);
    }

    #[test]
    fn command_line_specs_never_panic(spec in "[a-z@:=/,.0-9 -]{0,30}") {
        let _ = Fault::parse_spec(&spec);
        let _ = Behaviour::parse_spec(&spec);
    }
}

#[test]
fn the_seed_scenarios_are_refused_with_their_reason() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks `# expect:`", path.display()));
        let msg = outcome(&text).expect_err(&path.display().to_string());
        assert!(msg.contains(expect), "{}: {msg}", path.display());
        n += 1;
    }
    assert!(n >= 5, "the corpus is in {}", dir.display());
}
