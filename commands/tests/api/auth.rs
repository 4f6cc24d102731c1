//! Authentication and authorization over every route: no key, a bad key, a revoked key, a key
//! with too small a role, and a key of another workspace; and changes to keys and members that
//! take effect on the very next request.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, definition};

/// Every route, with a plausible body and the role that is too small for it.
fn routes(
    app: &TestApp,
    workflow: Uuid,
    user: Uuid,
    team: Uuid,
    key: Uuid,
) -> Vec<(&'static str, String, Option<Value>, &'static str)> {
    let wf = |rest: &str| app.path(&format!("/workflows/{workflow}{rest}"));
    vec![
        ("PATCH", app.path(""), Some(json!({"name": "X"})), "developer"),
        ("PUT", app.path("/plan"), Some(json!({"plan": "pro"})), "developer"),
        ("POST", app.path("/members"), Some(json!({"email": "x@example.com", "role": "viewer"})), "developer"),
        ("PATCH", app.path(&format!("/members/{user}")), Some(json!({"role": "viewer"})), "developer"),
        ("DELETE", app.path(&format!("/members/{user}")), None, "developer"),
        ("POST", app.path("/teams"), Some(json!({"name": "T"})), "developer"),
        ("POST", app.path(&format!("/teams/{team}/members")), Some(json!({"user_id": user})), "developer"),
        ("DELETE", app.path(&format!("/teams/{team}/members/{user}")), None, "developer"),
        ("POST", app.path("/api-keys"), Some(json!({"name": "k", "role": "viewer"})), "developer"),
        ("POST", app.path(&format!("/api-keys/{key}/rotate")), None, "developer"),
        ("DELETE", app.path(&format!("/api-keys/{key}")), None, "developer"),
        ("POST", app.path("/workflows"), Some(json!({"name": "W", "definition": definition(0)})), "viewer"),
        ("PUT", wf("/definition"), Some(json!({"definition": definition(0), "message": "m"})), "viewer"),
        ("PATCH", wf(""), Some(json!({"name": "W2"})), "operator"),
        ("POST", wf("/publish"), None, "operator"),
        ("POST", wf("/promote"), Some(json!({"environment": "dev"})), "viewer"),
        ("POST", wf("/archive"), None, "operator"),
        ("POST", wf("/restore"), None, "viewer"),
        ("POST", wf("/rollback"), Some(json!({"to_version": 1})), "operator"),
    ]
}

