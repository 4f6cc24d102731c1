//! The happy path of every route, with the HTTP semantics of CONTRACT.md: 201 with `Location`,
//! `ETag` and `X-Consistency-Token`, and the events each command appends.

use event_schemas::types::WorkflowDefinition;
use event_schemas::validation::validate_payload;
use serde_json::json;

use crate::helpers::{TestApp, definition};

#[tokio::test]
async fn workflow_routes_append_the_expected_events() {
    let app = TestApp::spawn().await;
    let created = app.create_workflow("Nightly sync").await;
    let id = created.id();
    assert_eq!(created.header("location"), Some(app.path(&format!("/workflows/{id}")).as_str()));
    assert_eq!(created.etag(), 1);
    assert_eq!(created.header("x-consistency-token"), Some(created.body["position"].to_string().as_str()));
    assert_eq!(created.body["version"], 1);

    let wf = |rest: &str| format!("/workflows/{id}{rest}");
    let steps = [
        ("PUT", wf("/definition"), Some(json!({"definition": definition(2), "message": "add a step"}))),
        ("PATCH", wf(""), Some(json!({"name": "Nightly sync v2", "description": null, "tags": ["etl", "prod"]}))),
        ("POST", wf("/publish"), None),
        ("POST", wf("/promote"), Some(json!({"environment": "prod"}))),
        ("POST", wf("/rollback"), Some(json!({"to_version": 1}))),
        ("POST", wf("/archive"), None),
        ("POST", wf("/restore"), None),
    ];
    for (version, (method, path, body)) in (1..).zip(steps) {
        let etag = format!("\"{version}\"");
        let response = app.admin(method, &path, body, &[("If-Match", &etag)]).await;
        assert_eq!(response.status, 200, "{method} {path}: {}", response.body);
        assert_eq!(response.etag(), version + 1, "{method} {path}");
        assert_eq!(response.body["version"], version + 1);
        assert_eq!(response.body["id"], id.to_string());
    }

    let events = app.events(&format!("workflow-{id}")).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "WorkflowCreated",
            "WorkflowDefinitionChanged",
            "WorkflowDetailsChanged",
            "WorkflowPublished",
            "WorkflowPromoted",
            "WorkflowRolledBack",
            "WorkflowArchived",
            "WorkflowRestored"
        ]
    );
    let as_definition =
        |value: &serde_json::Value| serde_json::from_value::<WorkflowDefinition>(value.clone()).unwrap();
    assert_eq!(
        as_definition(&events[5].payload["definition"]),
        as_definition(&definition(1)),
        "rollback restores version 1's definition"
    );
    assert_eq!(events[2].payload["description"], serde_json::Value::Null, "null clears the description");
    for event in &events {
        validate_payload(&event.event_type, &event.payload).unwrap();
        assert_eq!(event.workspace_id, app.workspace_id);
    }
}

#[tokio::test]
async fn workspace_member_team_and_key_routes() {
    let app = TestApp::spawn().await;
    let stream = format!("workspace-{}", app.workspace_id);

    let renamed = app
        .admin(
            "PATCH",
            "",
            Some(json!({"name": "Acme Labs", "settings": {"timezone": "UTC"}})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.etag(), 3, "a rename and a settings change");
    let plan = app.admin("PUT", "/plan", Some(json!({"plan": "enterprise"})), &[("If-Match", "\"3\"")]).await;
    assert_eq!(plan.status, 200, "{}", plan.body);

    let member = app
        .admin("POST", "/members", Some(json!({"email": "Ada@Example.com", "role": "developer", "name": "Ada"})), &[])
        .await;
    assert_eq!(member.status, 201, "{}", member.body);
    let user = member.id();
    assert_eq!(member.header("location"), Some(app.path(&format!("/members/{user}")).as_str()));
    let role = app.admin("PATCH", &format!("/members/{user}"), Some(json!({"role": "operator"})), &[]).await;
    assert_eq!(role.status, 200, "{}", role.body);

    let team = app.admin("POST", "/teams", Some(json!({"name": "Data"})), &[]).await;
    assert_eq!(team.status, 201, "{}", team.body);
    let team_id = team.id();
    let joined = app.admin("POST", &format!("/teams/{team_id}/members"), Some(json!({"user_id": user})), &[]).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let left = app.admin("DELETE", &format!("/teams/{team_id}/members/{user}"), None, &[]).await;
    assert_eq!(left.status, 204);
    assert!(left.header("etag").is_some() && left.header("x-consistency-token").is_some());
    let removed = app.admin("DELETE", &format!("/members/{user}"), None, &[]).await;
    assert_eq!(removed.status, 204);

    let issued = app
        .admin(
            "POST",
            "/api-keys",
            Some(json!({"name": "CI", "role": "developer", "expires_at": "2099-01-01T00:00:00Z"})),
            &[],
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let (key, key_id) = (issued.body["key"].as_str().unwrap().to_owned(), issued.id());
    assert!(key.starts_with(&format!("ffk_{}_", issued.body["prefix"].as_str().unwrap())));
    let rotated = app.admin("POST", &format!("/api-keys/{key_id}/rotate"), None, &[]).await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let new_key = rotated.body["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    let old = app.send("POST", &app.path("/workflows"), Some(&key), Some(json!({})), &[]).await;
    old.assert_problem(401, "UNAUTHORIZED");
    let revoked = app.admin("DELETE", &format!("/api-keys/{key_id}"), None, &[]).await;
    assert_eq!(revoked.status, 204);

    let types: Vec<String> = app.events(&stream).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            "WorkspaceCreated",
            "WorkspaceRenamed",
            "WorkspaceSettingsChanged",
            "WorkspacePlanChanged",
            "MemberAdded",
            "MemberRoleChanged",
            "TeamCreated",
            "TeamMemberAdded",
            "TeamMemberRemoved",
            "MemberRemoved"
        ]
    );
    let key_events: Vec<String> =
        app.events(&format!("apikey-{key_id}")).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(key_events, ["ApiKeyIssued", "ApiKeyRotated", "ApiKeyRevoked"]);
}

#[tokio::test]
async fn events_record_actor_correlation_and_causation() {
    let app = TestApp::spawn().await;
    let (_, admin_key_id) = app.issue_key("admin").await;
    let body = json!({"name": "Traced", "definition": definition(0)});
    let with_request_id =
        app.admin("POST", "/workflows", Some(body.clone()), &[("X-Request-Id", "client-req-42")]).await;
    let event = &app.events(&format!("workflow-{}", with_request_id.id())).await[0];
    assert_eq!(event.correlation_id.as_deref(), Some("client-req-42"));
    assert_eq!(event.actor.kind, event_schemas::ActorKind::ApiKey);
    assert_ne!(event.actor.id, admin_key_id.to_string(), "the bootstrap key made this call");
    assert!(event.causation_id.is_some());
    assert_eq!(with_request_id.header("x-request-id"), Some("client-req-42"));

    let traced = app
        .admin(
            "POST",
            "/workflows",
            Some(json!({"name": "Traced two", "definition": definition(0)})),
            &[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
        )
        .await;
    let event = &app.events(&format!("workflow-{}", traced.id())).await[0];
    assert_eq!(event.correlation_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(event.causation_id.as_deref(), traced.header("x-request-id"));
}
