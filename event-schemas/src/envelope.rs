//! The event envelope of CONTRACT.md: what an event looks like before and after it is stored.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kind of stream an event belongs to; also names its Kafka topic (`flowfuse.<category>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Workspace,
    ApiKey,
    Workflow,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::Workspace, Category::ApiKey, Category::Workflow];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Workspace => "workspace",
            Category::ApiKey => "apikey",
            Category::Workflow => "workflow",
        }
    }
}

impl FromStr for Category {
    type Err = StreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| StreamIdError::UnknownCategory(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("stream id must look like <category>-<uuid>, got {0:?}")]
    Malformed(String),
    #[error("unknown stream category {0:?}")]
    UnknownCategory(String),
}

/// A stream identifier `<category>-<uuid>`, e.g. `workflow-0190c1f0-…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    category: Category,
    id: Uuid,
}

impl StreamId {
    pub fn new(category: Category, id: Uuid) -> Self {
        Self { category, id }
    }

    pub fn category(&self) -> Category {
        self.category
    }

    pub fn id(&self) -> Uuid {
        self.id
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.category.as_str(), self.id)
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (category, id) = s.split_once('-').ok_or_else(|| StreamIdError::Malformed(s.to_owned()))?;
        let category = category.parse()?;
        let id = Uuid::try_parse(id).map_err(|_| StreamIdError::Malformed(s.to_owned()))?;
        Ok(Self { category, id })
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for StreamId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StreamId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(workspace|apikey|workflow)-[0-9a-fA-F-]{36}$"
        })
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    ApiKey,
    User,
    System,
}

impl ActorKind {
    /// The name used in payloads, headers and read models (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::ApiKey => "api_key",
            ActorKind::User => "user",
            ActorKind::System => "system",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn system(id: impl Into<String>) -> Self {
        Self { kind: ActorKind::System, id: id.into() }
    }

    pub fn api_key(id: Uuid) -> Self {
        Self { kind: ActorKind::ApiKey, id: id.to_string() }
    }
}

/// An event about to be appended. The store assigns its version, position and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub workspace_id: Uuid,
    /// Truncated to microseconds by [`NewEvent::now`], because that is what PostgreSQL keeps and
    /// the hash must be recomputable from what is read back.
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
}

impl NewEvent {
    /// A new event of the given typed payload, with a fresh UUIDv7 and the current time.
    pub fn now(workspace_id: Uuid, actor: Actor, event: &crate::Event) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            workspace_id,
            occurred_at: Utc::now().trunc_subsecs(6),
            actor,
            correlation_id: None,
            causation_id: None,
            payload: event.to_payload(),
            metadata: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn with_correlation(mut self, correlation_id: Option<String>, causation_id: Option<String>) -> Self {
        self.correlation_id = correlation_id;
        self.causation_id = causation_id;
        self
    }
}

/// An event as stored: the envelope of CONTRACT.md, as served to auditors in NDJSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecordedEvent {
    pub global_position: i64,
    pub stream_id: StreamId,
    pub version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub workspace_id: Uuid,
    #[serde(with = "micros")]
    #[schemars(with = "String")]
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// RFC 3339 UTC timestamps with exactly six fractional digits, so that the text an auditor sees
/// is the text that was hashed.
pub mod micros {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&raw).map(|at| at.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_round_trip_and_reject_garbage() {
        let id = StreamId::new(Category::Workflow, Uuid::now_v7());
        assert_eq!(id.to_string().parse::<StreamId>().unwrap(), id);
        assert_eq!("nope-123".parse::<StreamId>(), Err(StreamIdError::UnknownCategory("nope".into())));
        assert!(matches!("workflow-xyz".parse::<StreamId>(), Err(StreamIdError::Malformed(_))));
        assert!(matches!("workflow".parse::<StreamId>(), Err(StreamIdError::Malformed(_))));
    }
}