#[tokio::test]
async fn every_route_refuses_missing_bad_revoked_weak_and_foreign_keys() {
    let app = TestApp::spawn().await;
    let workflow = app.create_workflow("Guarded").await.id();
    let user = app.admin("POST", "/members", Some(json!({"email": "m@example.com", "role": "viewer"})), &[]).await.id();
    let team = app.admin("POST", "/teams", Some(json!({"name": "Ops"})), &[]).await.id();
    let (_, target_key) = app.issue_key("viewer").await;
    let (revoked, revoked_id) = app.issue_key("admin").await;
    assert_eq!(app.admin("DELETE", &format!("/api-keys/{revoked_id}"), None, &[]).await.status, 204);
    let mut weak_keys = std::collections::HashMap::new();
    for role in ["developer", "operator", "viewer"] {
        weak_keys.insert(role, app.issue_key(role).await.0);
    }
    let (_, foreign) = app.other_workspace().await;
    let malformed = "ffk_aaaaaaaaaaaa_000000000000000000000000000000000000000000000000";

    let routes = routes(&app, workflow, user, team, target_key);
    assert_eq!(routes.len(), 19, "every route of CONTRACT.md");
    for (method, path, body, weak_role) in routes {
        let call = |key: Option<String>| {
            let (method, path, body) = (method, path.clone(), body.clone());
            let app = &app;
            async move { app.send(method, &path, key.as_deref(), body, &[("If-Match", "\"1\"")]).await }
        };
        call(None).await.assert_problem(401, "UNAUTHORIZED");
        call(Some(malformed.into())).await.assert_problem(401, "UNAUTHORIZED");
        call(Some("Bearer nonsense".into())).await.assert_problem(401, "UNAUTHORIZED");
        call(Some(revoked.clone())).await.assert_problem(401, "UNAUTHORIZED");
        let weak = call(Some(weak_keys[weak_role].clone())).await;
        assert_eq!(weak.status, 403, "{method} {path} with a {weak_role} key: {}", weak.body);
        weak.assert_problem(403, "FORBIDDEN");
        let other = call(Some(foreign.clone())).await;
        assert_eq!(other.status, 404, "{method} {path} with another workspace's key: {}", other.body);
        other.assert_problem(404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn another_workspaces_resources_are_not_found_even_by_their_id() {
    let app = TestApp::spawn().await;
    let workflow = app.create_workflow("Secret plan").await.id();
    let (other_ws, other_key) = app.other_workspace().await;
    let path = format!("/v1/workspaces/{other_ws}/workflows/{workflow}/definition");
    let body = json!({"definition": definition(0), "message": "hijack"});
    let response = app.send("PUT", &path, Some(&other_key), Some(body), &[("If-Match", "\"1\"")]).await;
    response.assert_problem(404, "NOT_FOUND");
    let path = format!("/v1/workspaces/{other_ws}/workflows/{}/archive", Uuid::now_v7());
    let missing = app.send("POST", &path, Some(&other_key), None, &[("If-Match", "\"1\"")]).await;
    assert_eq!(missing.body["detail"], response.body["detail"], "the same answer as for a missing workflow");
    assert_eq!(app.events(&format!("workflow-{workflow}")).await.len(), 1);
}

#[tokio::test]
async fn revocation_role_changes_and_removal_apply_to_the_next_request() {
    let app = TestApp::spawn().await;
    let create = |n: u32| json!({"name": format!("Flow {n}"), "definition": definition(0)});

    // A revoked key is refused at once.
    let (key, key_id) = app.issue_key("developer").await;
    assert_eq!(app.send("POST", &app.path("/workflows"), Some(&key), Some(create(1)), &[]).await.status, 201);
    assert_eq!(app.admin("DELETE", &format!("/api-keys/{key_id}"), None, &[]).await.status, 204);
    app.send("POST", &app.path("/workflows"), Some(&key), Some(create(2)), &[])
        .await
        .assert_problem(401, "UNAUTHORIZED");

    // A key acting for a member follows the member's role and membership.
    let member =
        app.admin("POST", "/members", Some(json!({"email": "dev@example.com", "role": "developer"})), &[]).await;
    let user = member.id();
    let issued = app
        .admin("POST", "/api-keys", Some(json!({"name": "dev laptop", "role": "developer", "user_id": user})), &[])
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let member_key = issued.body["key"].as_str().unwrap().to_owned();
    assert_eq!(app.send("POST", &app.path("/workflows"), Some(&member_key), Some(create(3)), &[]).await.status, 201);

    let lowered = app.admin("PATCH", &format!("/members/{user}"), Some(json!({"role": "viewer"})), &[]).await;
    assert_eq!(lowered.status, 200, "{}", lowered.body);
    app.send("POST", &app.path("/workflows"), Some(&member_key), Some(create(4)), &[])
        .await
        .assert_problem(403, "FORBIDDEN");

    assert_eq!(
        app.admin("PATCH", &format!("/members/{user}"), Some(json!({"role": "developer"})), &[]).await.status,
        200
    );
    assert_eq!(app.send("POST", &app.path("/workflows"), Some(&member_key), Some(create(5)), &[]).await.status, 201);
    assert_eq!(app.admin("DELETE", &format!("/members/{user}"), None, &[]).await.status, 204);
    app.send("POST", &app.path("/workflows"), Some(&member_key), Some(create(6)), &[])
        .await
        .assert_problem(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn a_key_never_gets_more_than_its_issuer() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.issue_key("admin").await;
    let member = app.admin("POST", "/members", Some(json!({"email": "op@example.com", "role": "operator"})), &[]).await;
    let too_much = json!({"name": "k", "role": "developer", "user_id": member.id()});
    let refused = app.send("POST", &app.path("/api-keys"), Some(&admin), Some(too_much), &[]).await;
    refused.assert_problem(422, "VALIDATION_ERROR");
    assert_eq!(refused.error_fields(), ["role"]);

    // A key acting for an admin member may issue only what that member could.
    app.admin("POST", "/members", Some(json!({"email": "other-admin@example.com", "role": "admin"})), &[]).await;
    let boss = app.admin("POST", "/members", Some(json!({"email": "boss@example.com", "role": "admin"})), &[]).await;
    let boss_key =
        app.admin("POST", "/api-keys", Some(json!({"name": "boss", "role": "admin", "user_id": boss.id()})), &[]).await;
    let boss_key = boss_key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.admin("PATCH", &format!("/members/{}", boss.id()), Some(json!({"role": "developer"})), &[]).await.status,
        200
    );
    let response = app
        .send("POST", &app.path("/api-keys"), Some(&boss_key), Some(json!({"name": "k", "role": "viewer"})), &[])
        .await;
    response.assert_problem(403, "FORBIDDEN");
}
