//! Unit tests of [`super`] (`cli`).

use super::*;
use crate::scenario::Contender;
use protocol::TransportKind;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("pushbench").chain(args.iter().copied()))
}

#[test]
fn flags_override_the_scenario() {
    let cli = parse(&[
        "run",
        "--transports",
        "sse,ws",
        "--clients",
        "7",
        "--rate",
        "2.5",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--poll-interval",
        "200ms",
        "--topics",
        "3",
        "--payload-bytes",
        "10",
        "--repeat",
        "3",
        "--pin",
        "none",
    ])
    .unwrap();
    let Command::Run(args) = cli.command else {
        panic!("run expected")
    };
    let s = args.scenario().unwrap();
    assert_eq!(s.transports, vec![TransportKind::Sse, TransportKind::Ws]);
    assert_eq!(s.clients, 7);
    assert_eq!(s.rate, 2.5);
    assert_eq!(s.duration, Duration::from_secs(2));
    assert_eq!(s.warmup, Duration::from_millis(500));
    assert_eq!(s.poll_interval, Duration::from_millis(200));
    assert_eq!(s.topics, 3);
    assert_eq!(s.payload_bytes, 10);
    assert_eq!(s.repeat, 3);
    assert_eq!(s.pin, "none");
    assert_eq!(s.name, "default");
    assert!(
        s.description.ends_with(
            "Overridden on the command line: --transports sse,ws --repeat 3 --pin none \
             --clients 7 --rate 2.5 --payload-bytes 10 --duration 2s --warmup 500ms \
             --poll-interval 200ms --topics 3."
        ),
        "{}",
        s.description
    );
}

#[test]
fn no_flags_is_the_default_scenario() {
    let Command::Run(args) = parse(&["run"]).unwrap().command else {
        panic!("run expected")
    };
    assert_eq!(args.scenario().unwrap(), Scenario::default());
}

#[test]
fn help_states_the_default_scenario_s_values() {
    // The defaults in the help text are written out; keep them the embedded file's.
    use clap::CommandFactory as _;
    let mut cmd = Cli::command();
    let help = cmd
        .find_subcommand_mut("run")
        .unwrap()
        .render_long_help()
        .to_string();
    let d = Scenario::default();
    let names: Vec<_> = d.transports.iter().map(Contender::name).collect();
    for expected in [
        format!("[default: {}]", names.join(",")),
        format!("[default: {}]", d.clients),
        format!("[default: {}]", d.rate),
        format!("[default: {}]", d.payload_bytes),
        format!(
            "[default: {}]",
            crate::scenario::check::fmt_duration(d.duration)
        ),
        format!(
            "[default: {}]",
            crate::scenario::check::fmt_duration(d.warmup)
        ),
        format!(
            "[default: {}]",
            crate::scenario::check::fmt_duration(d.poll_interval)
        ),
        format!("[default: {}]", d.topics),
        format!("[default: {}]", d.repeat),
        format!("[default: {}]", d.pin),
    ] {
        assert!(help.contains(&expected), "help lacks {expected}:\n{help}");
    }
}

#[test]
fn every_run_flag_states_its_default() {
    use clap::CommandFactory as _;
    let cmd = Cli::command();
    let run = cmd.find_subcommand("run").unwrap();
    let mut checked = 0;
    for arg in run.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        // Either written out in the text or set in clap (which prints it).
        assert!(
            help.contains("[default: ") || !arg.get_default_values().is_empty(),
            "--{id} does not state its default: {help:?}"
        );
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} flags checked");
}

#[test]
fn quiet_and_json_are_off_unless_given() {
    let Command::Run(args) = parse(&["run"]).unwrap().command else {
        panic!("run expected")
    };
    assert!(!args.quiet && !args.json);
    let Command::Run(args) = parse(&["run", "-q", "--json"]).unwrap().command else {
        panic!("run expected")
    };
    assert!(args.quiet && args.json);
    // The flags are not scenario overrides: the description stays as it was.
    assert_eq!(args.scenario().unwrap(), Scenario::default());
}

fn measured(transport: TransportKind, repetition: u32) -> TransportResult {
    use crate::results::{Counts, ServerUsage, Summary};
    TransportResult {
        repetition,
        verified: true,
        clients: 4,
        clients_connected: 4,
        window_s: 2.0,
        window_start_us: 1,
        counts: Counts {
            expected: 100,
            delivered: 100,
            ..Counts::default()
        },
        delivered_per_s: 50.0,
        latency: Summary {
            count: 100,
            p50: 400,
            p90: 700,
            p99: 900,
            p999: 950,
            max: 990,
            ..Summary::default()
        },
        server: Some(ServerUsage {
            cpu_s: 0.002,
            cpu_resolution_s: 0.01,
            rss_baseline_bytes: 1 << 20,
            rss_idle_bytes: (1 << 20) + 4 * 8 * 1024,
            idle_clients: 4,
            ..ServerUsage::default()
        }),
        ..TransportResult::empty(transport)
    }
}

