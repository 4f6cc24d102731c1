//! The long-running roles: `flowfuse serve` (all of them in one process), `command-api`,
//! `query-api`, `relay` and `projector` (one each, for scaling out).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use commands::CommandApi;
use projections::{KafkaConfig, Projector, Relay};
use query_api::{Limits, QueryApi, QueryApiConfig};
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct CommandApiArgs {
    /// Address of the HTTP command API.
    #[arg(long, env = "COMMAND_API_ADDR", default_value = "127.0.0.1:8080")]
    pub command_api_addr: SocketAddr,
}

#[derive(Debug, Args)]
pub struct QueryApiArgs {
    /// Address of the GraphQL query API.
    #[arg(long, env = "QUERY_API_ADDR", default_value = "127.0.0.1:8081")]
    pub query_api_addr: SocketAddr,
    /// Deepest nesting a query may have.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = Limits::default().max_depth)]
    pub graphql_max_depth: usize,
    /// Highest complexity a query may have (each field counts 1, lists count once per item asked).
    #[arg(long, env = "GRAPHQL_MAX_COMPLEXITY", default_value_t = Limits::default().max_complexity)]
    pub graphql_max_complexity: usize,
    /// Whether clients may introspect the schema (GraphiQL needs it).
    #[arg(long, env = "GRAPHQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphql_introspection: bool,
    /// How long a query with X-Consistency-Token waits for the read models at most, in milliseconds.
    #[arg(long, env = "CONSISTENCY_TIMEOUT_MS", default_value_t = 5_000)]
    pub consistency_timeout_ms: u64,
    /// Where GraphiQL's pinned scripts are loaded from (any server laid out like unpkg.com).
    #[arg(long, env = "GRAPHIQL_ASSETS_URL", default_value = query_api::graphiql::DEFAULT_ASSETS)]
    pub graphiql_assets_url: String,
    #[command(flatten)]
    pub pool: crate::database::QueryApiPoolArgs,
}

impl QueryApiArgs {
    /// Connects the query API's own pool and binds its address.
    async fn bind(&self, database_url: &str) -> anyhow::Result<QueryApi> {
        let pool = crate::database::connect(database_url, self.pool.query_api_db_connections).await?;
        let config = QueryApiConfig {
            limits: Limits {
                max_depth: self.graphql_max_depth,
                max_complexity: self.graphql_max_complexity,
                introspection: self.graphql_introspection,
            },
            consistency_timeout: Duration::from_millis(self.consistency_timeout_ms),
            graphiql_assets: self.graphiql_assets_url.clone(),
        };
        Ok(QueryApi::bind(pool, self.query_api_addr, config, commands::prometheus()).await?)
    }
}

#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Partitions of each topic the relay creates (existing topics are left as they are).
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub kafka_partitions: i32,
    /// The projector's Kafka consumer group.
    #[arg(long, env = "PROJECTOR_GROUP", default_value = projections::projector::DEFAULT_GROUP)]
    pub projector_group: String,
    /// This projector's static member id in the group: distinct for projectors running side by
    /// side, kept across restarts (default: flowfuse-projector-<hostname>).
    #[arg(long, env = "PROJECTOR_INSTANCE_ID")]
    pub projector_instance_id: Option<String>,
    /// Longest time, in milliseconds, the broker may hold the projector's fetch when it has no new
    /// records (librdkafka's fetch.wait.max.ms). Tansu answers only when it runs out, so it adds to
    /// every event's latency there; Apache Kafka answers as soon as records arrive, so on a real
    /// cluster a larger value (100-500) only saves idle requests.
    #[arg(long, env = "PROJECTOR_FETCH_WAIT_MS", default_value_t = projections::projector::DEFAULT_FETCH_WAIT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub projector_fetch_wait_ms: u64,
}

impl KafkaArgs {
    fn config(&self) -> KafkaConfig {
        KafkaConfig { partitions: self.kafka_partitions, ..KafkaConfig::new(&self.kafka_brokers) }
    }

