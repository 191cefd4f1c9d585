//! The one form in which kmsconf publishes a JSON Schema (the config's and each `--json`
//! document's): draft 2020-12, pretty-printed, with a final newline so the committed files diff
//! cleanly against what the binary prints.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;

/// The JSON Schema of what kmsconf reads as `T`: a field with a default may be left out.
pub fn of_input<T: JsonSchema>() -> String {
    document::<T>(SchemaSettings::draft2020_12().for_deserialize())
}

/// The JSON Schema of what kmsconf writes as `T`: every field it always writes is required,
/// `null` included.
pub fn of_output<T: JsonSchema>() -> String {
    document::<T>(SchemaSettings::draft2020_12().for_serialize())
}

fn document<T: JsonSchema>(settings: SchemaSettings) -> String {
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
