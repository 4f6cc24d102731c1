//! `X-Consistency-Token`: a query waits until the read models reflect the write whose position
//! it names, and says so clearly when they do not in time.

use std::time::{Duration, Instant};

use query_api::QueryApiConfig;
use serde_json::{Value, json};

use crate::support::{Stack, definition, error_code};

async fn query_with_token(stack: &Stack, token: &str, query: &str) -> (u16, Value) {
    let response = stack
        .client
        .post(&stack.graphql)
        .bearer_auth(&stack.key)
        .header("X-Consistency-Token", token)
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_with_the_token_of_a_write_sees_that_write() {
    // Generous: a projector's first join of its consumer group takes seconds.
    let config = QueryApiConfig { consistency_timeout: Duration::from_secs(60), ..Default::default() };
    let stack = Stack::start_without_projector(config).await;
    let body = json!({"name": "Fresh", "definition": definition(1)});
    let response = stack
        .client
        .post(format!("{}/v1/workspaces/{}/workflows", stack.commands, stack.workspace_id))
        .bearer_auth(&stack.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let token = response.headers()["x-consistency-token"].to_str().unwrap().to_owned();
    let query = "{ workflows { edges { node { name } } } }";

    // Without the token the read model is simply behind: nothing projects yet.
    let stale = stack.data(query, json!({})).await;
    assert_eq!(stale["workflows"]["edges"], json!([]));

    // With it, the query waits until the projector (started a moment later) has applied the write.
    let started = Instant::now();
    let projector_delay = Duration::from_millis(700);
    let (status, body) = tokio::join!(query_with_token(&stack, &token, query), async {
        tokio::time::sleep(projector_delay).await;
        stack.start_projector();
    })
    .0;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["workflows"]["edges"][0]["node"]["name"], "Fresh", "{body}");
    assert!(started.elapsed() >= projector_delay, "the query waited for the projector");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_the_read_models_do_not_reach_in_time_is_a_clear_error() {
    let config = QueryApiConfig { consistency_timeout: Duration::from_millis(300), ..Default::default() };
    let stack = Stack::start_without_projector(config).await;
    let (status, created) =
        stack.send("POST", "/workflows", Some(json!({"name": "Late", "definition": definition(1)})), None).await;
    assert_eq!(status, 201);
    let token = created["position"].as_i64().unwrap().to_string();
    let (status, body) = query_with_token(&stack, &token, "{ workspace { name } }").await;
    assert_eq!((status, error_code(&body)), (503, "CONSISTENCY_TIMEOUT"), "{body}");
    assert!(body.get("data").is_none());

    let (status, body) = query_with_token(&stack, "soon", "{ workspace { name } }").await;
    assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"), "{body}");
    // A position the workspace has nothing at or below is reached at once.
    assert_eq!(query_with_token(&stack, "0", "{ workspace { name } }").await.0, 200);
}
