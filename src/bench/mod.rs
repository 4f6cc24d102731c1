//! Benchmarks. Each case runs against a raw baseline on the same server in the same run, and
//! prints figures and ratios; targets and results are recorded in `docs/benchmarks.md`.

mod append;
mod commands;
mod freshness;
mod http;
mod pipeline;
mod query;
mod stats;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Event-store appends against raw INSERT transactions (1 and 100 rows per transaction).
    Append(append::AppendArgs),
    /// The HTTP command path (create and change workflows) against raw single-row INSERTs.
    Commands(commands::CommandsArgs),
    /// The relay against a bare producer, the projector against raw batched INSERTs, and the
    /// freshness of read models under a steady command rate. Needs a broker at KAFKA_BROKERS
    /// (a scratch one: it creates topics there).
    Pipeline(pipeline::PipelineArgs),
    /// The GraphQL query API (a list query and a time-travel query) against the same SQL run
    /// directly. Needs a broker at KAFKA_BROKERS (the data reaches the read models through it).
    Query(query::QueryArgs),
}

pub async fn run(database_url: &str, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Append(args) => append::run(database_url, args).await,
        BenchCommand::Commands(args) => commands::run(database_url, args).await,
        BenchCommand::Pipeline(args) => pipeline::run(database_url, args).await,
        BenchCommand::Query(args) => query::run(database_url, args).await,
    }
}

/// Options every benchmark shares.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// Measured seconds per case.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Unmeasured warm-up seconds before each case.
    #[arg(long, default_value_t = 2)]
    pub warmup_seconds: u64,
}
