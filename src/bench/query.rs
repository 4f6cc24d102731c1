//! `flowfuse bench query`: the GraphQL query API from concurrent clients, for a list query and a
//! time-travel query, against the same SQL run directly (the raw baseline) in the same run.
//!
//! The data is made the way users make it: commands over HTTP, the relay and the projector
//! through the broker at KAFKA_BROKERS into the read models.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use clap::Args;
use commands::CommandApi;
use commands::bootstrap::create_workspace;
use event_schemas::types::Plan;
use projections::{KafkaConfig, Projector, Relay};
use query_api::{QueryApi, QueryApiConfig};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::LoadArgs;
use super::append::{bench_url, fresh_database, print_ratio, print_row};
use super::commands::definition;
use super::http::Connection;
use super::stats::{Summary, Workload, alternating};

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Kafka bootstrap servers of a scratch broker.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    kafka_brokers: String,
    /// Workflows in the workspace.
    #[arg(long, default_value_t = 200)]
    workflows: usize,
    /// Versions of the workflow the time-travel query reads.
    #[arg(long, default_value_t = 1_000)]
    versions: i64,
    /// The query API's pool, as `flowfuse query-api` takes it; the raw baseline gets as many.
    #[command(flatten)]
    pool: crate::database::QueryApiPoolArgs,
}

const LIST: &str = "{ workflows(first: 20, filter: {tags: [\"bench\"]}) { edges { cursor node { id name status version updatedAt } } } }";
const AT: &str = "query($id: UUID!, $v: Int!) { workflow(id: $id) { at(version: $v) { version name definition } } }";

/// One GraphQL client sending one kind of query, its bodies made up front but for the version.
struct GraphqlClient {
    connection: Connection,
    /// The list query's body, or the time-travel query's without the version's digits and end.
    body: Bytes,
    versions: i64,
    time_travel: bool,
    n: i64,
}

impl GraphqlClient {
    fn new(addr: SocketAddr, key: &str, long_workflow: Uuid, versions: i64, time_travel: bool) -> anyhow::Result<Self> {
        let body = if time_travel {
            let body = json!({"query": AT, "variables": {"id": long_workflow, "v": 0}}).to_string();
            body.strip_suffix("0}}").expect("the version ends the body").to_owned()
        } else {
            json!({"query": LIST}).to_string()
        };
        Ok(Self { connection: Connection::new(addr, key)?, body: Bytes::from(body), versions, time_travel, n: 0 })
    }
}

