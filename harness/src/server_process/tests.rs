//! Unit tests of [`super`] (`server_process`).

use super::*;
use crate::scenario::Scenario;

#[test]
fn args_carry_the_scenario() {
    let s = Scenario {
        event_type: Some("status".into()),
        ..Scenario::default()
    };
    let args = ServerSpec::from_scenario(&s, 1_700_000_000_000_000).args();
    let joined = args.join(" ");
    assert!(joined.contains("--listen 127.0.0.1:0"), "{joined}");
    assert!(joined.contains("--rate 10 "), "{joined}");
    assert!(joined.contains("--topics 1 "), "{joined}");
    assert!(
        joined.contains("--start-epoch-us 1700000000000000"),
        "{joined}"
    );
    assert!(joined.contains("--payload-bytes 64"), "{joined}");
    assert!(joined.contains("--keepalive 15s"), "{joined}");
    assert!(joined.contains("--event-type status"), "{joined}");
    assert!(joined.contains("--fanout direct"), "{joined}");
    assert!(!joined.contains("--tcp-listen"), "{joined}");
    assert!(!joined.contains("--topic-group"), "{joined}");
    let mut spec = ServerSpec::from_scenario(&s, 1);
    spec.tcp = true;
    assert!(spec.args().join(" ").contains("--tcp-listen 127.0.0.1:0"));
    let tasks = Scenario {
        fanout: protocol::Fanout::Tasks,
        ..Scenario::default()
    };
    let args = ServerSpec::from_scenario(&tasks, 1).args().join(" ");
    assert!(args.contains("--fanout tasks"), "{args}");
}

#[test]
fn a_target_gets_the_same_schedule_in_its_environment() {
    let s = Scenario {
        rate: 2.5,
        topics: 3,
        ..Scenario::default()
    };
    let spec = ServerSpec::from_scenario(&s, 1_700_000_000_000_000);
    let env: std::collections::BTreeMap<String, String> =
        target_env(&spec, "127.0.0.1:4321".parse().unwrap())
            .into_iter()
            .collect();
    let get = |k: &str| env.get(k).map(String::as_str);
    assert_eq!(get("PUSHBENCH_LISTEN"), Some("127.0.0.1:4321"));
    assert_eq!(get("PUSHBENCH_START_EPOCH_US"), Some("1700000000000000"));
    // Rust's shortest round-trip form: any language's float parser reads back the same f64.
    assert_eq!(get("PUSHBENCH_RATE"), Some("2.5"));
    assert_eq!(get("PUSHBENCH_TOPICS"), Some("3"));
    assert_eq!(get("PUSHBENCH_PAYLOAD_BYTES"), Some("64"));
    assert_eq!(get("PUSHBENCH_EVENT_TYPE"), Some(""), "the default type");
    assert_eq!(get("PUSHBENCH_RETRY_MS"), Some("1000"));
}

/// A real reply of push-server (`schemas/stats-reply.example.json`).
const EXAMPLE: &str = include_str!("../../../schemas/stats-reply.example.json");

#[test]
fn stats_are_read_strictly_and_sum_route_requests() {
    let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    v["requests"] = serde_json::json!(
        {"poll":10,"longpoll":5,"sse":2,"ws":0,"publish":0,"tcp":1,"bad":3});
    v["bytes_in"] = 100.into();
    v["bytes_out"] = 2000.into();
    v["connections_accepted"] = 4.into();
    let s = parse_stats(v.to_string().as_bytes()).unwrap();
    assert_eq!(s.route_requests(), 18, "bad is not a route");
    let w = wire_counts(&s);
    assert_eq!(
        (w.bytes_in, w.bytes_out, w.requests, w.connections_accepted),
        (100, 2000, 18, 4)
    );
    assert_eq!(s.config.schedule().rate, s.config.rate);

    // Another version, no version, an unknown field, a missing field: refused.
    let refused =
        |v: &serde_json::Value| format!("{:#}", parse_stats(v.to_string().as_bytes()).unwrap_err());
    let mut other = v.clone();
    other["stats_version"] = 2.into();
    assert!(refused(&other).contains("version 2"), "{}", refused(&other));
    let mut none = v.clone();
    none.as_object_mut().unwrap().remove("stats_version");
    assert!(refused(&none).contains("without a `stats_version`"));
    let mut unknown = v.clone();
    unknown["config"]["surprise"] = 1.into();
    assert!(
        refused(&unknown).contains("surprise"),
        "{}",
        refused(&unknown)
    );
    let mut missing = v.clone();
    missing.as_object_mut().unwrap().remove("bytes_out");
    assert!(
        refused(&missing).contains("bytes_out"),
        "{}",
        refused(&missing)
    );
    assert!(parse_stats(b"{}").is_err());
}

#[test]
fn ready_lines_are_parsed() {
    let r: Ready =
        serde_json::from_str(r#"{"listening":"0.0.0.0:80","tcp":"127.0.0.1:81"}"#).unwrap();
    let (http, tcp) = parse_ready(&r).unwrap();
    assert_eq!(http.to_string(), "127.0.0.1:80");
    assert_eq!(tcp.unwrap().to_string(), "127.0.0.1:81");
    let r: Ready = serde_json::from_str(r#"{"listening":"nonsense"}"#).unwrap();
    assert!(parse_ready(&r).is_err());
}

#[test]
fn missing_binary_is_explained() {
    let e = find_server_bin(Some(Path::new("/nonexistent/push-server"))).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/push-server"), "{msg}");
    assert!(msg.contains("cargo build --release -p servers"), "{msg}");
}

#[tokio::test]
async fn a_server_that_exits_at_once_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fake-server");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'error: port on fire' >&2\nexit 3\n",
    )
    .unwrap();
    make_executable(&script);
    let log = dir.path().join("server.log");
    let e = start_script(&script, &log).await.unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("port on fire"), "{msg}");
    assert!(msg.contains("exit status: 3"), "{msg}");
}

#[tokio::test]
async fn a_server_that_never_gets_ready_is_killed_after_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow-server");
    std::fs::write(&script, "#!/bin/sh\necho starting\nexec sleep 60\n").unwrap();
    make_executable(&script);
    let t = std::time::Instant::now();
    let e = start_script(&script, &dir.path().join("log"))
        .await
        .unwrap_err();
    assert!(t.elapsed() < READY_TIMEOUT + Duration::from_secs(3));
    assert!(format!("{e:#}").contains("not ready within 10s"), "{e:#}");
}

#[tokio::test]
async fn stop_terminates_and_reports_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ok-server");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"listening\":\"0.0.0.0:4321\"}'\nexec sleep 60\n",
    )
    .unwrap();
    make_executable(&script);
    let mut server = start_script(&script, &dir.path().join("log"))
        .await
        .unwrap();
    assert_eq!(server.base_url(), "http://127.0.0.1:4321");
    assert!(server.pid() > 0);
    assert!(server.exited().is_none());
    let status = server.stop().await.unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `ServerProcess::start`, retried on ETXTBSY: a script written just now
/// can be "busy" for a moment if another test thread forked while its
/// write descriptor was open (the child holds it until it execs).
async fn start_script(script: &Path, log: &Path) -> anyhow::Result<ServerProcess> {
    let spec = ServerSpec::from_scenario(&Scenario::default(), 1);
    let mut tries = 0;
    loop {
        match ServerProcess::start(script, &spec, log).await {
            Err(e) if tries < 10 && format!("{e:#}").contains("Text file busy") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}
