//! The FlowFuse command API: the write side over HTTP (CONTRACT.md, "Command API").
//!
//! - [`app`]: [`CommandApi`] — builds the router, binds, serves until stopped;
//! - `routes/`: one module per resource (workspace, members and teams, API keys, workflows), each
//!   owning its `router()`; a route parses its input, loads one aggregate, decides, appends;
//! - `execute`: loading aggregates and committing their events together with the security index
//!   and the idempotency record, in one transaction;
//! - `auth`: bearer API keys and the [`domain::Permission`] check; [`keys`]: making and hashing keys;
//! - `security_index`: the strongly consistent tables behind authentication and uniqueness;
//! - `idempotency`: the `Idempotency-Key` middleware;
//! - `error` and `extract`: RFC 9457 problem responses and the extractors that produce them;
//! - `observability`: Prometheus metrics, health and readiness;
//! - [`bootstrap`]: creating a workspace with its first admin key (`flowfuse workspace create`).

mod app;
mod auth;
pub mod bootstrap;
mod cache;
mod error;
mod execute;
mod extract;
mod idempotency;
pub mod keys;
mod observability;
mod openapi;
mod response;
mod routes;
mod security_index;

pub use app::{AppState, CommandApi};
pub use error::ApiError;
pub use observability::prometheus;
