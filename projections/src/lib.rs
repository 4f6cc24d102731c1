//! The read side's plumbing: events leave the event store for Kafka, and come back from Kafka
//! into PostgreSQL read models (ARCHITECTURE.md decisions 1, 3 and 5).
//!
//! - [`kafka`]: broker configuration, topic names (`flowfuse.<category>`) and topic creation;
//! - [`cloudevents`]: the CloudEvents binary-mode headers of every record, both ways;
//! - [`relay`]: the leader-elected relay that tails the global log behind the visibility fence
//!   and produces every event, advancing its checkpoint only after the broker's acks;
//! - [`projector`]: the consumer group that applies events to the read models exactly once
//!   (per-stream version guard, gap repair from the event store, offsets stored with the effects);
//! - `read_models`: what each event does to the tables of `read_model.*`;
//! - [`rebuild`]: rebuilding read models from the event store into shadow tables, swapped in;
//! - [`status`]: positions, lag and dead letters per projection.

pub mod cloudevents;
pub mod kafka;
pub mod projector;
mod read_models;
pub mod rebuild;
pub mod relay;
pub mod status;

pub use kafka::KafkaConfig;
pub use projector::Projector;
pub use read_models::{PROJECTIONS, tables_of};
pub use relay::Relay;

/// How long ago an event's command decided it (clocks of two machines when the roles run apart;
/// zero when the other clock is ahead): what the relay's and the projector's age histograms record.
pub(crate) fn age_of(occurred_at: chrono::DateTime<chrono::Utc>) -> std::time::Duration {
    (chrono::Utc::now() - occurred_at).to_std().unwrap_or_default()
}
