//! Unit tests of the scenario: defaults, files, patches and validation.

use super::contender::*;
use super::fault::*;
use super::*;
use crate::sys::raise_open_file_limit;

fn err(s: &Scenario) -> String {
    format!("{:#}", s.validate_with_fd_limit(Some(20_000)).unwrap_err())
}

#[test]
fn default_parses_and_validates() {
    let s = Scenario::default();
    assert_eq!(s.name, "default");
    assert_eq!(s.transports, TransportKind::ALL.to_vec(), "the floor last");
    assert_eq!(s.repeat, 1);
    assert_eq!(s.pin, "auto");
    assert_eq!(s.clients, 100);
    assert_eq!(s.topics, 1);
    assert_eq!(s.rate, 10.0);
    assert_eq!(s.payload_bytes, 64);
    assert_eq!(s.warmup, Duration::from_secs(3));
    assert_eq!(s.duration, Duration::from_secs(10));
    assert_eq!(s.poll_interval, Duration::from_secs(1));
    assert_eq!(s.event_type, None);
    s.validate_with_fd_limit(Some(20_000)).unwrap();
}

#[test]
fn default_file_sets_every_key() {
    // The strict `Scenario` (no optional keys except `event_type`) parses
    // the embedded file directly: nothing relies on a fallback.
    let strict: Scenario = toml::from_str(DEFAULT_TOML).unwrap();
    assert_eq!(strict, Scenario::default());
}

#[test]
fn a_file_changes_only_its_keys() {
    let s = Scenario::from_toml(
        "name = \"tiny\"\nclients = 4\nduration = \"2s\"\npoll_interval = \"200ms\"\n\
         transports = [\"sse\"]\nevent_type = \"status\"\n",
    )
    .unwrap();
    assert_eq!(s.name, "tiny");
    assert_eq!(s.clients, 4);
    assert_eq!(s.duration, Duration::from_secs(2));
    assert_eq!(s.poll_interval, Duration::from_millis(200));
    assert_eq!(s.transports, vec![TransportKind::Sse]);
    assert_eq!(s.event_type.as_deref(), Some("status"));
    assert_eq!(s.rate, Scenario::default().rate);
}

