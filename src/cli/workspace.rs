//! `flowfuse workspace create`: bootstrap a workspace and its first admin API key.

use clap::{Subcommand, ValueEnum};
use event_schemas::types::Plan;

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace and its first admin API key; prints JSON {"workspace_id", "slug",
    /// "api_key", "api_key_id"}. The key is shown this once and cannot be recovered.
    Create {
        /// Display name: letters, digits, spaces, '-' and '_'.
        #[arg(long)]
        name: String,
        /// URL slug (3-63 lowercase letters, digits and hyphens); made from the name if omitted.
        #[arg(long)]
        slug: Option<String>,
        #[arg(long, value_enum, default_value_t = PlanArg::Free)]
        plan: PlanArg,
        /// `json`, or `env` for shell lines (`eval "$(flowfuse workspace create … --format env)"`)
        /// that set FLOWFUSE_WORKSPACE_ID and FLOWFUSE_API_KEY.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Env,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlanArg {
    Free,
    Pro,
    Enterprise,
}

impl From<PlanArg> for Plan {
    fn from(plan: PlanArg) -> Self {
        match plan {
            PlanArg::Free => Plan::Free,
            PlanArg::Pro => Plan::Pro,
            PlanArg::Enterprise => Plan::Enterprise,
        }
    }
}

pub async fn run(database_url: &str, command: WorkspaceCommand) -> anyhow::Result<()> {
    let WorkspaceCommand::Create { name, slug, plan, format } = command;
    let pool = crate::database::connect(database_url, 2).await?;
    let created = commands::bootstrap::create_workspace(&pool, &name, slug.as_deref(), plan.into())
        .await
        .map_err(|error| anyhow::anyhow!("{}", error.problem().detail))?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&created)?),
        // Both values are made of letters, digits, '-' and '_': nothing to quote.
        Format::Env => println!(
            "export FLOWFUSE_WORKSPACE_ID={}\nexport FLOWFUSE_API_KEY={}",
            created.workspace_id, created.api_key
        ),
    }
    Ok(())
}
