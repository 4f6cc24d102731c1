//! The catalog of event types: one typed enum per stream category, generated from a single list
//! so that the type name, the schema version, the payload and the JSON Schema cannot drift apart.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api_key::*;
use crate::envelope::{Category, RecordedEvent};
use crate::json_schema::EventSchema;
use crate::upcast;
use crate::workflow::*;
use crate::workspace::*;

/// A payload type: its event type name and current schema version.
pub trait EventPayload: Serialize + DeserializeOwned + JsonSchema {
    const EVENT_TYPE: &'static str;
    const SCHEMA_VERSION: u32;
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("event type {event_type} has no schema version {version} (current is {current})")]
    UnsupportedVersion { event_type: String, version: u32, current: u32 },
    #[error("{event_type} belongs to category {actual}, not {expected}")]
    WrongCategory { event_type: String, expected: &'static str, actual: &'static str },
    #[error("payload of {event_type} v{version} does not match its schema: {source}")]
    InvalidPayload { event_type: String, version: u32, source: serde_json::Error },
}

macro_rules! event_category {
    (
        $(#[$doc:meta])*
        $name:ident as Event::$wrapper:ident in $category:expr => { $($variant:ident($ty:ident) : v $version:literal),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name { $($variant($ty)),* }

        $(
            impl EventPayload for $ty {
                const EVENT_TYPE: &'static str = stringify!($ty);
                const SCHEMA_VERSION: u32 = $version;
            }

            impl From<$ty> for $name {
                fn from(event: $ty) -> Self {
                    $name::$variant(event)
                }
            }
        )*

        impl $name {
            pub const CATEGORY: Category = $category;

            pub fn event_type(&self) -> &'static str {
                match self { $($name::$variant(_) => <$ty as EventPayload>::EVENT_TYPE),* }
            }

            pub fn schema_version(&self) -> u32 {
                match self { $($name::$variant(_) => <$ty as EventPayload>::SCHEMA_VERSION),* }
            }

            pub fn to_payload(&self) -> serde_json::Value {
                match self {
                    $($name::$variant(event) => {
                        serde_json::to_value(event).expect("event payloads serialize to JSON")
                    })*
                }
            }

            /// The current schema version of `event_type`, if it belongs to this category.
            pub fn current_version(event_type: &str) -> Option<u32> {
                match event_type {
                    $(stringify!($ty) => Some($version),)*
                    _ => None,
                }
            }

            /// Parses a payload that is already at its current schema version, owned (its strings
            /// move into the event) or borrowed (nothing is copied but the strings).
            fn parse_current<'de, D>(event_type: &str, payload: D) -> Option<Result<Self, serde_json::Error>>
            where
                D: serde::Deserializer<'de, Error = serde_json::Error>,
            {
                match event_type {
                    $(stringify!($ty) => Some(<$ty as serde::Deserialize>::deserialize(payload).map($name::$variant)),)*
                    _ => None,
                }
            }

            fn push_schemas(out: &mut Vec<EventSchema>) {
                $(out.push(EventSchema::of::<$ty>($category));)*
            }

            /// Decodes a stored event of this category, upcasting older schema versions.
            pub fn decode(event_type: &str, schema_version: u32, payload: serde_json::Value) -> Result<Self, SchemaError> {
                Self::of_category(event_type, Event::decode(event_type, schema_version, payload)?)
            }

            /// Decodes a payload of this category given as JSON text (see [`Event::decode_json`]).
            pub fn decode_json(event_type: &str, schema_version: u32, json: &str) -> Result<Self, SchemaError> {
                Self::of_category(event_type, Event::decode_json(event_type, schema_version, json)?)
            }

            /// Decodes a recorded event of this category.
            pub fn from_recorded(event: &RecordedEvent) -> Result<Self, SchemaError> {
                Self::of_category(&event.event_type, Event::from_recorded(event)?)
            }

            fn of_category(event_type: &str, event: Event) -> Result<Self, SchemaError> {
                match event {
                    Event::$wrapper(event) => Ok(event),
                    other => Err(SchemaError::WrongCategory {
                        event_type: event_type.to_owned(),
                        expected: $category.as_str(),
                        actual: other.category().as_str(),
                    }),
                }
            }
        }
    };
}

event_category! {
    /// Events of a workspace stream: the workspace, its members and its teams.
    WorkspaceEvent as Event::Workspace in Category::Workspace => {
        Created(WorkspaceCreated): v 2,
        Renamed(WorkspaceRenamed): v 1,
        PlanChanged(WorkspacePlanChanged): v 1,
        SettingsChanged(WorkspaceSettingsChanged): v 1,
        MemberAdded(MemberAdded): v 1,
        MemberRoleChanged(MemberRoleChanged): v 1,
        MemberRemoved(MemberRemoved): v 1,
        TeamCreated(TeamCreated): v 1,
        TeamMemberAdded(TeamMemberAdded): v 1,
        TeamMemberRemoved(TeamMemberRemoved): v 1,
    }
}

event_category! {
    /// Events of an API key stream.
    ApiKeyEvent as Event::ApiKey in Category::ApiKey => {
        Issued(ApiKeyIssued): v 1,
        Rotated(ApiKeyRotated): v 1,
        Revoked(ApiKeyRevoked): v 1,
    }
}

event_category! {
    /// Events of a workflow stream.
    WorkflowEvent as Event::Workflow in Category::Workflow => {
        Created(WorkflowCreated): v 1,
        DefinitionChanged(WorkflowDefinitionChanged): v 1,
        DetailsChanged(WorkflowDetailsChanged): v 1,
        Published(WorkflowPublished): v 1,
        Promoted(WorkflowPromoted): v 1,
        Archived(WorkflowArchived): v 1,
        Restored(WorkflowRestored): v 1,
        RolledBack(WorkflowRolledBack): v 1,
    }
}

/// Any event of any category.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Workspace(WorkspaceEvent),
    ApiKey(ApiKeyEvent),
    Workflow(WorkflowEvent),
}

