//! run.json on disk: written and read back unchanged, and every way a
//! results file can be wrong named with the file and the problem.

use std::path::Path;

use harness::report;
use harness::results::{self, Summary};

use crate::report::synthetic_run;

#[test]
fn run_json_round_trips() {
    let run = synthetic_run();
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("results").join("fanout-small");
    results::io::write_run(&nested, &run).unwrap();
    let text = std::fs::read_to_string(nested.join("run.json")).unwrap();
    assert!(
        text.contains("\n  \"schema_version\": 5,"),
        "pretty JSON expected"
    );
    assert!(
        !text.contains("\"floor\""),
        "the attached floor is never stored"
    );
    let back = results::io::read_run(&nested).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&run).unwrap()
    );
    let h = results::decode_histogram(&back.transports[2].histograms.latency_us).unwrap();
    assert_eq!(Summary::from_histogram(&h), run.transports[2].latency);
}

/// The full error chain, as `pushbench` prints it.
fn error_of(dir: &Path) -> String {
    format!("{:#}", results::io::read_run(dir).unwrap_err())
}

#[test]
fn read_run_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.json");

    let e = error_of(dir.path());
    assert!(
        e.contains("cannot read") && e.contains(&file.display().to_string()),
        "{e}"
    );
    assert!(format!("{:#}", report::render_dir(dir.path()).unwrap_err()).contains("run.json"));

    std::fs::write(&file, "{ \"schema_version\": 1, ").unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains(&file.display().to_string()) && e.contains("not valid JSON"),
        "{e}"
    );

    std::fs::write(&file, r#"{"hello": "world"}"#).unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("no `schema_version`"), "{e}");

    let mut v = serde_json::to_value(synthetic_run()).unwrap();
    v["schema_version"] = 99.into();
    std::fs::write(&file, v.to_string()).unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains("schema_version 99 is not supported")
            && e.contains("reads schema_version 2 to 5"),
        "{e}"
    );

    // A version-2 file (before sweeps: no `point`) is still read, as no sweep.
    let mut v2 = serde_json::to_value(synthetic_run()).unwrap();
    v2["schema_version"] = 2.into();
    for t in v2["transports"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("point");
    }
    std::fs::write(&file, v2.to_string()).unwrap();
    let old = results::io::read_run(dir.path()).unwrap();
    assert_eq!(old.schema_version, 2);
    assert!(old.transports.iter().all(|t| t.point.is_none()));

    // A version-3 file (before mixed runs: no `groups`) is still read, as not mixed.
    let mut v3 = serde_json::to_value(synthetic_run()).unwrap();
    v3["schema_version"] = 3.into();
    for t in v3["transports"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("groups");
    }
    std::fs::write(&file, v3.to_string()).unwrap();
    let old = results::io::read_run(dir.path()).unwrap();
    assert_eq!(old.schema_version, 3);
    assert!(old.transports.iter().all(|t| t.groups.is_empty()));
    assert!(!report::is_mixed(&old));

    // A version-1 file (before costs and repetitions) is refused by version, not by layout.
    v["schema_version"] = 1.into();
    std::fs::write(&file, v.to_string()).unwrap();
    assert!(error_of(dir.path()).contains("schema_version 1 is not supported"));

    v["schema_version"] = "1".into();
    std::fs::write(&file, v.to_string()).unwrap();
    assert!(error_of(dir.path()).contains("expected a whole number"));

    let mut v = serde_json::to_value(synthetic_run()).unwrap();
    v.as_object_mut().unwrap().remove("transports");
    std::fs::write(&file, v.to_string()).unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains("does not match the run.json layout") && e.contains("transports"),
        "{e}"
    );
}
