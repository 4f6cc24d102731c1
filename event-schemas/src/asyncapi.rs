//! The AsyncAPI 3.0 document of the Kafka topics (`event-schemas/asyncapi.yaml`), generated from
//! the event catalog so that it lists every event type. It is written as JSON, which is YAML.
//! A test fails when the checked-in file differs (`FLOWFUSE_BLESS=1` regenerates it).

use serde_json::{Map, Value, json};

use crate::catalog::Event;
use crate::envelope::Category;

/// The CloudEvents headers of every record (binary mode, Kafka protocol binding 1.0).
const HEADERS: [(&str, &str); 18] = [
    ("ce_specversion", "CloudEvents version: 1.0"),
    ("ce_id", "The event id (UUIDv7), unique across all events"),
    ("ce_source", "/flowfuse/workspaces/<workspace_id>"),
    ("ce_type", "dev.flowfuse.<EventType>, e.g. dev.flowfuse.WorkflowCreated"),
    ("ce_time", "When the event occurred (RFC 3339 UTC, microseconds)"),
    ("ce_subject", "The stream id, <category>-<uuid>"),
    ("ce_dataschema", "URL of the JSON Schema of the payload, ending in <EventType>.v<N>.schema.json"),
    ("content-type", "application/json"),
    ("ce_partitionkey", "The stream id (also the record key)"),
    ("ce_workspaceid", "The workspace the event belongs to"),
    ("ce_streamversion", "The event's version in its stream (1, 2, 3, …), as text"),
    ("ce_position", "The event's global position in the event store, as text"),
    ("ce_schemaversion", "The payload's schema version, as text"),
    ("ce_correlationid", "The request or trace the event belongs to (may be empty)"),
    ("ce_causationid", "The request that caused the event (may be empty)"),
    ("ce_actorkind", "api_key, user or system"),
    ("ce_actorid", "The id of the actor"),
    ("traceparent", "W3C trace context of the request that caused the event"),
];

pub fn document() -> Value {
    let schemas = Event::schemas();
    let headers: Map<String, Value> = HEADERS
        .iter()
        .map(|(name, description)| ((*name).to_owned(), json!({"type": "string", "description": description})))
        .collect();
    let mut messages = Map::new();
    let mut channels = Map::new();
    let mut operations = Map::new();
    for category in Category::ALL {
        let topic = format!("flowfuse.{}", category.as_str());
        let mut channel_messages = Map::new();
        for schema in schemas.iter().filter(|s| s.category == category) {
            channel_messages.insert(
                schema.event_type.to_owned(),
                json!({"$ref": format!("#/components/messages/{}", schema.event_type)}),
            );
            messages.insert(
                schema.event_type.to_owned(),
                json!({
                    "name": schema.event_type,
                    "title": schema.event_type,
                    "summary": schema.schema.get("description").cloned().unwrap_or(Value::Null),
                    "contentType": "application/json",
                    "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
                    "payload": {"$ref": format!("./json/{}", schema.file_name())},
                    "bindings": {"kafka": {
                        "key": {"type": "string", "description": "The stream id: records of one stream share a partition, in order"},
                        "bindingVersion": "0.5.0"
                    }}
                }),
            );
        }
        let name = category.as_str();
        channels.insert(
            name.to_owned(),
            json!({
                "address": topic,
                "description": format!("Every event of every {name} stream, at least once, in stream order per key."),
                "messages": channel_messages,
            }),
        );
        let refs: Vec<Value> =
            channel_messages.keys().map(|m| json!({"$ref": format!("#/channels/{name}/messages/{m}")})).collect();
        operations.insert(
            format!("consume-{name}"),
            json!({"action": "receive", "channel": {"$ref": format!("#/channels/{name}")}, "messages": refs}),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "FlowFuse events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every event appended to the FlowFuse event store, fanned out to Kafka by the relay: one topic per stream category, record key = stream id, value = the event payload as JSON, CloudEvents attributes as headers (binary mode). Delivery is at least once with per-stream order: deduplicate on ce_id, or on (ce_subject, ce_streamversion).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"CloudEventsHeaders": {"type": "object", "properties": headers, "required": HEADERS.iter().map(|(n, _)| *n).collect::<Vec<_>>()}},
            "messages": messages,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn checked_in_asyncapi_matches_the_code() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("asyncapi.yaml");
        let mut generated = serde_json::to_string_pretty(&crate::json_schema::sorted(&super::document())).unwrap();
        generated.push('\n');
        if std::env::var_os("FLOWFUSE_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "event-schemas/asyncapi.yaml is out of date: run FLOWFUSE_BLESS=1 cargo test -p event-schemas"
        );
        let document: serde_json::Value = serde_json::from_str(&on_disk).unwrap();
        assert_eq!(document["channels"]["workflow"]["address"], "flowfuse.workflow");
        let messages = document["components"]["messages"].as_object().unwrap();
        assert_eq!(messages.len(), crate::catalog::Event::schemas().len(), "every event type is documented");
        for message in messages.values() {
            let file = message["payload"]["$ref"].as_str().unwrap().trim_start_matches("./");
            assert!(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file).exists(), "{file} exists");
        }
    }
}