impl Event {
    pub fn category(&self) -> Category {
        match self {
            Event::Workspace(_) => Category::Workspace,
            Event::ApiKey(_) => Category::ApiKey,
            Event::Workflow(_) => Category::Workflow,
        }
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            Event::Workspace(e) => e.event_type(),
            Event::ApiKey(e) => e.event_type(),
            Event::Workflow(e) => e.event_type(),
        }
    }

    pub fn schema_version(&self) -> u32 {
        match self {
            Event::Workspace(e) => e.schema_version(),
            Event::ApiKey(e) => e.schema_version(),
            Event::Workflow(e) => e.schema_version(),
        }
    }

    pub fn to_payload(&self) -> serde_json::Value {
        match self {
            Event::Workspace(e) => e.to_payload(),
            Event::ApiKey(e) => e.to_payload(),
            Event::Workflow(e) => e.to_payload(),
        }
    }

    /// The current schema version of any event type.
    pub fn current_version(event_type: &str) -> Option<u32> {
        WorkspaceEvent::current_version(event_type)
            .or_else(|| ApiKeyEvent::current_version(event_type))
            .or_else(|| WorkflowEvent::current_version(event_type))
    }

    /// Decodes a stored payload: upcasts it to the current schema version, then parses it.
    pub fn decode(event_type: &str, schema_version: u32, payload: serde_json::Value) -> Result<Self, SchemaError> {
        let current =
            Self::current_version(event_type).ok_or_else(|| SchemaError::UnknownEventType(event_type.to_owned()))?;
        let payload = upcast::to_current(event_type, schema_version, current, payload)?;
        Self::parse_current(event_type, schema_version, payload)
    }

    /// Decodes a payload without taking it: one at its current schema version (nearly every one)
    /// is parsed in place, an older one is copied to be upcast.
    pub fn decode_borrowed(
        event_type: &str,
        schema_version: u32,
        payload: &serde_json::Value,
    ) -> Result<Self, SchemaError> {
        if Self::current_version(event_type) == Some(schema_version) {
            Self::parse_current(event_type, schema_version, payload)
        } else {
            Self::decode(event_type, schema_version, payload.clone())
        }
    }

    pub fn from_recorded(event: &RecordedEvent) -> Result<Self, SchemaError> {
        Self::decode_borrowed(&event.event_type, event.schema_version, &event.payload)
    }

    /// Decodes a payload given as JSON text: one at its current schema version is parsed straight
    /// into its event, without a `serde_json::Value` in between; an older one is upcast.
    pub fn decode_json(event_type: &str, schema_version: u32, json: &str) -> Result<Self, SchemaError> {
        let invalid =
            |source| SchemaError::InvalidPayload { event_type: event_type.to_owned(), version: schema_version, source };
        if Self::current_version(event_type) != Some(schema_version) {
            return Self::decode(event_type, schema_version, serde_json::from_str(json).map_err(invalid)?);
        }
        let mut parser = serde_json::Deserializer::from_str(json);
        let event = Self::parse_current(event_type, schema_version, &mut parser)?;
        parser.end().map_err(invalid)?;
        Ok(event)
    }

    /// Parses a payload at its current schema version with the parser of its category (the
    /// category is looked up first: the payload can be given to one parser only).
    fn parse_current<'de, D>(event_type: &str, schema_version: u32, payload: D) -> Result<Self, SchemaError>
    where
        D: serde::Deserializer<'de, Error = serde_json::Error>,
    {
        let parsed = if WorkspaceEvent::current_version(event_type).is_some() {
            WorkspaceEvent::parse_current(event_type, payload).map(|p| p.map(Event::Workspace))
        } else if ApiKeyEvent::current_version(event_type).is_some() {
            ApiKeyEvent::parse_current(event_type, payload).map(|p| p.map(Event::ApiKey))
        } else {
            WorkflowEvent::parse_current(event_type, payload).map(|p| p.map(Event::Workflow))
        };
        let invalid =
            |source| SchemaError::InvalidPayload { event_type: event_type.to_owned(), version: schema_version, source };
        parsed.ok_or_else(|| SchemaError::UnknownEventType(event_type.to_owned()))?.map_err(invalid)
    }

    /// The JSON Schema of every event type at its current version.
    pub fn schemas() -> Vec<EventSchema> {
        let mut out = Vec::new();
        WorkspaceEvent::push_schemas(&mut out);
        ApiKeyEvent::push_schemas(&mut out);
        WorkflowEvent::push_schemas(&mut out);
        out
    }
}

