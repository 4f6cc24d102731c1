//! Every validation rule of CONTRACT.md answers 422 with a field-level error naming the field.

use serde_json::{Value, json};

use crate::helpers::{TestApp, definition};

fn node(id: &str, node_type: &str) -> Value {
    json!({"id": id, "type": node_type, "name": format!("Node {id}"), "position": {"x": 0, "y": 0}})
}

fn edge(id: &str, source: &str, target: &str) -> Value {
    json!({"id": id, "source": source, "target": target})
}

#[tokio::test]
async fn each_rule_names_its_field() {
    let app = TestApp::spawn().await;
    let many_nodes: Vec<Value> =
        std::iter::once(node("t", "trigger")).chain((0..200).map(|i| node(&format!("n{i}"), "action"))).collect();
    let many_edges: Vec<Value> = (0..501).map(|i| edge(&format!("e{i}"), "t", &format!("n{}", i % 200))).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("empty name", json!({"name": "", "definition": definition(0)}), "name"),
        ("long name", json!({"name": "n".repeat(256), "definition": definition(0)}), "name"),
        ("name characters", json!({"name": "bad/name", "definition": definition(0)}), "name"),
        ("script in name", json!({"name": "<script>", "definition": definition(0)}), "name"),
        (
            "long description",
            json!({"name": "ok", "description": "d".repeat(1001), "definition": definition(0)}),
            "description",
        ),
        (
            "script in description",
            json!({"name": "ok", "description": "<script>x</script>", "definition": definition(0)}),
            "description",
        ),
        (
            "javascript: in description",
            json!({"name": "ok", "description": "javascript:alert(1)", "definition": definition(0)}),
            "description",
        ),
        (
            "handler in description",
            json!({"name": "ok", "description": "<img onerror=x>", "definition": definition(0)}),
            "description",
        ),
        ("bad tag", json!({"name": "ok", "tags": ["fine", "no spaces"], "definition": definition(0)}), "tags[1]"),
        ("too many nodes", json!({"name": "ok", "definition": {"nodes": many_nodes, "edges": []}}), "definition.nodes"),
        (
            "too many edges",
            json!({"name": "ok", "definition": {"nodes": [node("t", "trigger"), node("n0", "action")], "edges": many_edges}}),
            "definition.edges",
        ),
        (
            "duplicate node id",
            json!({"name": "ok", "definition": {"nodes": [node("t", "trigger"), node("t", "action")], "edges": []}}),
            "definition.nodes[1].id",
        ),
        (
            "edge to nowhere",
            json!({"name": "ok", "definition": {"nodes": [node("t", "trigger")], "edges": [edge("e", "t", "ghost")]}}),
            "definition.edges[0].target",
        ),
        (
            "cycle",
            json!({"name": "ok", "definition": {"nodes": [node("t", "trigger"), node("a", "action"), node("b", "action")],
            "edges": [edge("e1", "t", "a"), edge("e2", "a", "b"), edge("e3", "b", "a")]}}),
            "definition.edges",
        ),
        (
            "no trigger",
            json!({"name": "ok", "definition": {"nodes": [node("a", "action")], "edges": []}}),
            "definition.nodes",
        ),
        (
            "script in config",
            json!({"name": "ok", "definition": {"nodes": [{"id": "t", "type": "trigger", "name": "T",
            "position": {"x": 0, "y": 0}, "config": {"url": "javascript:alert(1)"}}], "edges": []}}),
            "definition.nodes[0].config",
        ),
        (
            "unknown node type",
            json!({"name": "ok", "definition": {"nodes": [node("t", "teleport")], "edges": []}}),
            "definition.nodes[0].type",
        ),
        ("missing definition", json!({"name": "ok"}), "body"),
    ];
    for (case, body, field) in cases {
        let response = app.admin("POST", "/workflows", Some(body), &[]).await;
        response.assert_problem(422, "VALIDATION_ERROR");
        assert!(response.error_fields().iter().any(|f| f == field), "{case}: expected {field}, got {}", response.body);
    }
    // Every violation of one request is reported at once.
    let many = json!({"name": "", "description": "d".repeat(1001), "definition": {"nodes": [node("a", "action")], "edges": []}});
    let response = app.admin("POST", "/workflows", Some(many), &[]).await;
    assert_eq!(response.error_fields(), ["name", "description", "definition.nodes"]);
}

#[tokio::test]
async fn other_inputs_are_validated_too() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow("Checked").await.id();
    let cases: Vec<(&str, String, Value, &str)> = vec![
        ("PUT", format!("/workflows/{id}/definition"), json!({"definition": definition(0), "message": " "}), "message"),
        ("PATCH", format!("/workflows/{id}"), json!({"name": "no/slash"}), "name"),
        ("POST", format!("/workflows/{id}/rollback"), json!({"to_version": 9}), "to_version"),
        ("POST", format!("/workflows/{id}/promote"), json!({"environment": "moon"}), "environment"),
        ("POST", "/members".into(), json!({"email": "not-an-email", "role": "viewer"}), "email"),
        ("POST", "/members".into(), json!({"email": "a@example.com", "role": "emperor"}), "role"),
        (
            "POST",
            "/api-keys".into(),
            json!({"name": "k", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        ("POST", "/api-keys".into(), json!({"name": "", "role": "viewer"}), "name"),
        ("POST", "/teams".into(), json!({"name": "<b>"}), "name"),
        ("PATCH", String::new(), json!({"settings": {"banner": "<script>alert(1)</script>"}}), "settings"),
        ("PATCH", String::new(), json!({"settings": [1, 2]}), "settings"),
        ("PUT", "/plan".into(), json!({"plan": "platinum"}), "plan"),
    ];
    for (method, path, body, field) in cases {
        let response = app.admin(method, &path, Some(body), &[("If-Match", "\"1\"")]).await;
        response.assert_problem(422, "VALIDATION_ERROR");
        assert!(
            response.error_fields().iter().any(|f| f == field),
            "{method} {path}: expected {field}, got {}",
            response.body
        );
    }
}

#[tokio::test]
async fn lifecycle_rules_are_conflicts() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow("Lifecycle").await.id();
    let prod = app
        .admin(
            "POST",
            &format!("/workflows/{id}/promote"),
            Some(json!({"environment": "prod"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    prod.assert_problem(409, "CONFLICT");
    assert_eq!(
        app.admin("POST", &format!("/workflows/{id}/archive"), None, &[("If-Match", "\"1\"")]).await.status,
        200
    );
    let edit = json!({"definition": definition(2), "message": "edit"});
    app.admin("PUT", &format!("/workflows/{id}/definition"), Some(edit), &[("If-Match", "\"2\"")])
        .await
        .assert_problem(409, "CONFLICT");
    let member = app.admin("POST", "/members", Some(json!({"email": "only@example.com", "role": "admin"})), &[]).await;
    app.admin("DELETE", &format!("/members/{}", member.id()), None, &[]).await.assert_problem(409, "CONFLICT");
}
