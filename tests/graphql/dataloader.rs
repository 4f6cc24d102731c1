//! Nested lookups are batched: the number of SQL statements of a nested query does not grow with
//! the number of workflows (no N+1). Statements are counted from sqlx's own per-statement log,
//! keeping those made while serving an HTTP request (the relay and projector poll meanwhile).

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::support::Stack;

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

/// Counts the events sqlx logs for each statement it executes (target `sqlx::query`).
struct StatementCounter;

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> tracing_subscriber::Layer<S>
    for StatementCounter
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let in_request = ctx.event_scope(event).is_some_and(|mut scope| scope.any(|span| span.name() == "request"));
        if event.metadata().target() == "sqlx::query" && in_request {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn count_statements() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("sqlx::query", tracing::Level::TRACE)
            .with_target("tower_http", tracing::Level::TRACE);
        tracing_subscriber::registry().with(StatementCounter.with_filter(filter)).init();
    });
}

const NESTED: &str = "{ workflows(first: 50) { edges { node { name
    team { name members { email } }
    versions(last: 2) { edges { node { version author } } } } } } }";

async fn statements_for(stack: &Stack) -> usize {
    // Warm up (authentication and pool connections), then count one query.
    stack.data(NESTED, json!({})).await;
    let before = STATEMENTS.load(Ordering::SeqCst);
    let data = stack.data(NESTED, json!({})).await;
    let counted = STATEMENTS.load(Ordering::SeqCst) - before;
    let edges = data["workflows"]["edges"].as_array().unwrap();
    assert!(edges.iter().all(|e| e["node"]["team"]["members"][0]["email"] == "lead@acme.test"), "{data}");
    assert!(edges.iter().all(|e| e["node"]["versions"]["edges"].as_array().unwrap().len() == 2), "{data}");
    counted
}

#[tokio::test]
async fn nested_queries_take_the_same_statements_for_2_or_12_workflows() {
    count_statements();
    let stack = Stack::start().await;
    let (_, member) =
        stack.send("POST", "/members", Some(json!({"email": "lead@acme.test", "role": "developer"})), None).await;
    let (_, team) = stack.send("POST", "/teams", Some(json!({"name": "Ops"})), None).await;
    let team = team["id"].as_str().unwrap().to_owned();
    stack.send("POST", &format!("/teams/{team}/members"), Some(json!({"user_id": member["id"]})), None).await;
    let mut made = 0;
    let mut counts = Vec::new();
    for total in [2, 12] {
        while made < total {
            let body =
                json!({"name": format!("Flow {made}"), "team_id": team, "definition": crate::support::definition(1)});
            let (_, created) = stack.send("POST", "/workflows", Some(body), None).await;
            let id = created["id"].as_str().unwrap();
            stack.send("POST", &format!("/workflows/{id}/publish"), None, Some(1)).await;
            made += 1;
        }
        stack.project().await;
        counts.push(statements_for(&stack).await);
    }
    assert_eq!(counts[0], counts[1], "statements for 2 and for 12 workflows: {counts:?}");
    // Authentication, the list, teams, team members, versions: five statements.
    assert!(counts[0] <= 5, "{counts:?}");
}
