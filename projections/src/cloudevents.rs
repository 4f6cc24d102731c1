//! CloudEvents binary mode over Kafka (Kafka protocol binding 1.0): the record's value is the
//! event payload as JSON, every attribute is a `ce_` header, the key is the stream id.
//! `docs/kafka.md` and `event-schemas/asyncapi.yaml` list the headers for consumers.

use chrono::{DateTime, Utc};
use event_schemas::{Actor, ActorKind, RecordedEvent, StreamId};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const SOURCE_PREFIX: &str = "/flowfuse/workspaces/";
pub const TYPE_PREFIX: &str = "dev.flowfuse.";
pub const SCHEMA_BASE: &str = "https://flowfuse.dev/schemas/";

/// The envelope fields a record's headers carry, borrowed from an event read from the store or
/// received from the broker.
pub struct Attributes<'a> {
    pub event_id: Uuid,
    pub workspace_id: Uuid,
    pub stream_id: StreamId,
    pub version: i64,
    pub global_position: i64,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub occurred_at: &'a DateTime<Utc>,
    pub actor: &'a Actor,
    pub correlation_id: Option<&'a str>,
    pub causation_id: Option<&'a str>,
}

impl<'a> From<&'a RecordedEvent> for Attributes<'a> {
    fn from(e: &'a RecordedEvent) -> Self {
        Self {
            event_id: e.event_id,
            workspace_id: e.workspace_id,
            stream_id: e.stream_id,
            version: e.version,
            global_position: e.global_position,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            occurred_at: &e.occurred_at,
            actor: &e.actor,
            correlation_id: e.correlation_id.as_deref(),
            causation_id: e.causation_id.as_deref(),
        }
    }
}

impl<'a> From<&'a ProjectedEvent> for Attributes<'a> {
    fn from(e: &'a ProjectedEvent) -> Self {
        Self {
            event_id: e.event_id,
            workspace_id: e.workspace_id,
            stream_id: e.stream_id,
            version: e.version,
            global_position: e.global_position,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            occurred_at: &e.occurred_at,
            actor: &e.actor,
            correlation_id: e.correlation_id.as_deref(),
            causation_id: e.causation_id.as_deref(),
        }
    }
}

/// The W3C `traceparent` of an event: the correlation id when it is a trace id (it came from the
/// request's `traceparent`), otherwise a trace id derived from the correlation id; the span id is
/// derived from the event id.
fn traceparent(event: &Attributes<'_>) -> String {
    let correlation = event.correlation_id.map_or_else(|| event.event_id.to_string(), str::to_owned);
    let is_trace_id = correlation.len() == 32 && correlation.bytes().all(|b| b.is_ascii_hexdigit());
    let trace_id = if is_trace_id {
        correlation.to_ascii_lowercase()
    } else {
        hex::encode(&Sha256::digest(correlation.as_bytes())[..16])
    };
    let span_id = hex::encode(&event.event_id.as_bytes()[8..]);
    format!("00-{trace_id}-{span_id}-01")
}

/// The headers of `event`'s record.
pub fn headers<'a>(event: impl Into<Attributes<'a>>) -> OwnedHeaders {
    let event = event.into();
    let actor_kind = event.actor.kind.as_str();
    let pairs: Vec<(&str, String)> = vec![
        ("ce_specversion", "1.0".to_owned()),
        ("ce_id", event.event_id.to_string()),
        ("ce_source", format!("{SOURCE_PREFIX}{}", event.workspace_id)),
        ("ce_type", format!("{TYPE_PREFIX}{}", event.event_type)),
        ("ce_time", event_schemas::envelope::micros::format(event.occurred_at)),
        ("ce_subject", event.stream_id.to_string()),
        ("ce_dataschema", format!("{SCHEMA_BASE}{}.v{}.schema.json", event.event_type, event.schema_version)),
        ("content-type", "application/json".to_owned()),
        ("ce_partitionkey", event.stream_id.to_string()),
        ("ce_workspaceid", event.workspace_id.to_string()),
        ("ce_streamversion", event.version.to_string()),
        ("ce_position", event.global_position.to_string()),
        ("ce_schemaversion", event.schema_version.to_string()),
        ("ce_correlationid", event.correlation_id.unwrap_or_default().to_owned()),
        ("ce_causationid", event.causation_id.unwrap_or_default().to_owned()),
        ("ce_actorkind", actor_kind.to_owned()),
        ("ce_actorid", event.actor.id.clone()),
        ("traceparent", traceparent(&event)),
    ];
    pairs.into_iter().fold(OwnedHeaders::new_with_capacity(18), |headers, (key, value)| {
        headers.insert(Header { key, value: Some(value.as_bytes()) })
    })
}

