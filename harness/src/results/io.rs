//! Reading and writing `run.json`: atomically, and reading every schema
//! version from [`OLDEST_READ_VERSION`](super::OLDEST_READ_VERSION) on.

use crate::results::OLDEST_READ_VERSION;
use crate::results::RunFile;
use crate::results::SCHEMA_VERSION;
use anyhow::{Context as _, anyhow, bail};
use std::io::Write as _;
use std::path::Path;

/// Name of the results file inside a run directory.
pub const RUN_FILE: &str = "run.json";

/// Writes `dir/run.json` (pretty JSON), creating `dir` if needed.
///
/// The file is written atomically (temporary file in the same directory, then
/// rename), so a crash or a concurrent `pushbench report` never sees half a file.
pub fn write_run(dir: &Path, run: &RunFile) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating results directory {}", dir.display()))?;
    let mut json = serde_json::to_vec_pretty(run).context("serialising run.json")?;
    json.push(b'\n');
    write_atomic(&dir.join(RUN_FILE), &json)
}

/// Reads and checks `dir/run.json`.
///
/// Errors name the file and say what is wrong with it: missing, not JSON, not a
/// pushbench results file, or written with a `schema_version` this build does
/// not know (reading it as if it were ours would silently mislabel figures).
pub fn read_run(dir: &Path) -> anyhow::Result<RunFile> {
    let path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_run(&text).with_context(|| format!("{} is not a usable pushbench run", path.display()))
}

/// Parses the text of a `run.json`, checking `schema_version` before the layout.
///
/// The version is checked first so that a file from a newer (or older)
/// pushbench gets a message about versions rather than a confusing
/// "missing field" error.
pub fn parse_run(text: &str) -> anyhow::Result<RunFile> {
    let value: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
    let version = match value.get("schema_version") {
        None => bail!("no `schema_version` field: not a pushbench run.json"),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| anyhow!("`schema_version` is {v}, expected a whole number"))?,
    };
    if !(u64::from(OLDEST_READ_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&version) {
        bail!(
            "schema_version {version} is not supported: this pushbench ({}) reads schema_version \
             {OLDEST_READ_VERSION} to {SCHEMA_VERSION}; use the pushbench that wrote the run, or re-run it",
            env!("CARGO_PKG_VERSION")
        );
    }
    serde_json::from_value(value).context("does not match the run.json layout")
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory
/// is written, flushed to disk and renamed over `path`.
///
/// Used for every derived file too (`report.md`, SVG plots), so readers (a
/// browser, a CI artefact upload) never see a truncated file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".pushbench-").suffix(".tmp");
    // Temporary files are private (0600) by default; results are meant to be
    // read by others (CI artefacts, a web server), so make them 0644 like any file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
