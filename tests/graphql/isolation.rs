//! A key of another workspace sees nothing of this one, through any field.

use serde_json::{Value, json};

use crate::support::Stack;

#[tokio::test]
async fn another_workspace_sees_nothing_of_ours() {
    let stack = Stack::start().await;
    let (_, member) =
        stack.send("POST", "/members", Some(json!({"email": "secret@acme.test", "role": "viewer"})), None).await;
    assert!(member["id"].is_string(), "{member}");
    let (_, team) = stack.send("POST", "/teams", Some(json!({"name": "Secret team"})), None).await;
    let team = team["id"].as_str().unwrap().to_owned();
    let body = json!({"name": "Secret flow", "tags": ["secret"], "team_id": team, "definition": crate::support::definition(1)});
    let (_, created) = stack.send("POST", "/workflows", Some(body), None).await;
    let workflow = created["id"].as_str().unwrap().to_owned();
    let (other_ws, other_key) = stack.other_workspace().await;
    stack.project().await;

    let everything = "query($id: UUID!, $s: String!, $ws: String!) {
        workspace { id name }
        members { edges { node { email } } }
        teams { edges { node { name members { email } } } }
        apiKeys { edges { node { name prefix } } }
        workflows(filter: {search: \"secret\"}) { edges { node { name } } }
        all: workflows(first: 100) { edges { node { id name } } }
        workflow(id: $id) { name at(version: 1) { name } }
        auditTrail(first: 100) { edges { node { streamId summary } } }
        stream(id: $s) { id events { edges { node { eventType } } } }
        wsStream: stream(id: $ws) { id }
      }";
    let variables =
        json!({"id": workflow, "s": format!("workflow-{workflow}"), "ws": format!("workspace-{}", stack.workspace_id)});
    let (status, body) = stack.query_as(&other_key, everything, variables.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let data = &body["data"];
    assert_eq!(data["workspace"]["id"], json!(other_ws.to_string()));
    assert_eq!(data["workflow"], Value::Null);
    assert_eq!(data["stream"], Value::Null);
    assert_eq!(data["wsStream"], Value::Null);
    assert_eq!(data["workflows"]["edges"], json!([]));
    assert_eq!(data["all"]["edges"], json!([]));
    assert_eq!(data["members"]["edges"], json!([]));
    assert_eq!(data["teams"]["edges"], json!([]));
    let text = data.to_string();
    for ours in ["secret", "Secret", "Pipeline", &workflow, &team, &stack.workspace_id.to_string()] {
        assert!(!text.contains(ours), "{ours:?} leaked into {text}");
    }
    // And the owner sees it all through the same query.
    let own = stack.data(everything, variables).await;
    assert_eq!(own["workflow"]["name"], "Secret flow");
    assert_eq!(own["stream"]["id"], json!(format!("workflow-{workflow}")));
}
