//! GraphQL over HTTP: media types, status codes, GET and POST, auth, limits.

use query_api::{Limits, QueryApiConfig};
use serde_json::{Value, json};

use crate::support::{Stack, error_code};

async fn post(stack: &Stack, accept: Option<&str>, content_type: &str, body: &str) -> (u16, String, Value) {
    let mut request = stack.client.post(&stack.graphql).bearer_auth(&stack.key).header("Content-Type", content_type);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.body(body.to_owned()).send().await.unwrap();
    let status = response.status().as_u16();
    let media = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, media, response.json().await.unwrap_or(Value::Null))
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

#[tokio::test]
async fn negotiates_media_types_and_uses_the_specified_status_codes() {
    let stack = Stack::start().await;
    let ok = r#"{"query": "{ workspace { name } }"}"#;

    // No Accept: application/json. Accept graphql-response+json: that.
    let (status, media, body) = post(&stack, None, "application/json", ok).await;
    assert_eq!((status, media.starts_with("application/json")), (200, true), "{body}");
    assert!(body["data"]["workspace"].is_null() || body["data"]["workspace"].is_object(), "{body}");
    let (status, media, _) = post(&stack, Some(GRAPHQL_RESPONSE), "application/json", ok).await;
    assert_eq!((status, media.starts_with(GRAPHQL_RESPONSE)), (200, true));
    let (status, _, _) = post(&stack, Some("text/csv"), "application/json", ok).await;
    assert_eq!(status, 406);

    // Not a GraphQL request at all: 400 or 415, whatever the media type.
    let (status, _, body) = post(&stack, Some(GRAPHQL_RESPONSE), "application/json", "{not json").await;
    assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"));
    assert!(body.get("data").is_none(), "a request error has no data: {body}");
    let (status, _, body) = post(&stack, None, "application/json", r#"{"variables": {}}"#).await;
    assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"));
    let (status, _, body) =
        post(&stack, None, "application/json", r#"{"query": "{ workspace { name } }", "variables": [1]}"#).await;
    assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"));
    let (status, _, _) = post(&stack, None, "text/plain", ok).await;
    assert_eq!(status, 415);

    // Parse and validation errors: 400 under graphql-response+json, 200 under application/json,
    // never with a data key.
    for (query, code) in [("{ workspace { name ", "GRAPHQL_PARSE_FAILED"), ("{ nope }", "GRAPHQL_VALIDATION_FAILED")] {
        let body = json!({"query": query}).to_string();
        let (status, _, response) = post(&stack, Some(GRAPHQL_RESPONSE), "application/json", &body).await;
        assert_eq!((status, error_code(&response)), (400, code), "{response}");
        assert!(response.get("data").is_none(), "{response}");
        let (status, _, response) = post(&stack, Some("application/json"), "application/json", &body).await;
        assert_eq!((status, error_code(&response)), (200, code), "{response}");
        assert!(response.get("data").is_none(), "{response}");
    }
}

#[tokio::test]
async fn get_runs_queries_refuses_mutations_and_serves_graphiql_to_browsers() {
    let stack = Stack::start().await;
    let get = |params: Vec<(&'static str, String)>, accept: &'static str| {
        stack.client.get(&stack.graphql).bearer_auth(&stack.key).header("Accept", accept).query(&params).send()
    };
    let response = get(
        vec![
            ("query", "query Q($n: Int) { workflows(first: $n) { edges { cursor } } }".into()),
            ("variables", r#"{"n": 1}"#.into()),
        ],
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["workflows"]["edges"], json!([]), "{body}");

    let response = get(vec![("query", "mutation { nothing }".into())], GRAPHQL_RESPONSE).await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");

    let response =
        get(vec![("query", "{ workspace { name } }".into()), ("variables", "{oops".into())], GRAPHQL_RESPONSE)
            .await
            .unwrap();
    assert_eq!(response.status(), 400);

    // Introspection is on by default (GraphiQL needs it).
    let (_, body) = stack.query_as(&stack.key, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "QueryRoot", "{body}");

    let page = stack.client.get(&stack.graphql).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().to_lowercase().contains("graphiql"));
}

#[tokio::test]
async fn refuses_missing_bad_and_revoked_keys() {
    let stack = Stack::start().await;
    let query = json!({"query": "{ workspace { name } }"});
    let no_key = stack.client.post(&stack.graphql).json(&query).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(no_key.headers()["www-authenticate"], "Bearer");
    let body: Value = no_key.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let bad = format!("ffk_aaaaaaaaaaaa_{}", "0".repeat(48));
    let (status, _) = stack.query_as(&bad, "{ workspace { name } }", json!({})).await;
    assert_eq!(status, 401);

    let (status, issued) = stack.send("POST", "/api-keys", Some(json!({"name": "temp", "role": "viewer"})), None).await;
    assert_eq!(status, 201, "{issued}");
    let temp = issued["key"].as_str().unwrap().to_owned();
    assert_eq!(stack.query_as(&temp, "{ workspace { name } }", json!({})).await.0, 200);
    let (status, _) = stack.send("DELETE", &format!("/api-keys/{}", issued["id"].as_str().unwrap()), None, None).await;
    assert_eq!(status, 204);
    assert_eq!(stack.query_as(&temp, "{ workspace { name } }", json!({})).await.0, 401, "revoked on the next request");

    // A viewer may read but not see the audit-restricted API keys list.
    let (_, viewer) = stack.send("POST", "/api-keys", Some(json!({"name": "v", "role": "viewer"})), None).await;
    let viewer = viewer["key"].as_str().unwrap().to_owned();
    let (status, body) = stack.query_as(&viewer, "{ apiKeys { edges { node { name } } } }", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("apikeys.manage"), "{body}");
    let (_, developer) = stack.send("POST", "/api-keys", Some(json!({"name": "d", "role": "developer"})), None).await;
    let developer = developer["key"].as_str().unwrap().to_owned();
    let (_, body) = stack.query_as(&developer, "{ auditTrail { edges { cursor } } }", json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("audit.view"), "{body}");
}

#[tokio::test]
async fn rejects_queries_too_deep_or_too_complex_and_can_hide_the_schema() {
    let config = QueryApiConfig {
        limits: Limits { max_depth: 5, max_complexity: 300, introspection: false },
        ..Default::default()
    };
    let stack = Stack::start_with(config).await;
    // Twice: the second time, documents without variables that passed the full validation are
    // only checked for depth and complexity, and every answer must stay the same.
    for round in 0..2 {
        let deep = "{ workflows(first: 1) { edges { node { versions(first: 1) { edges { node { version } } } } } } }";
        let (status, body) = stack.query_as(&stack.key, deep, json!({})).await;
        assert_eq!((status, error_code(&body)), (200, "DEPTH_LIMIT_EXCEEDED"), "round {round}: {body}");
        let complex = "{ workflows(first: 100) { edges { node { id name tags status } } } }";
        let (_, body) = stack.query_as(&stack.key, complex, json!({})).await;
        assert_eq!(error_code(&body), "COMPLEXITY_LIMIT_EXCEEDED", "round {round}: {body}");
        let unknown = "{ workflows(first: 10) { edges { node { id colour } } } }";
        let (_, body) = stack.query_as(&stack.key, unknown, json!({})).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "round {round}: {body}");
        let fine = "{ workflows(first: 10) { edges { node { id name } } } }";
        let (_, body) = stack.query_as(&stack.key, fine, json!({})).await;
        assert_eq!((body.get("errors"), &body["data"]["workflows"]["edges"]), (None, &json!([])), "round {round}");
        let (_, body) = stack.query_as(&stack.key, "{ __schema { queryType { name } } }", json!({})).await;
        assert_eq!(body["data"]["__schema"], Value::Null, "introspection is off, round {round}: {body}");
    }
}

#[tokio::test]
async fn a_kept_document_with_variables_is_judged_by_each_request_s_values() {
    let stack = Stack::start().await;
    stack.create_workflow("Judged", &["a"], None).await;
    stack.project().await;
    let query = "query Q($n: Int!, $tags: [String!], $status: [WorkflowStatus!], $id: UUID!) {
        workflows(first: $n, filter: {tags: $tags, status: $status}) { edges { node { name } } }
        workflow(id: $id) { name } }";
    let ask = |query: String, variables: Value| {
        let body = json!({"query": query, "variables": variables}).to_string();
        let stack = &stack;
        async move { post(stack, Some(GRAPHQL_RESPONSE), "application/json", &body).await }
    };
    let good = json!({"n": 2, "tags": ["a"], "status": ["DRAFT"], "id": uuid::Uuid::now_v7()});
    let (status, _, body) = ask(query.into(), good.clone()).await;
    assert_eq!((status, &body["data"]["workflows"]["edges"][0]["node"]["name"]), (200, &json!("Judged")), "{body}");

    // Each bad value gets the same request error as a document seen for the first time (the same
    // text with a space more), although the kept one has passed the full validation before.
    let bad_values = [
        ("n", json!("two"), "GRAPHQL_VALIDATION_FAILED"),
        ("tags", json!([1]), "GRAPHQL_VALIDATION_FAILED"),
        ("status", json!(["GONE"]), "GRAPHQL_VALIDATION_FAILED"),
        ("n", json!(10_000), "COMPLEXITY_LIMIT_EXCEEDED"),
    ];
    for (n, (name, value, code)) in bad_values.into_iter().enumerate() {
        let mut variables = good.clone();
        variables[name] = value;
        let (fresh_status, _, fresh) = ask(format!("{query}{}", " ".repeat(n + 1)), variables.clone()).await;
        let (status, _, kept) = ask(query.into(), variables).await;
        assert_eq!((status, error_code(&kept)), (400, code), "{name}: {kept}");
        assert!(kept.get("data").is_none(), "a request error has no data: {kept}");
        assert_eq!((status, &kept), (fresh_status, &fresh), "{name}: the kept document answers as a fresh one");
    }
    let (status, _, body) = ask(query.into(), good).await;
    assert_eq!((status, body.get("errors")), (200, None), "{body}");
}
