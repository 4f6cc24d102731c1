//! The `flowfuse` CLI: a thin layer that wires the crates of the workspace into commands.
//!
//! - [`cli`]: the command-line interface (`migrate`, `events …`, `bench …`) and its dispatch;
//! - [`database`]: creating and migrating the database;
//! - [`telemetry`]: logging setup (`RUST_LOG`, `LOG_FORMAT`);
//! - [`bench`]: benchmarks that compare our paths with raw baselines in the same run.

pub mod bench;
pub mod cli;
pub mod database;
pub mod telemetry;
