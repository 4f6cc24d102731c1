//! `flowfuse serve` (every role in one process) and `flowfuse command-api` (one role).

use std::net::SocketAddr;

use clap::Args;
use commands::CommandApi;

#[derive(Debug, Args)]
pub struct CommandApiArgs {
    /// Address of the HTTP command API.
    #[arg(long, env = "COMMAND_API_ADDR", default_value = "127.0.0.1:8080")]
    pub command_api_addr: SocketAddr,
}

/// Runs the command API until SIGTERM or Ctrl-C.
pub async fn command_api(database_url: &str, args: &CommandApiArgs) -> anyhow::Result<()> {
    let pool = crate::database::connect(database_url, 16).await?;
    let api = CommandApi::bind(pool, args.command_api_addr).await?;
    api.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("command API stopped");
    Ok(())
}

/// Every role in one process, after applying migrations. The relay, projector and query API join
/// here as they are built.
pub async fn serve(database_url: &str, args: &CommandApiArgs) -> anyhow::Result<()> {
    crate::database::migrate(database_url).await?;
    command_api(database_url, args).await
}

/// Completes on SIGTERM (how orchestrators stop a process) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