#[test]
fn the_summary_digests_the_outcome() {
    let outcome = RunOutcome {
        out_dir: PathBuf::from("results/x"),
        run: crate::results::RunFile {
            schema_version: crate::results::SCHEMA_VERSION,
            provenance: Default::default(),
            scenario: serde_json::Value::Null,
            complete: true,
            generator_bound: false,
            transports: vec![measured(TransportKind::Sse, 1), {
                let mut r = measured(TransportKind::Ws, 2);
                r.latency = Default::default();
                r.server = None;
                r
            }],
        },
        problems: vec![],
    };
    let s = RunSummary::new(Some(&outcome), None);
    assert!(s.passed && s.complete && s.error.is_none());
    assert_eq!(s.exit_code, 0);
    assert_eq!(s.run_json.as_deref(), Some("results/x/run.json"));
    let sse = &s.transports[0];
    assert_eq!(
        (sse.p50_us, sse.p99_us, sse.max_us),
        (Some(400), Some(900), Some(990))
    );
    assert_eq!(sse.delivered_per_s, Some(50.0));
    // 2 ms of CPU over 100 events; 32 KiB more over 4 clients.
    assert!((sse.server_cpu_us_per_event.unwrap() - 20.0).abs() < 1e-9);
    assert_eq!(sse.rss_per_conn_kib, Some(8.0));
    assert_eq!(sse.bytes_down_per_event, None, "no wire counts");
    let ws = &s.transports[1];
    assert_eq!((ws.transport, ws.repetition), (TransportKind::Ws, 2));
    assert_eq!((ws.p50_us, ws.server_cpu_us_per_event), (None, None));

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["transports"][1]["p50_us"], serde_json::Value::Null);
    assert_eq!(json["transports"][0]["transport"], "sse");

    let f = usage(anyhow::anyhow!(
        "`clients` must be between 1 and 19000,\ngot 0"
    ));
    let s = RunSummary::new(None, Some(&f));
    assert!(!s.passed && !s.complete && s.transports.is_empty());
    assert_eq!((s.exit_code, s.out.as_deref()), (EXIT_USAGE, None));
    assert_eq!(
        s.error.as_deref(),
        Some("`clients` must be between 1 and 19000, got 0")
    );
}

#[test]
fn a_mixed_scenario_refuses_the_flags_its_groups_decide() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/mixed.toml");
    let scenario_of = |extra: &[&str]| {
        let mut argv = vec!["run", "--scenario", file];
        argv.extend_from_slice(extra);
        let Command::Run(args) = parse(&argv).unwrap().command else {
            panic!("run expected")
        };
        args.scenario()
    };
    let s = scenario_of(&["--duration", "2s"]).unwrap();
    assert!(s.is_mixed() && s.duration == Duration::from_secs(2));
    assert_eq!(s.clients, 2000, "the groups' sum");
    for (flag, value, key) in [
        ("--clients", "10", "`clients`"),
        ("--transports", "sse", "`transport`"),
        ("--rate", "3", "`rate`"),
    ] {
        let e = scenario_of(&[flag, value]).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{flag} cannot be used with a mixed scenario")) && e.contains(key),
            "{e}"
        );
    }
}

#[test]
fn bad_values_are_usage_errors() {
    let e = parse(&["run", "--duration", "abc"]).unwrap_err();
    assert!(e.to_string().contains("--duration"), "{e}");
    assert!(parse(&["run", "--clients", "-3"]).is_err());
    // A name that is no built-in may be a target's: the scenario decides.
    let Command::Run(args) = parse(&["run", "--transports", "sse,pigeon"])
        .unwrap()
        .command
    else {
        panic!("run expected")
    };
    let e = args.scenario().unwrap().validate().unwrap_err().to_string();
    assert!(
        e.contains("`pigeon`") && e.contains("short-poll, long-poll, sse, ws, tcp"),
        "{e}"
    );
}

#[test]
fn clients_decide_the_topics_of_a_one_topic_per_client_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idle.toml");
    std::fs::write(&file, "topics = 0\nclients = 10\n").unwrap();
    let file = file.to_str().unwrap();
    let Command::Run(args) = parse(&["run", "--scenario", file, "--clients", "25"])
        .unwrap()
        .command
    else {
        panic!("run expected")
    };
    assert_eq!(args.scenario().unwrap().topics, 25);
}

#[test]
fn placement_follows_the_scenario_and_spares_a_target() {
    let mut s = Scenario::default();
    let cores = crate::sys::allowed_cpus();
    let p = placement_for(&s, false).unwrap();
    if cores.len() >= 2 {
        assert_eq!(p.server_cpus, cores[..1].to_vec());
        assert_eq!(p.fleet_cpus, cores[1..].to_vec());
    } else {
        assert!(p.server_cpus.is_empty() && p.fleet_cpus.is_empty());
    }
    let p = placement_for(&s, true).unwrap();
    assert!(p.server_cpus.is_empty() && p.fleet_cpus.is_empty());
    assert!(p.note.contains("--target"), "{}", p.note);
    s.pin = "server:0,fleet:4095".into();
    assert!(placement_for(&s, false).is_err());
}
