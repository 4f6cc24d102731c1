//! The FlowFuse query API: the read side over GraphQL (CONTRACT.md, "GraphQL").
//!
//! - [`app`]: [`QueryApi`] — the router, binding, serving until stopped; health, readiness, metrics;
//! - `http`: GraphQL over HTTP per the specification (media types, status codes, GET and POST);
//! - `db`: the one pooled connection a request runs all its statements on;
//! - `auth`: the same bearer API keys as the command API, and the permission check of resolvers;
//! - `consistency`: `X-Consistency-Token`, waiting until the read models reflect a write;
//! - `documents`: parsed queries kept by their text (parsing is dearer than executing), and that
//!   they passed validation, for later requests whose variable values have their declared types;
//! - `schema/`: the GraphQL schema, one file per area, with DataLoaders and Relay connections;
//! - [`time_travel`]: a workflow's state at any version or moment, folded from the event store
//!   from the nearest snapshot; `snapshot_cache`: the snapshots it has seen, kept in memory;
//!   [`diff`]: what changed between two states;
//! - `graphiql`: the page browsers get.

mod app;
mod auth;
mod consistency;
mod db;
pub mod diff;
mod documents;
mod error;
pub mod graphiql;
mod http;
mod schema;
mod snapshot_cache;
pub mod time_travel;

pub use app::{AppState, QueryApi, QueryApiConfig};
pub use error::QueryError;
pub use schema::{FlowFuseSchema, Limits};