#[test]
fn chat_keys_are_checked_with_the_key_the_range_and_the_value() {
    let chat = "senders = 3\nsend_rate = 2.0\nrate = 0.0\nclients = 10\n\
                transports = [\"sse\", \"ws\", \"long-poll\", \"short-poll\"]\n";
    let s = Scenario::from_toml(chat).unwrap();
    assert!(s.is_chat());
    s.validate_with_fd_limit(Some(20_000)).unwrap();
    type Change = fn(&mut Scenario);
    let cases: [(Change, &str); 6] = [
        (
            |s| s.senders = 11,
            "`senders` must be between 0 and `clients` (10), got 11",
        ),
        (
            |s| s.send_rate = 0.0,
            "`send_rate` (messages/s per sender) must be above 0 and at most 1000, got 0",
        ),
        (|s| s.send_rate = 5000.0, "got 5000"),
        (
            |s| s.rate = 5.0,
            "`rate` must be 0 when `senders` > 0 (chat)",
        ),
        (
            |s| s.transports = builtins(&[TransportKind::Ws, TransportKind::Tcp]),
            "`transports` must not include tcp when `senders` > 0",
        ),
        (
            |s| s.faults = vec![Fault::parse_spec("storm@1s").unwrap()],
            "`faults` must be empty when `senders` > 0",
        ),
    ];
    for (change, want) in cases {
        let mut bad = s.clone();
        change(&mut bad);
        let msg = err(&bad);
        assert!(msg.contains(want), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
    // Without senders the generator and the floor are as usual.
    assert!(!Scenario::default().is_chat());
}

#[test]
fn unknown_key_is_rejected_by_name_with_position() {
    let e = Scenario::from_toml("clients = 3\nclinets = 5\n").unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("clinets"), "{msg}");
    assert!(msg.contains("line 2, column 1"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "bogus = 1\n").unwrap();
    let msg = format!("{:#}", Scenario::load(&path).unwrap_err());
    assert!(msg.contains("bad.toml") && msg.contains("bogus"), "{msg}");
    let msg = format!(
        "{:#}",
        Scenario::load(&dir.path().join("none.toml")).unwrap_err()
    );
    assert!(msg.contains("none.toml"), "{msg}");
}

#[test]
fn a_file_without_name_is_named_after_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fan out.toml");
    std::fs::write(&path, "clients = 5\n").unwrap();
    let s = Scenario::load(&path).unwrap();
    assert_eq!(s.name, "fan-out");
    assert_eq!(s.description, "", "not the default scenario's description");
    s.validate_with_fd_limit(Some(20_000)).unwrap();
    std::fs::write(&path, "name = \"x\"\ndescription = \"d\"\n").unwrap();
    let s = Scenario::load(&path).unwrap();
    assert_eq!((s.name.as_str(), s.description.as_str()), ("x", "d"));
}

#[test]
fn bad_duration_and_bad_types_are_rejected() {
    let msg = format!(
        "{:#}",
        Scenario::from_toml("duration = \"abc\"").unwrap_err()
    );
    assert!(msg.contains("line 1"), "{msg}");
    assert!(Scenario::from_toml("duration = 5").is_err());
    assert!(Scenario::from_toml("clients = -1").is_err());
    // Parsed as a target's name, then refused: none is declared.
    let s = Scenario::from_toml("transports = [\"carrier-pigeon\"]").unwrap();
    let msg = s.validate_with_fd_limit(None).unwrap_err().to_string();
    assert!(msg.contains("`carrier-pigeon`"), "{msg}");
}

#[test]
fn each_validation_names_its_key() {
    type Change = Box<dyn Fn(&mut Scenario)>;
    let cases: Vec<(&str, Change)> = vec![
        ("`clients`", Box::new(|s| s.clients = 0)),
        ("`clients`", Box::new(|s| s.clients = 19_001)),
        ("`rate`", Box::new(|s| s.rate = -1.0)),
        ("`rate`", Box::new(|s| s.rate = f64::NAN)),
        ("`rate`", Box::new(|s| s.rate = f64::INFINITY)),
        ("`duration`", Box::new(|s| s.duration = Duration::ZERO)),
        (
            "`poll_interval`",
            Box::new(|s| s.poll_interval = Duration::ZERO),
        ),
        ("`history`", Box::new(|s| s.history = 0)),
        ("`transports`", Box::new(|s| s.transports.clear())),
        (
            "`transports` names `sse` twice",
            Box::new(|s| s.transports = builtins(&[TransportKind::Sse, TransportKind::Sse])),
        ),
        ("`topics`", Box::new(|s| s.topics = 0)),
        ("`repeat`", Box::new(|s| s.repeat = 0)),
        ("`pin`", Box::new(|s| s.pin = "server:0".into())),
        ("`connect_rate`", Box::new(|s| s.connect_rate = 0.0)),
        ("`name`", Box::new(|s| s.name = "../etc".into())),
        (
            "`event_type`",
            Box::new(|s| s.event_type = Some("a\nb".into())),
        ),
        (
            "`idle_timeout`",
            Box::new(|s| s.idle_timeout = Duration::from_secs(1)),
        ),
    ];
    for (needle, change) in cases {
        let mut s = Scenario::default();
        change(&mut s);
        let msg = err(&s);
        assert!(msg.contains(needle), "expected {needle} in: {msg}");
    }
}

#[test]
fn client_bound_follows_the_open_file_limit() {
    assert_eq!(max_clients(Some(20_000)), 19_000);
    assert_eq!(max_clients(Some(1024)), 924);
    let s = Scenario {
        clients: 1000,
        ..Scenario::default()
    };
    let msg = format!("{:#}", s.validate_with_fd_limit(Some(1024)).unwrap_err());
    assert!(
        msg.contains("between 1 and 924") && msg.contains("1024"),
        "{msg}"
    );
    assert!(open_file_limit().is_some_and(|l| l > 0));
}

#[test]
#[allow(unsafe_code)]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let get = || {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: writes into the struct we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
        rl
    };
    let hard = get().rlim_max;
    if hard == libc::RLIM_INFINITY || hard < 256 {
        return; // nothing meaningful to lower and raise on this machine
    }
    // Lower the soft limit a little (other tests keep plenty of room), then raise it.
    let lowered = libc::rlimit {
        rlim_cur: hard - 16,
        rlim_max: hard,
    };
    // SAFETY: reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    assert_eq!(open_file_limit(), Some(hard - 16));
    assert_eq!(raise_open_file_limit(), Some(hard));
    assert_eq!(get().rlim_cur, hard);
}

