//! The JSON Schema of `run.json`, generated from the types that write it
//! (`schemas/run.schema.json` holds it, checked equal by a test).

use crate::results::RunFile;

/// Where the JSON Schema of `run.json` is kept, relative to the repository root.
pub const RUN_SCHEMA_FILE: &str = "schemas/run.schema.json";

/// The JSON Schema (draft 2020-12) of `run.json`, generated from the types
/// of this module.
///
/// [`RUN_SCHEMA_FILE`] is this value, pretty-printed, and a test checks that
/// they are equal: the published schema cannot drift from the code. It
/// describes what pushbench writes, which is stricter than what it reads:
/// every field is required (none is ever skipped; an absent value is written
/// as `null`), and every object except the free-form `server_config` admits
/// no other keys.
pub fn run_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    // The serialisation contract: a field is required unless it is skipped
    // when serialised, which no field of run.json is.
    generator.into_root_schema_for::<RunFile>().to_value()
}
