//! `/openapi.json` is a valid OpenAPI 3.1 document that lists every route the server serves.

use std::collections::BTreeSet;

use crate::helpers::TestApp;

/// The routes of CONTRACT.md, plus the operational ones.
const ROUTES: [(&str, &str); 23] = [
    ("patch", "/v1/workspaces/{workspace_id}"),
    ("put", "/v1/workspaces/{workspace_id}/plan"),
    ("post", "/v1/workspaces/{workspace_id}/members"),
    ("patch", "/v1/workspaces/{workspace_id}/members/{user_id}"),
    ("delete", "/v1/workspaces/{workspace_id}/members/{user_id}"),
    ("post", "/v1/workspaces/{workspace_id}/teams"),
    ("post", "/v1/workspaces/{workspace_id}/teams/{team_id}/members"),
    ("delete", "/v1/workspaces/{workspace_id}/teams/{team_id}/members/{user_id}"),
    ("post", "/v1/workspaces/{workspace_id}/api-keys"),
    ("post", "/v1/workspaces/{workspace_id}/api-keys/{key_id}/rotate"),
    ("delete", "/v1/workspaces/{workspace_id}/api-keys/{key_id}"),
    ("post", "/v1/workspaces/{workspace_id}/workflows"),
    ("put", "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/definition"),
    ("patch", "/v1/workspaces/{workspace_id}/workflows/{workflow_id}"),
    ("post", "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/publish"),
    ("post", "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/promote"),
    ("post", "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/archive"),
    ("post", "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/restore"),
    ("post", "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/rollback"),
    ("get", "/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let app = TestApp::spawn().await;
    let response = app.send("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(response.status, 200);
    let text = response.body.to_string();
    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);

    let documented: BTreeSet<(String, String)> = response.body["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
        .filter(|(method, _)| ["get", "put", "post", "delete", "patch"].contains(&method.as_str()))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected);

    // Each documented route is served: without a key a /v1 route answers 401, never 404 or 405.
    let id = uuid::Uuid::now_v7().to_string();
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{workspace_id}", &app.workspace_id.to_string())
            .replace("{user_id}", &id)
            .replace("{team_id}", &id)
            .replace("{key_id}", &id)
            .replace("{workflow_id}", &id);
        let response = app.send(&method.to_uppercase(), &concrete, None, None, &[]).await;
        let expected = if path.starts_with("/v1/") { 401 } else { 200 };
        assert_eq!(response.status, expected, "{method} {path}");
    }
    let operation = &response.body["paths"]["/v1/workspaces/{workspace_id}/workflows"]["post"];
    for status in ["201", "401", "403", "404", "409", "422"] {
        assert!(operation["responses"][status].is_object(), "POST /workflows documents {status}");
    }
    assert!(operation["requestBody"].is_object());
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    assert_eq!(app.send("GET", "/healthz", None, None, &[]).await.status, 200);
    let ready = app.send("GET", "/readyz", None, None, &[]).await;
    assert_eq!((ready.status, ready.body["status"].as_str()), (200, Some("ready")));
    app.create_workflow("Measured").await;
    app.admin(
        "POST",
        "/workflows",
        Some(serde_json::json!({"name": "Measured", "definition": crate::helpers::definition(0)})),
        &[],
    )
    .await;
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        text.contains(
            "http_requests_total{method=\"POST\",route=\"/v1/workspaces/{workspace_id}/workflows\",status=\"201\"}"
        ),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("command_append_duration_seconds"), "{text}");
    let response = app.send("GET", "/healthz", None, None, &[]).await;
    for header in ["x-content-type-options", "x-frame-options", "content-security-policy", "x-request-id"] {
        assert!(response.header(header).is_some(), "{header}");
    }
}
