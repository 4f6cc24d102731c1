//! The command API over real HTTP against a real PostgreSQL database, one fresh database and
//! one server (bound to port 0) per test.

mod auth;
mod helpers;
mod http_semantics;
mod openapi;
mod quota_stripes;
mod routes;
mod secrets;
mod validation;
