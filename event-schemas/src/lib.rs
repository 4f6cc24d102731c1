//! FlowFuse event schemas: everything that describes an event, and nothing that stores or moves one.
//!
//! - [`envelope`]: the envelope of CONTRACT.md ([`RecordedEvent`], [`NewEvent`]), [`StreamId`]
//!   and [`Actor`];
//! - [`chain`]: the canonical (RFC 8785) bytes of an envelope and the per-stream SHA-256 hash chain;
//! - [`types`]: value types shared by payloads (roles, plans, environments, workflow definitions);
//! - [`workspace`], [`api_key`], [`workflow`]: the payload of every event, one struct per event type;
//! - [`catalog`]: the typed event enums per category and the dispatch between type names and payloads;
//! - [`upcast`]: the upcaster registry that upgrades payloads stored under older schema versions;
//! - [`json_schema`]: the JSON Schema (draft 2020-12) of every event, checked in under `json/`;
//! - [`asyncapi`]: the AsyncAPI 3.0 document of the Kafka topics, checked in as `asyncapi.yaml`.

pub mod api_key;
pub mod asyncapi;
pub mod catalog;
pub mod chain;
pub mod envelope;
pub mod json_schema;
pub mod types;
pub mod upcast;
pub mod workflow;
pub mod workspace;

pub use catalog::{ApiKeyEvent, Event, EventPayload, SchemaError, WorkflowEvent, WorkspaceEvent};
pub use envelope::{Actor, ActorKind, Category, NewEvent, RecordedEvent, StreamId, StreamIdError};
#[cfg(feature = "validation")]
pub mod validation;
