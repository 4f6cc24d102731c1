//! The GraphQL query API over real HTTP against real PostgreSQL and a real broker: commands go to
//! the command API, the relay and the projector build the read models through Kafka, and queries
//! go to the query API.

#[path = "../support/mod.rs"]
mod pipeline;

mod consistency;
mod dataloader;
mod http_spec;
mod isolation;
mod queries;
mod support;
mod time_travel;