#[test]
fn zero_topics_means_one_per_client() {
    let mut s = Scenario::from_toml("topics = 0\nclients = 37\n").unwrap();
    s.resolve_topics();
    assert_eq!(s.topics, 37);
    s.validate_with_fd_limit(Some(20_000)).unwrap();
    let mut s = Scenario::default();
    s.resolve_topics();
    assert_eq!(s.topics, 1, "a real number stays");
}

#[test]
fn shipped_scenarios_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let mut s = Scenario::load(&path).unwrap();
            s.resolve_topics();
            s.validate_with_fd_limit(Some(20_000))
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            // Chat has no floor: the raw-TCP transport has no upstream
            // path; a mixed run's groups are deployments, never the floor.
            if !s.is_chat() && !s.is_mixed() {
                assert_eq!(
                    s.transports.last(),
                    Some(&Contender::Builtin(TransportKind::Tcp)),
                    "{}",
                    path.display()
                );
            }
            n += 1;
        }
    }
    assert!(n >= 3, "default, ci and notifications at least");
}

#[test]
fn json_keeps_durations_readable() {
    let v = Scenario::default().to_json();
    assert_eq!(v["duration"], "10s");
    assert_eq!(v["transports"][0], "short-poll");
    let back: Scenario = serde_json::from_value(v).unwrap();
    assert_eq!(back, Scenario::default());
}

#[test]
fn faults_parse_from_toml_and_the_command_line() {
    let p = parse_patch(
        r#"faults = [{ at = "4s", kind = "drop", fraction = 0.5 },
                     { at = "8s", kind = "restart", pause = "1s" },
                     { at = "12s", kind = "storm" }]"#,
    )
    .unwrap();
    let faults = p.faults.unwrap();
    assert_eq!(faults.len(), 3);
    assert_eq!(faults[0].drop_fraction(), Some(0.5));
    assert_eq!(faults[1].pause, Some(Duration::from_secs(1)));
    assert_eq!(
        faults[2].drop_fraction(),
        Some(1.0),
        "a storm drops everything"
    );
    assert_eq!(Fault::parse_spec("drop@4s:0.5").unwrap(), faults[0]);
    assert_eq!(Fault::parse_spec("restart@8s:1s").unwrap(), faults[1]);
    assert_eq!(Fault::parse_spec("storm@12s").unwrap(), faults[2]);
    for bad in [
        "drop",
        "melt@1s",
        "drop@soon",
        "drop@1s:half",
        "storm@1s:0.5",
        "restart@1s:x",
    ] {
        assert!(Fault::parse_spec(bad).is_err(), "{bad}");
    }
    let unknown = parse_patch(r#"faults = [{ at = "1s", kind = "drop", fracton = 0.5 }]"#);
    assert!(unknown.is_err(), "unknown fault keys are refused");
    // Faults round-trip through run.json's scenario.
    let s = Scenario {
        faults,
        duration: Duration::from_secs(20),
        ..Scenario::default()
    };
    let back: Scenario = serde_json::from_value(s.to_json()).unwrap();
    assert_eq!(back.faults, s.faults);
}

