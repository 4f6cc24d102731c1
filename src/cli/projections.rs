//! `flowfuse projections status | rebuild`.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Per projection: the global position reached, the events not yet applied, dead letters (JSON).
    Status,
    /// Rebuild read models from the event store into shadow tables and swap them in, while the
    /// old ones keep serving and the projector keeps running.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RebuildArgs {
    /// A projection: workspaces, api_keys, workflows, audit_log or activity.
    name: Option<String>,
    /// Every projection.
    #[arg(long)]
    all: bool,
}

pub async fn run(database_url: &str, command: ProjectionsCommand) -> anyhow::Result<()> {
    let pool = crate::database::connect(database_url, 4).await?;
    let output = match command {
        ProjectionsCommand::Status => serde_json::to_string_pretty(&projections::status::status(&pool).await?)?,
        ProjectionsCommand::Rebuild(args) => {
            let names: Vec<&str> = match &args.name {
                Some(name) => vec![name.as_str()],
                None => projections::PROJECTIONS.to_vec(),
            };
            serde_json::to_string_pretty(&projections::rebuild::rebuild(&pool, &names).await?)?
        }
    };
    super::print_line(&output)
}
