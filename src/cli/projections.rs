//! `flowfuse projections status`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Per projection: the global position reached, the lag behind the log, dead letters (JSON).
    Status,
}

pub async fn run(database_url: &str, command: ProjectionsCommand) -> anyhow::Result<()> {
    let ProjectionsCommand::Status = command;
    let pool = crate::database::connect(database_url, 2).await?;
    let status = projections::status::status(&pool).await?;
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}