impl Workload for GraphqlClient {
    async fn once(&mut self) -> anyhow::Result<u64> {
        self.n += 1;
        let body = if self.time_travel {
            // Spread over the history, so that every snapshot interval is visited.
            let version = 1 + (self.n * 7919) % self.versions;
            let mut body = self.body.to_vec();
            write!(body, "{version}}}}}")?;
            Bytes::from(body)
        } else {
            self.body.clone()
        };
        let answer = self.connection.send(Method::POST, "/graphql", None, body).await?;
        // async-graphql writes `errors` after `data`, and only when there are some.
        let failed = answer.body.windows(10).any(|w| w == b"\"errors\":[");
        anyhow::ensure!(
            answer.status == StatusCode::OK && answer.body.starts_with(b"{\"data\":{") && !failed,
            "unexpected {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        Ok(1)
    }
}

/// The statements the query API runs for the same query, sent directly, on one connection per
/// request as the API runs them.
struct RawClient {
    pool: PgPool,
    key_prefix: String,
    workspace_id: Uuid,
    long_workflow: Uuid,
    versions: i64,
    time_travel: bool,
    n: i64,
}

impl Workload for RawClient {
    async fn once(&mut self) -> anyhow::Result<u64> {
        self.n += 1;
        let mut connection = self.pool.acquire().await?;
        sqlx::query("SELECT * FROM security.api_key_by_prefix($1)")
            .bind(&self.key_prefix)
            .fetch_optional(&mut *connection)
            .await?;
        if !self.time_travel {
            sqlx::query(
                "SELECT workflow_id, name, NULL::text AS description, '{}'::text[] AS tags, team_id, status, version,
                        published_version, '{}'::jsonb AS environments, 'null'::jsonb AS definition, created_by,
                        created_at, updated_at
                 FROM read_model.workflows WHERE workspace_id = $1 AND tags @> $2
                 ORDER BY updated_at DESC, workflow_id DESC LIMIT 21",
            )
            .bind(self.workspace_id)
            .bind(vec!["bench"])
            .fetch_all(&mut *connection)
            .await?;
            return Ok(1);
        }
        let version = 1 + (self.n * 7919) % self.versions;
        let stream = format!("workflow-{}", self.long_workflow);
        sqlx::query(
            "SELECT workflow_id, name, NULL::text AS description, '{}'::text[] AS tags, team_id, status, version,
                    published_version, '{}'::jsonb AS environments, 'null'::jsonb AS definition, created_by,
                    created_at, updated_at
             FROM read_model.workflows WHERE workspace_id = $1 AND workflow_id = $2",
        )
        .bind(self.workspace_id)
        .bind(self.long_workflow)
        .fetch_optional(&mut *connection)
        .await?;
        // The API keeps the snapshots it has folded in memory, so after its warm-up it reads no
        // snapshot row but below the first snapshot's version (where it finds none); the rows
        // are fetched, not decoded: decoding is the API's own work.
        let nearest = version - version % query_api::time_travel::SNAPSHOT_EVERY;
        let from = if nearest > 0 {
            nearest
        } else {
            sqlx::query(
                "SELECT version, event_hash, state::text FROM snapshots.workflow_states
                 WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT 1",
            )
            .bind(&stream)
            .bind(version)
            .fetch_optional(&mut *connection)
            .await?;
            1
        };
        sqlx::query(
            "SELECT version, event_type, schema_version, occurred_at, hash, payload::text AS payload
             FROM event_store.events
             WHERE stream_id = $1 AND version >= $2 AND version <= $3
             ORDER BY version ASC LIMIT $4",
        )
        .bind(&stream)
        .bind(from)
        .bind(version)
        .bind(i64::MAX)
        .fetch_all(&mut *connection)
        .await?;
        Ok(1)
    }
}

pub async fn run(database_url: &str, args: QueryArgs) -> anyhow::Result<()> {
    let clients = args.load.clients as usize;
    // For the command API, the relay and the projector while seeding; the query API and the raw
    // baseline have pools of their own, of `flowfuse query-api`'s default size.
    let pool = fresh_database(database_url, crate::database::HTTP_ROLE_POOL).await?;
    let database_url = &bench_url(database_url)?;
    let commands = CommandApi::bind(pool.clone(), "127.0.0.1:0".parse()?).await?;
    let commands_base = format!("http://{}", commands.local_addr());
    tokio::spawn(commands.run_until_stopped(std::future::pending()));
    let connections = args.pool.query_api_db_connections;
    let query_addr = start_query_api(database_url, connections).await?;
    // The raw baseline's connections: as many as the query API's own pool has.
    let raw_pool = crate::database::connect(database_url, connections).await?;
    let kafka = KafkaConfig::new(&args.kafka_brokers);
    let relay = Relay::new(database_url, kafka.clone());
    let projector = Projector::new(pool.clone(), kafka).with_group(format!("bench-query-{}", Uuid::now_v7().simple()));
    let roles = tokio::spawn(async move {
        let never = std::future::pending::<()>;
        let _ = tokio::join!(relay.run(never()), projector.run(never()));
    });

    let workspace =
        create_workspace(&pool, "Bench", None, Plan::Enterprise).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("{commands_base}/v1/workspaces/{}", workspace.workspace_id);
    println!(
        "FlowFuse query benchmark: {clients} clients, {} database connections a side, {}s per case after {}s warm-up; \
         {} workflows, time travel over {} versions",
        connections, args.load.seconds, args.load.warmup_seconds, args.workflows, args.versions
    );
    let long_workflow = seed(&base, &workspace.api_key, args.workflows, args.versions).await?;
    projections::status::wait_until_caught_up(&pool, Duration::from_secs(120)).await?;
    // The planner's statistics of the seeded tables, as autovacuum gathers them on a live
    // database: without them (autovacuum may be off, as on the machines of docs/benchmarks.md,
    // or not have run yet on a fresh database) the list query sorted all 200 workflows where an
    // index scan reads 22 (0.6 ms against 0.1 ms).
    sqlx::query("ANALYZE").execute(&pool).await?;

    let (warmup, duration) = (Duration::from_secs(args.load.warmup_seconds), Duration::from_secs(args.load.seconds));
    let key_prefix = domain::key_format::prefix_of(&workspace.api_key).unwrap_or_default().to_owned();
    for (time_travel, name) in [(false, "list"), (true, "time travel")] {
        let raw_clients = || -> Vec<RawClient> {
            (0..clients)
                .map(|_| RawClient {
                    pool: raw_pool.clone(),
                    key_prefix: key_prefix.clone(),
                    workspace_id: workspace.workspace_id,
                    long_workflow,
                    versions: args.versions,
                    time_travel,
                    n: 0,
                })
                .collect()
        };
        let graphql_clients = || -> Vec<GraphqlClient> {
            (0..clients)
                .map(|_| GraphqlClient::new(query_addr, &workspace.api_key, long_workflow, args.versions, time_travel))
                .collect::<anyhow::Result<_>>()
                .expect("the address and the key make valid headers")
        };
        // GraphQL goes first: its warm-up writes the snapshots the raw baseline's statements read.
        let (graphql, raw) = alternating(warmup, duration, graphql_clients, raw_clients).await?;
        print_row(&format!("raw SQL, {name}"), &raw, "requests/s");
        print_row(&format!("GraphQL, {name}"), &graphql, "requests/s");
        print_ratio(&format!("{name}: GraphQL/raw"), &graphql, &raw, 0.5);
        print_p99_verdict(&graphql);
    }
    roles.abort();
    Ok(())
}

/// Starts the query API in a thread with a runtime and a pool of its own, as `flowfuse query-api`
/// runs in a process of its own, and returns its address. The load generator's clients, GraphQL
/// and raw alike, run on this process's runtime: on a shared one, a request's hops between the
/// client's task and the server's queued behind the other side's tasks on the same worker.
async fn start_query_api(database_url: &str, connections: u32) -> anyhow::Result<SocketAddr> {
    let (ready, bound) = tokio::sync::oneshot::channel();
    let url = database_url.to_owned();
    let metrics = commands::prometheus();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("query-api").build()?;
    std::thread::Builder::new().name("query-api".into()).spawn(move || {
        runtime.block_on(async move {
            let started = async {
                let pool = crate::database::connect(&url, connections).await?;
                anyhow::Ok(QueryApi::bind(pool, "127.0.0.1:0".parse()?, QueryApiConfig::default(), metrics).await?)
            };
            match started.await {
                Ok(api) => {
                    let _ = ready.send(Ok(api.local_addr()));
                    if let Err(error) = api.run_until_stopped(std::future::pending()).await {
                        tracing::error!(%error, "the benchmark's query API stopped");
                    }
                }
                Err(error) => drop(ready.send(Err(error))),
            }
        })
    })?;
    bound.await?
}

fn print_p99_verdict(summary: &Summary) {
    let p99 = summary.percentile_ms(0.99);
    println!("p99 = {p99:.2} ms (target <= 20 ms: {})", if p99 <= 20.0 { "met" } else { "NOT met" });
}

/// `workflows` tagged workflows, and one more changed until it has `versions` versions.
async fn seed(base: &str, key: &str, workflows: usize, versions: i64) -> anyhow::Result<Uuid> {
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, body: Value, version: Option<i64>| {
        let mut request = client.request(method, format!("{base}{path}")).bearer_auth(key).json(&body);
        if let Some(version) = version {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        async move {
            let response = request.send().await?;
            let status = response.status();
            let body: Value = response.json().await?;
            anyhow::ensure!(status.is_success(), "seeding failed with {status}: {body}");
            anyhow::Ok(body)
        }
    };
    for i in 0..workflows {
        let body = json!({"name": format!("Workflow {i}"), "tags": ["bench"], "description": "seeded", "definition": definition(3)});
        send(reqwest::Method::POST, "/workflows".into(), body, None).await?;
    }
    let created = send(
        reqwest::Method::POST,
        "/workflows".into(),
        json!({"name": "Long history", "definition": definition(1)}),
        None,
    )
    .await?;
    let id: Uuid = created["id"].as_str().unwrap_or_default().parse()?;
    for version in 1..versions {
        let body = json!({"definition": definition(1 + version as u64 % 9), "message": format!("change {version}")});
        send(reqwest::Method::PUT, format!("/workflows/{id}/definition"), body, Some(version)).await?;
    }
    Ok(id)
}