#[test]
fn faults_are_validated_against_the_window() {
    let with = |spec: &str| {
        let s = Scenario {
            duration: Duration::from_secs(10),
            faults: vec![Fault::parse_spec(spec).unwrap()],
            ..Scenario::default()
        };
        s.validate_with_fd_limit(None).map_err(|e| e.to_string())
    };
    assert!(with("drop@4s:0.5").is_ok());
    assert!(
        with("drop@10s:0.5")
            .unwrap_err()
            .contains("inside the measured window")
    );
    assert!(
        with("drop@1s")
            .unwrap_err()
            .contains("`fraction` is required")
    );
    assert!(with("drop@1s:1.5").unwrap_err().contains("at most 1"));
    assert!(with("drop@1s:0").unwrap_err().contains("above 0"));
    assert!(
        with("restart@1s")
            .unwrap_err()
            .contains("`pause` is required")
    );
    assert!(with("restart@1s:2m").unwrap_err().contains("at most 1m"));
    let s = Scenario {
        duration: Duration::from_secs(10),
        faults: vec![
            Fault::parse_spec("storm@5s").unwrap(),
            Fault::parse_spec("storm@2s").unwrap(),
        ],
        ..Scenario::default()
    };
    let e = s.validate_with_fd_limit(None).unwrap_err().to_string();
    assert!(e.contains("in order"), "{e}");
}

#[test]
fn targets_are_named_in_transports_and_their_keys_checked() {
    let base = r#"
        transports = ["sse", "django-eventstream"]
        [targets.django-eventstream]
        transport = "sse"
        command = ["targets/django-eventstream/run.sh"]
        path = "/events/?channel={topic}"
    "#;
    let s = Scenario::from_toml(base).unwrap();
    s.validate_with_fd_limit(None).unwrap();
    assert_eq!(
        s.transports,
        vec![
            Contender::Builtin(TransportKind::Sse),
            Contender::Target("django-eventstream".into())
        ]
    );
    let t = &s.targets["django-eventstream"];
    assert_eq!(t.ready_path, "/healthz");
    assert_eq!(t.ready_timeout, Duration::from_secs(60));
    for (change, needle) in [
        (
            ("transport = \"sse\"", "transport = \"long-poll\""),
            "`targets.django-eventstream.transport` must be sse or ws",
        ),
        (
            ("path = \"/events/?channel={topic}\"", "path = \"/events/\""),
            "`targets.django-eventstream.path` must start with `/` and contain `{topic}`, got \"/events/\"",
        ),
        (
            (
                "command = [\"targets/django-eventstream/run.sh\"]",
                "command = []",
            ),
            "`targets.django-eventstream.command` must name a program",
        ),
        (
            ("path =", "ready_timeout = \"0s\"\npath ="),
            "`targets.django-eventstream.ready_timeout` must be between 1ms and 10m, got 0s",
        ),
    ] {
        let s = Scenario::from_toml(&base.replace(change.0, change.1)).unwrap();
        let msg = s.validate_with_fd_limit(None).unwrap_err().to_string();
        assert!(msg.contains(needle), "{msg}");
    }
    let s = Scenario::from_toml(&base.replace("django-eventstream", "ws")).unwrap();
    let msg = s.validate_with_fd_limit(None).unwrap_err().to_string();
    assert!(msg.contains("not a built-in transport's name"), "{msg}");
    let msg = Scenario::from_toml(&format!("{base}\nready_pth = \"/x\""))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ready_pth"), "{msg}");
}

const TWO_GROUPS: &str = r#"
    [[group]]
    name = "idle"
    transport = "sse"
    clients = 8
    topics = 0
    rate = 0.5

    [[group]]
    name = "busy"
    transport = "ws"
    clients = 4
    rate = 20.0
"#;

fn mixed(extra: &str) -> anyhow::Result<Scenario> {
    let mut s = Scenario::from_toml(&format!("{extra}\n{TWO_GROUPS}"))?;
    s.resolve_topics();
    Ok(s)
}

