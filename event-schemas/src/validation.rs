//! Validation of payloads against the generated JSON Schemas (feature `validation`), for tests
//! that check that what the code produces is what the schemas promise.

use crate::json_schema::schema_of;

/// Checks `payload` against the current schema of `event_type`.
pub fn validate_payload(event_type: &str, payload: &serde_json::Value) -> Result<(), String> {
    let schema = schema_of(event_type).ok_or_else(|| format!("no schema for event type {event_type}"))?;
    let validator = jsonschema::draft202012::new(schema.schema.as_value())
        .map_err(|e| format!("schema of {event_type} does not compile: {e}"))?;
    let errors: Vec<String> = validator.iter_errors(payload).map(|e| e.to_string()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{event_type} payload {payload} violates its schema: {}", errors.join("; ")))
    }
}