    fn projector(&self, pool: sqlx::PgPool) -> Projector {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        let instance = self.projector_instance_id.clone().unwrap_or_else(|| format!("flowfuse-projector-{hostname}"));
        Projector::new(pool, self.config())
            .with_group(&self.projector_group)
            .with_instance_id(instance)
            .with_fetch_wait(Duration::from_millis(self.projector_fetch_wait_ms))
    }
}

/// A relay or projector on its own.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Address to serve `/metrics` (Prometheus) and `/healthz` on; none when unset.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub api: CommandApiArgs,
    #[command(flatten)]
    pub query: QueryApiArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Every role in one process, after applying migrations; stops them all on SIGTERM or Ctrl-C.
pub async fn serve(database_url: &str, args: &ServeArgs) -> anyhow::Result<()> {
    crate::database::migrate(database_url).await?;
    let stop = stop_on_signal();
    // Each API its own pool: a burst of queries never holds the connections commands need.
    let pool = crate::database::connect(database_url, crate::database::HTTP_ROLE_POOL).await?;
    let api = CommandApi::bind(pool, args.api.command_api_addr).await?;
    let query = args.query.bind(database_url).await?;
    let relay = Relay::new(database_url, args.kafka.config());
    // The projector's own connections: it must not queue behind HTTP requests.
    let projector = args.kafka.projector(crate::database::connect(database_url, 4).await?);
    let (api, query, relay, projector) = tokio::join!(
        api.run_until_stopped(stopped(&stop)),
        query.run_until_stopped(stopped(&stop)),
        relay.run(stopped(&stop)),
        projector.run(stopped(&stop))
    );
    api?;
    query?;
    relay?;
    projector?;
    tracing::info!("stopped");
    Ok(())
}

pub async fn command_api(database_url: &str, args: &CommandApiArgs) -> anyhow::Result<()> {
    let stop = stop_on_signal();
    let pool = crate::database::connect(database_url, crate::database::HTTP_ROLE_POOL).await?;
    CommandApi::bind(pool, args.command_api_addr).await?.run_until_stopped(stopped(&stop)).await?;
    Ok(())
}

pub async fn query_api(database_url: &str, args: &QueryApiArgs) -> anyhow::Result<()> {
    let stop = stop_on_signal();
    args.bind(database_url).await?.run_until_stopped(stopped(&stop)).await?;
    Ok(())
}

pub async fn relay(database_url: &str, args: &WorkerArgs) -> anyhow::Result<()> {
    let stop = stop_on_signal();
    let metrics = metrics_server(args.metrics_addr, &stop).await?;
    // Fail at start on a database that cannot be reached; the relay opens its own connections.
    crate::database::connect(database_url, 1).await?.close().await;
    Relay::new(database_url, args.kafka.config()).run(stopped(&stop)).await?;
    metrics.await?
}

pub async fn projector(database_url: &str, args: &WorkerArgs) -> anyhow::Result<()> {
    let stop = stop_on_signal();
    let metrics = metrics_server(args.metrics_addr, &stop).await?;
    let pool = crate::database::connect(database_url, 4).await?;
    args.kafka.projector(pool).run(stopped(&stop)).await?;
    metrics.await?
}

/// `/metrics` and `/healthz` for a role that serves no HTTP of its own, until `stop`; binds before
/// returning, so that a bad address fails at start.
async fn metrics_server(
    addr: Option<SocketAddr>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;

    let handle = commands::prometheus();
    let Some(addr) = addr else {
        return Ok(tokio::spawn(async { Ok(()) }));
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()))),
        )
        .route("/healthz", get(|| std::future::ready(axum::Json(serde_json::json!({"status": "ok"})))));
    let stop = stopped(stop);
    Ok(tokio::spawn(async move { Ok(axum::serve(listener, app).with_graceful_shutdown(stop).await?) }))
}

/// A flag that turns true on SIGTERM (how orchestrators stop a process) or Ctrl-C.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
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
        tracing::info!("shutting down: finishing work in flight");
        let _ = tx.send(true);
    });
    rx
}

/// Resolves once the flag turns true.
fn stopped(stop: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut stop = stop.clone();
    async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}