impl From<WorkspaceEvent> for Event {
    fn from(event: WorkspaceEvent) -> Self {
        Event::Workspace(event)
    }
}

impl From<ApiKeyEvent> for Event {
    fn from(event: ApiKeyEvent) -> Self {
        Event::ApiKey(event)
    }
}

impl From<WorkflowEvent> for Event {
    fn from(event: WorkflowEvent) -> Self {
        Event::Workflow(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn payloads_round_trip_through_their_type_name() {
        let event = Event::from(WorkspaceEvent::from(MemberAdded {
            user_id: Uuid::now_v7(),
            email: "ada@example.com".into(),
            name: None,
            role: crate::types::Role::Developer,
        }));
        let decoded = Event::decode(event.event_type(), event.schema_version(), event.to_payload()).unwrap();
        assert_eq!(decoded, event);
        let payload = event.to_payload();
        let borrowed = Event::decode_borrowed(event.event_type(), event.schema_version(), &payload).unwrap();
        assert_eq!(borrowed, event);
        let text = payload.to_string();
        assert_eq!(Event::decode_json(event.event_type(), event.schema_version(), &text).unwrap(), event);
    }

    #[test]
    fn every_decoder_refuses_what_decode_refuses() {
        for (event_type, version, payload) in
            [("Nope", 1, json!({})), ("WorkflowArchived", 9, json!({})), ("WorkspaceRenamed", 1, json!({"title": "x"}))]
        {
            let by_value = Event::decode(event_type, version, payload.clone()).unwrap_err().to_string();
            let borrowed = Event::decode_borrowed(event_type, version, &payload).unwrap_err().to_string();
            let text = Event::decode_json(event_type, version, &payload.to_string()).unwrap_err().to_string();
            assert_eq!(borrowed, by_value, "{event_type} v{version}");
            // The text parser says the same, and where in the text (`… at line 1 column 13`).
            assert!(text.starts_with(&by_value), "{event_type} v{version}: {text} is not {by_value}");
        }
        // JSON text with anything after the payload is not a payload.
        assert!(matches!(
            Event::decode_json("WorkspaceRenamed", 1, r#"{"name": "x"} {}"#),
            Err(SchemaError::InvalidPayload { .. })
        ));
        // An older schema version given as text is upcast like a `Value` is.
        let v1 = json!({"workspace_id": Uuid::now_v7(), "name": "Acme", "slug": "acme"});
        assert_eq!(
            Event::decode_json("WorkspaceCreated", 1, &v1.to_string()).unwrap(),
            Event::decode("WorkspaceCreated", 1, v1).unwrap()
        );
    }

    #[test]
    fn unknown_types_and_future_versions_are_errors() {
        assert!(matches!(Event::decode("Nope", 1, json!({})), Err(SchemaError::UnknownEventType(_))));
        assert!(matches!(
            Event::decode("WorkflowArchived", 9, json!({})),
            Err(SchemaError::UnsupportedVersion { current: 1, .. })
        ));
        assert!(matches!(WorkflowEvent::decode("ApiKeyRevoked", 1, json!({})), Err(SchemaError::WrongCategory { .. })));
        assert!(matches!(
            Event::decode("WorkspaceRenamed", 1, json!({"title": "x"})),
            Err(SchemaError::InvalidPayload { .. })
        ));
    }
}