#[test]
fn groups_decide_the_fleet_and_get_disjoint_topic_ranges() {
    let s = mixed("").unwrap();
    s.validate_with_fd_limit(Some(20_000)).unwrap();
    assert!(s.is_mixed());
    assert_eq!(s.clients, 12, "the groups' sum");
    assert_eq!(s.topics, 9, "8 per-client topics + 1 hot topic");
    let ts: Vec<&str> = s.transports.iter().map(Contender::name).collect();
    assert_eq!(ts, ["sse", "ws"]);
    assert_eq!((s.group[0].topics, s.group[1].topics), (8, 1));
    let ranges = protocol::schedule::TopicGroup::schedules(&s.topic_groups(), 1);
    assert_eq!(ranges[0].0, 0);
    assert_eq!(ranges[1].0, 8, "busy's topic is t8, after idle's t0…t7");
    assert_eq!((ranges[0].1.rate, ranges[1].1.rate), (0.5, 20.0));
    // A group's own scenario is a plain one-transport scenario.
    let busy = s.group[1].scenario(&s);
    assert!(!busy.is_mixed());
    assert_eq!((busy.clients, busy.topics, busy.rate), (4, 1, 20.0));
}

#[test]
fn bad_groups_are_refused_naming_the_key_the_range_and_the_value() {
    let e = |extra: &str, edit: &dyn Fn(&mut Scenario)| {
        let mut s = mixed(extra).unwrap();
        edit(&mut s);
        s.validate_with_fd_limit(Some(20_000))
            .unwrap_err()
            .to_string()
    };
    let msg = e("", &|s| s.group[1].clients = 0);
    assert!(
        msg.contains("`group[1].clients` must be at least 1, got 0"),
        "{msg}"
    );
    let msg = e("", &|s| s.group[1].name = "idle".into());
    assert!(
        msg.contains("`group[1].name` must differ") && msg.contains("\"idle\""),
        "{msg}"
    );
    let msg = e("", &|s| s.group[0].name = "a b".into());
    assert!(msg.contains("`group[0].name` must be 1 to 32"), "{msg}");
    let msg = e("", &|s| s.group[1].transport = TransportKind::Tcp);
    assert!(
        msg.contains("`group[1].transport` must be one of") && msg.contains("got tcp"),
        "{msg}"
    );
    let msg = e("", &|s| s.group[1].rate = -1.0);
    assert!(
        msg.contains("`group[1].rate`") && msg.contains("got -1") && msg.contains("busy"),
        "{msg}"
    );
    let msg = e("", &|s| s.group[1].senders = 2);
    assert!(
        msg.contains("`group[1].rate` must be 0 when `senders` > 0"),
        "{msg}"
    );
    let msg = e("", &|s| s.group[0].clients = 19_000);
    assert!(
        msg.contains("add up to at most 19000") && msg.contains("got 19004"),
        "{msg}"
    );
    let msg = e("", &|s| {
        s.faults = vec![Fault::parse_spec("drop@1s:0.5").unwrap()]
    });
    assert!(
        msg.contains("`faults` must be empty with `[[group]]`"),
        "{msg}"
    );
    let msg = e("[sweep]\nclients = [10, 20]\n", &|_| {});
    assert!(
        msg.contains("`sweep` must be empty with `[[group]]`"),
        "{msg}"
    );
}

#[test]
fn keys_the_groups_decide_are_refused_beside_them() {
    for (key, value, group_key) in [
        ("transports", "[\"sse\"]", "transport"),
        ("clients", "10", "clients"),
        ("rate", "1.0", "rate"),
        ("senders", "1", "senders"),
    ] {
        let err = mixed(&format!("{key} = {value}")).unwrap_err().to_string();
        assert!(
            err.contains(&format!("`{key}` must not be set beside `[[group]]`"))
                && err.contains(&format!("its own `{group_key}`")),
            "{err}"
        );
    }
    let err = Scenario::from_toml(
        "[[group]]\nname = \"x\"\ntransport = \"sse\"\nclients = 1\nport = 3\n",
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("port"), "{err:#}");
}
