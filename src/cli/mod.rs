//! The command line of CONTRACT.md. Every command has `--help`; configuration comes from flags
//! or the environment.

mod events;
mod projections;
mod serve;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::bench::BenchCommand;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/flowfuse";

/// FlowFuse: the event-sourced backend of a workflow-automation platform.
#[derive(Debug, Parser)]
#[command(name = "flowfuse", version, about, propagate_version = true)]
pub struct Cli {
    /// PostgreSQL database holding the event store and the read models.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if needed and apply all migrations (safe to run twice).
    Migrate,
    /// Run every role in one process (applies migrations first): command API, query API, relay,
    /// projector.
    Serve(serve::ServeArgs),
    /// Run the HTTP command API alone (for scaling out).
    CommandApi(serve::CommandApiArgs),
    /// Run the GraphQL query API alone (for scaling out).
    QueryApi(serve::QueryApiArgs),
    /// Run the relay alone: event store to Kafka (one instance leads, others stand by).
    Relay(serve::WorkerArgs),
    /// Run the projector alone: Kafka to the PostgreSQL read models (instances share a consumer group).
    Projector(serve::WorkerArgs),
    /// Inspect the projections.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Bootstrap workspaces.
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCommand),
    /// Read, tail and verify the event store (for auditors).
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Benchmarks against raw baselines measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Runs a parsed command line; the exit code is 0 on success, 1 on failure (including a broken
/// hash chain).
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Migrate => crate::database::migrate(&cli.database_url).await.map(|count| {
            println!("database is up to date ({count} migrations)");
            ExitCode::SUCCESS
        }),
        Command::Serve(args) => serve::serve(&cli.database_url, &args).await.map(|()| ExitCode::SUCCESS),
        Command::CommandApi(args) => serve::command_api(&cli.database_url, &args).await.map(|()| ExitCode::SUCCESS),
        Command::QueryApi(args) => serve::query_api(&cli.database_url, &args).await.map(|()| ExitCode::SUCCESS),
        Command::Relay(args) => serve::relay(&cli.database_url, &args).await.map(|()| ExitCode::SUCCESS),
        Command::Projector(args) => serve::projector(&cli.database_url, &args).await.map(|()| ExitCode::SUCCESS),
        Command::Projections(command) => projections::run(&cli.database_url, command).await.map(|()| ExitCode::SUCCESS),
        Command::Workspace(command) => workspace::run(&cli.database_url, command).await.map(|()| ExitCode::SUCCESS),
        Command::Events(command) => events::run(&cli.database_url, command).await,
        Command::Bench(command) => crate::bench::run(&cli.database_url, command).await.map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

/// Prints `text` and a newline on stdout. A reader that stops early (`| head`) is not an error.
fn print_line(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
