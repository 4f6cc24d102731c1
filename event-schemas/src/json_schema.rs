//! JSON Schema (draft 2020-12) of every event payload and of the envelope.
//!
//! The files under `event-schemas/json/` are generated from the types and checked in; the test
//! `checked_in_schemas_match_the_code` fails when they drift. Regenerate them with
//! `FLOWFUSE_BLESS=1 cargo test -p event-schemas`.

use crate::catalog::{Event, EventPayload};
use crate::envelope::{Category, RecordedEvent};

/// The schema of one event type at its current version.
#[derive(Debug, Clone)]
pub struct EventSchema {
    pub event_type: &'static str,
    pub schema_version: u32,
    pub category: Category,
    pub schema: schemars::Schema,
}

impl EventSchema {
    pub(crate) fn of<T: EventPayload>(category: Category) -> Self {
        Self {
            event_type: T::EVENT_TYPE,
            schema_version: T::SCHEMA_VERSION,
            category,
            schema: schemars::schema_for!(T),
        }
    }

    /// The file name under `json/`, e.g. `WorkflowCreated.v1.schema.json`; also the tail of the
    /// `dataschema` URI of CloudEvents.
    pub fn file_name(&self) -> String {
        format!("{}.v{}.schema.json", self.event_type, self.schema_version)
    }
}

/// Every generated file: name and pretty-printed content (with a trailing newline).
pub fn generated_files() -> Vec<(String, String)> {
    let render = |schema: &schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&sorted(schema.as_value())).expect("schemas serialize");
        text.push('\n');
        text
    };
    let mut files: Vec<(String, String)> =
        Event::schemas().iter().map(|s| (s.file_name(), render(&s.schema))).collect();
    files.push(("envelope.schema.json".into(), render(&schemars::schema_for!(RecordedEvent))));
    files
}

/// `value` with every object's keys in sorted order, so that the generated text is the same
/// whether or not serde_json's `preserve_order` feature is on in this build.
pub(crate) fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&fields[k]))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The schema of `event_type` at its current version.
pub fn schema_of(event_type: &str) -> Option<EventSchema> {
    Event::schemas().into_iter().find(|s| s.event_type == event_type)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn json_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json")
    }

    #[test]
    fn checked_in_schemas_match_the_code() {
        let dir = json_dir();
        let files = generated_files();
        if std::env::var_os("FLOWFUSE_BLESS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text) in &files {
                std::fs::write(dir.join(name), text).unwrap();
            }
        }
        let mut stale = Vec::new();
        for (name, text) in &files {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(on_disk) if &on_disk == text => {}
                _ => stale.push(name.clone()),
            }
        }
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.retain(|name| !files.iter().any(|(generated, _)| generated == name));
        assert!(
            stale.is_empty() && on_disk.is_empty(),
            "event-schemas/json is out of date (stale or missing: {stale:?}; not generated: {on_disk:?}); \
             run FLOWFUSE_BLESS=1 cargo test -p event-schemas"
        );
    }

    #[test]
    fn every_schema_is_a_valid_draft_2020_12_schema() {
        for schema in Event::schemas() {
            assert_eq!(
                schema.schema.get("$schema").and_then(|v| v.as_str()),
                Some("https://json-schema.org/draft/2020-12/schema"),
                "{}",
                schema.event_type
            );
            assert!(jsonschema::draft202012::meta::is_valid(schema.schema.as_value()), "{}", schema.event_type);
        }
    }
}
