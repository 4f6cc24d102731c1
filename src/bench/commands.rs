//! `flowfuse bench commands`: the whole HTTP command path (authentication, validation, loading
//! the aggregate, deciding, appending with the security index) against raw single-row INSERT
//! transactions, from the same number of clients, in the same run.

use std::time::Duration;

use clap::Args;
use commands::CommandApi;
use commands::bootstrap::create_workspace;
use event_schemas::types::Plan;
use serde_json::{Value, json};

use super::LoadArgs;
use super::append::{RawInsert, fresh_database, print_ratio, print_row};
use super::stats::{Workload, measure};

#[derive(Debug, Args)]
pub struct CommandsArgs {
    #[command(flatten)]
    load: LoadArgs,
}

/// One HTTP client: creates a workflow, then changes its definition with `If-Match`, and again.
struct HttpClient {
    client: reqwest::Client,
    base: String,
    key: String,
    /// The workflow being changed, with its version; `None` means create one next.
    current: Option<(String, i64)>,
    created: u64,
}

pub(super) fn definition(steps: u64) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "trigger", "name": "Start", "position": {"x": 0, "y": 0}})];
    let mut edges = Vec::new();
    for i in 0..steps {
        nodes.push(json!({"id": format!("s{i}"), "type": "action", "name": format!("Step {i}"), "position": {"x": 100 * (i + 1), "y": 0}}));
        let source = if i == 0 { "start".to_owned() } else { format!("s{}", i - 1) };
        edges.push(json!({"id": format!("e{i}"), "source": source, "target": format!("s{i}")}));
    }
    json!({"nodes": nodes, "edges": edges})
}

impl Workload for HttpClient {
    async fn once(&mut self) -> anyhow::Result<u64> {
        let (request, expected) = match &self.current {
            None => {
                self.created += 1;
                let name = format!("Bench {} {}", uuid::Uuid::now_v7().simple(), self.created);
                let body =
                    json!({"name": name, "description": "benchmark", "tags": ["bench"], "definition": definition(2)});
                (self.client.post(format!("{}/workflows", self.base)).json(&body), 201)
            }
            Some((id, version)) => {
                let body = json!({"definition": definition(2 + *version as u64 % 5), "message": "tune"});
                let request = self
                    .client
                    .put(format!("{}/workflows/{id}/definition", self.base))
                    .header("If-Match", format!("\"{version}\""))
                    .json(&body);
                (request, 200)
            }
        };
        let response = request.bearer_auth(&self.key).send().await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await?;
        anyhow::ensure!(status == expected, "unexpected {status}: {body}");
        let (id, version) = (body["id"].as_str().unwrap_or_default().to_owned(), body["version"].as_i64().unwrap_or(0));
        // Five changes per workflow, then a new one.
        self.current = (version < 6).then_some((id, version));
        Ok(1)
    }
}

pub async fn run(database_url: &str, args: CommandsArgs) -> anyhow::Result<()> {
    let clients = args.load.clients as usize;
    let pool = fresh_database(database_url, args.load.clients + 16).await?;
    let api = CommandApi::bind(pool.clone(), "127.0.0.1:0".parse()?).await?;
    let base = format!("http://{}", api.local_addr());
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    let workspace =
        create_workspace(&pool, "Bench", None, Plan::Enterprise).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("{base}/v1/workspaces/{}", workspace.workspace_id);
    println!(
        "FlowFuse HTTP command benchmark: {clients} clients, {}s per case after {}s warm-up (create, then 5 definition changes with If-Match, per workflow)",
        args.load.seconds, args.load.warmup_seconds
    );
    let (warmup, duration) = (Duration::from_secs(args.load.warmup_seconds), Duration::from_secs(args.load.seconds));
    let raw = measure(RawInsert::clients(&pool, clients, 1), warmup, duration).await?;
    print_row("(a) raw INSERT, 1 row per transaction", &raw);
    let http_clients = (0..clients)
        .map(|_| HttpClient {
            client: reqwest::Client::new(),
            base: base.clone(),
            key: workspace.api_key.clone(),
            current: None,
            created: 0,
        })
        .collect();
    let http = measure(http_clients, warmup, duration).await?;
    print_row("(e) HTTP commands, 1 event per command", &http);
    print_ratio("e/a", &http, &raw, 0.5);
    Ok(())
}