/// An event as the projector needs it: read back from a record, or from the event store.
#[derive(Debug, Clone)]
pub struct ProjectedEvent {
    pub stream_id: StreamId,
    pub version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub workspace_id: Uuid,
    pub global_position: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// The payload as it came, checked to be JSON: it is parsed once, straight into its typed
    /// event, rather than into a `serde_json::Value` first (a tree of every record, built only
    /// to be decoded again; the projector ran about 5 % faster without it).
    pub payload: Box<RawValue>,
}

impl From<&RecordedEvent> for ProjectedEvent {
    fn from(event: &RecordedEvent) -> Self {
        Self {
            stream_id: event.stream_id,
            version: event.version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            workspace_id: event.workspace_id,
            global_position: event.global_position,
            occurred_at: event.occurred_at,
            actor: event.actor.clone(),
            correlation_id: event.correlation_id.clone(),
            causation_id: event.causation_id.clone(),
            payload: serde_json::value::to_raw_value(&event.payload).expect("a JSON value serializes"),
        }
    }
}

/// Why a record is not a FlowFuse event.
#[derive(Debug, thiserror::Error)]
#[error("malformed record: {0}")]
pub struct MalformedRecord(pub String);

/// Reads a record back into an event.
pub fn parse(headers: Option<&impl Headers>, payload: Option<&[u8]>) -> Result<ProjectedEvent, MalformedRecord> {
    let headers = headers.ok_or_else(|| MalformedRecord("no headers".into()))?;
    // Read out once: each header read is a call into librdkafka, and a record has eighteen.
    let headers: Vec<Header<'_, &[u8]>> = headers.iter().collect();
    let get = |name: &str| -> Result<&str, MalformedRecord> {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or_else(|| MalformedRecord(format!("missing header {name}")))
    };
    let bad = |name: &str| MalformedRecord(format!("invalid header {name}"));
    let optional = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let event_type = get("ce_type")?.strip_prefix(TYPE_PREFIX).ok_or_else(|| bad("ce_type"))?.to_owned();
    let actor_kind = match get("ce_actorkind")? {
        "api_key" => ActorKind::ApiKey,
        "user" => ActorKind::User,
        "system" => ActorKind::System,
        _ => return Err(bad("ce_actorkind")),
    };
    let payload = payload.ok_or_else(|| MalformedRecord("no value".into()))?;
    Ok(ProjectedEvent {
        stream_id: get("ce_subject")?.parse().map_err(|_| bad("ce_subject"))?,
        version: get("ce_streamversion")?.parse().map_err(|_| bad("ce_streamversion"))?,
        event_id: get("ce_id")?.parse().map_err(|_| bad("ce_id"))?,
        event_type,
        schema_version: get("ce_schemaversion")?.parse().map_err(|_| bad("ce_schemaversion"))?,
        workspace_id: get("ce_workspaceid")?.parse().map_err(|_| bad("ce_workspaceid"))?,
        global_position: get("ce_position")?.parse().map_err(|_| bad("ce_position"))?,
        occurred_at: DateTime::parse_from_rfc3339(get("ce_time")?).map_err(|_| bad("ce_time"))?.with_timezone(&Utc),
        actor: Actor { kind: actor_kind, id: get("ce_actorid")?.to_owned() },
        correlation_id: optional(get("ce_correlationid")?),
        causation_id: optional(get("ce_causationid")?),
        payload: serde_json::from_slice(payload).map_err(|e| MalformedRecord(format!("value is not JSON: {e}")))?,
    })
}
