//! Every root field, pagination both ways with stable cursors, and each workflow filter.

use serde_json::{Value, json};

use crate::support::{Stack, definition};

#[tokio::test]
async fn every_root_field_answers_from_the_read_models() {
    let stack = Stack::start().await;
    let (_, member) = stack
        .send("POST", "/members", Some(json!({"email": "ada@example.com", "name": "Ada", "role": "developer"})), None)
        .await;
    let user = member["id"].as_str().unwrap().to_owned();
    let (_, team) = stack.send("POST", "/teams", Some(json!({"name": "Core"})), None).await;
    let team = team["id"].as_str().unwrap().to_owned();
    stack.send("POST", &format!("/teams/{team}/members"), Some(json!({"user_id": user})), None).await;
    let (status, key_body) = stack
        .send("POST", "/api-keys", Some(json!({"name": "ada key", "role": "developer", "user_id": user})), None)
        .await;
    assert_eq!(status, 201, "{key_body}");
    let body = json!({"name": "Billing", "description": "Invoices", "tags": ["money"], "team_id": team, "definition": definition(1)});
    let (status, created) = stack.send("POST", "/workflows", Some(body), None).await;
    assert_eq!(status, 201, "{created}");
    let workflow = created["id"].as_str().unwrap().to_owned();
    stack.project().await;

    let data = stack
        .data(
            "query($id: UUID!, $stream: String!) {
               workspace { id name plan activity { day events } }
               members { edges { node { id email name role } } }
               teams { edges { node { name members { email } } } }
               apiKeys { edges { node { name role prefix member { email } } } }
               workflows { edges { node { id name team { name } versions { edges { node { version eventType } } } } } }
               withDefinitions: workflows { edges { node { definition description tags } } }
               asNodes: workflows { nodes { definition description tags } }
               workflow(id: $id) { name description tags status version definition at(version: 1) { name } diff(from: 1, to: 1) { unchanged } }
               auditTrail(first: 50) { edges { node { eventType streamId summary } } }
               stream(id: $stream) { id category version events { edges { node { version eventType hash prevHash } } } verify { intact eventsChecked } }
             }",
            json!({"id": workflow, "stream": format!("workflow-{workflow}")}),
        )
        .await;
    assert_eq!(data["workspace"]["id"], json!(stack.workspace_id.to_string()));
    assert_eq!(data["workspace"]["plan"], "enterprise");
    assert!(data["workspace"]["activity"][0]["events"].as_i64().unwrap() >= 6, "{data}");
    assert_eq!(data["members"]["edges"][0]["node"]["email"], "ada@example.com");
    assert_eq!(data["teams"]["edges"][0]["node"], json!({"name": "Core", "members": [{"email": "ada@example.com"}]}));
    let keys = data["apiKeys"]["edges"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the admin key and ada's: {data}");
    assert_eq!(keys[1]["node"]["member"]["email"], "ada@example.com");
    let hashes: Vec<(String,)> =
        sqlx::query_as("SELECT key_hash FROM security.api_keys").fetch_all(&stack.db.pool).await.unwrap();
    assert!(hashes.iter().all(|(hash,)| !data.to_string().contains(hash.as_str())), "no key hash is ever served");
    let node = &data["workflows"]["edges"][0]["node"];
    assert_eq!((node["name"].as_str(), node["team"]["name"].as_str()), (Some("Billing"), Some("Core")));
    assert_eq!(node["versions"]["edges"][0]["node"], json!({"version": 1, "eventType": "WorkflowCreated"}));
    assert_eq!(data["workflow"]["at"]["name"], "Billing");
    // The definition, description and tags are read only when asked for, and then they are the
    // real ones, however the query reaches them.
    let full =
        json!({"definition": crate::support::stored(definition(1)), "description": "Invoices", "tags": ["money"]});
    assert_eq!(data["withDefinitions"]["edges"][0]["node"], full);
    assert_eq!(data["asNodes"]["nodes"][0], full);
    for field in ["definition", "description", "tags"] {
        assert_eq!(data["workflow"][field], full[field], "{field}");
    }
    assert_eq!(data["workflow"]["diff"]["unchanged"], true);
    let types: Vec<&str> = data["auditTrail"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types[0], "WorkflowCreated", "newest first: {types:?}");
    assert!(types.contains(&"WorkspaceCreated") && types.contains(&"MemberAdded"), "{types:?}");
    assert_eq!(data["stream"]["category"], "workflow");
    assert_eq!(data["stream"]["events"]["edges"][0]["node"]["prevHash"].as_str().unwrap().len(), 64);
    assert_eq!(data["stream"]["verify"], json!({"intact": true, "eventsChecked": 1}));
}

fn names(connection: &Value) -> Vec<String> {
    connection["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn workflows_page_forwards_and_backwards_with_stable_cursors() {
    let stack = Stack::start().await;
    for name in ["e", "a", "d", "b", "c", "f", "g"] {
        stack.create_workflow(name, &[], None).await;
    }
    stack.project().await;
    let page = |args: String| {
        let query = format!(
            "{{ workflows({args}, orderBy: {{field: NAME, direction: ASC}}) {{ edges {{ cursor node {{ name }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
        );
        let stack = &stack;
        async move { stack.data(&query, json!({})).await["workflows"].clone() }
    };
    let first = page("first: 3".into()).await;
    assert_eq!(names(&first), ["a", "b", "c"]);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let end = first["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    // A new workflow sorting before the cursor does not move the next page.
    stack.create_workflow("0 early", &[], None).await;
    stack.project().await;
    let second = page(format!("first: 3, after: \"{end}\"")).await;
    assert_eq!(names(&second), ["d", "e", "f"]);
    assert_eq!(
        (second["pageInfo"]["hasPreviousPage"].as_bool(), second["pageInfo"]["hasNextPage"].as_bool()),
        (Some(true), Some(true))
    );
    let tail = page(format!("first: 3, after: \"{}\"", second["pageInfo"]["endCursor"].as_str().unwrap())).await;
    assert_eq!((names(&tail), tail["pageInfo"]["hasNextPage"].as_bool()), (vec!["g".to_string()], Some(false)));

    let last = page("last: 2".into()).await;
    assert_eq!(names(&last), ["f", "g"]);
    assert_eq!(last["pageInfo"]["hasPreviousPage"], true);
    let before = page(format!("last: 3, before: \"{}\"", last["pageInfo"]["startCursor"].as_str().unwrap())).await;
    assert_eq!(names(&before), ["c", "d", "e"]);
    let start = page(format!("last: 5, before: \"{}\"", before["pageInfo"]["startCursor"].as_str().unwrap())).await;
    assert_eq!(
        (names(&start), start["pageInfo"]["hasPreviousPage"].as_bool()),
        (vec!["0 early".to_string(), "a".into(), "b".into()], Some(false))
    );

    // The default ordering, newest change first, pages on the update time to the microsecond.
    let newest = |args: &str| {
        let query =
            format!("{{ workflows({args}) {{ edges {{ node {{ name }} }} pageInfo {{ hasNextPage endCursor }} }} }}");
        let stack = &stack;
        async move { stack.data(&query, json!({})).await["workflows"].clone() }
    };
    let first = newest("first: 3").await;
    assert_eq!(names(&first), ["0 early", "g", "f"]);
    let after = format!("first: 4, after: \"{}\"", first["pageInfo"]["endCursor"].as_str().unwrap());
    let rest = newest(&after).await;
    assert_eq!(
        (names(&rest), rest["pageInfo"]["hasNextPage"].as_bool()),
        (vec!["c", "b", "d", "a"].into_iter().map(String::from).collect(), Some(true))
    );

    // A cursor of one ordering is refused by another.
    let query = format!("{{ workflows(after: \"{end}\", orderBy: {{field: UPDATED_AT}}) {{ edges {{ cursor }} }} }}");
    let (_, body) = stack.query_as(&stack.key, &query, json!({})).await;
    assert_eq!(crate::support::error_code(&body), "BAD_USER_INPUT");
    let (_, body) =
        stack.query_as(&stack.key, "{ workflows(first: 1, last: 1) { edges { cursor } } }", json!({})).await;
    assert_eq!(crate::support::error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn each_workflow_filter_selects_exactly_its_workflows() {
    let stack = Stack::start().await;
    let invoices = stack.create_workflow("Invoices", &["finance", "monthly"], Some("sends the invoices")).await;
    let payroll = stack.create_workflow("Payroll", &["finance"], Some("pays people")).await;
    let onboarding = stack.create_workflow("Onboarding", &["hr"], Some("welcomes new hires")).await;
    let (status, body) = stack.send("POST", &format!("/workflows/{payroll}/publish"), None, Some(1)).await;
    assert_eq!(status, 200, "{body}");
    stack.send("POST", &format!("/workflows/{payroll}/promote"), Some(json!({"environment": "prod"})), Some(2)).await;
    stack.send("POST", &format!("/workflows/{onboarding}/archive"), None, Some(1)).await;
    stack.project().await;
    let mid: (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT updated_at FROM read_model.workflows WHERE workflow_id = $1::uuid")
            .bind(&invoices)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    let (admin_key,): (String,) =
        sqlx::query_as("SELECT created_by FROM read_model.workflows WHERE workflow_id = $1::uuid")
            .bind(&invoices)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();

    let filtered = |filter: Value| {
        let stack = &stack;
        async move {
            let data = stack
                .data("query($f: WorkflowFilter) { workflows(filter: $f, orderBy: {field: NAME, direction: ASC}) { edges { node { name } } } }", json!({"f": filter}))
                .await;
            names(&data["workflows"])
        }
    };
    assert_eq!(filtered(json!({"status": ["PUBLISHED"]})).await, ["Payroll"]);
    assert_eq!(filtered(json!({"status": ["DRAFT", "ARCHIVED"]})).await, ["Invoices", "Onboarding"]);
    assert_eq!(filtered(json!({"environment": "PROD"})).await, ["Payroll"]);
    let promoted = stack
        .data("{ workflows(filter: {environment: PROD}) { nodes { publishedVersion environments { environment version } } } }", json!({}))
        .await;
    let payroll_node = &promoted["workflows"]["nodes"][0];
    let published = payroll_node["publishedVersion"].clone();
    assert_eq!(payroll_node["environments"], json!([{"environment": "prod", "version": published}]), "{promoted}");
    assert_eq!(filtered(json!({"tags": ["finance"]})).await, ["Invoices", "Payroll"]);
    assert_eq!(filtered(json!({"tags": ["finance", "monthly"]})).await, ["Invoices"]);
    assert_eq!(filtered(json!({"search": "invoices"})).await, ["Invoices"]);
    assert_eq!(filtered(json!({"search": "hires"})).await, ["Onboarding"]);
    assert_eq!(filtered(json!({"search": "finance -monthly"})).await, ["Payroll"]);
    assert_eq!(filtered(json!({"updatedAfter": mid.0.to_rfc3339()})).await, ["Invoices", "Onboarding", "Payroll"]);
    assert_eq!(filtered(json!({"updatedBefore": mid.0.to_rfc3339()})).await, Vec::<String>::new());
    assert_eq!(filtered(json!({"createdBy": admin_key})).await.len(), 3);
    assert_eq!(filtered(json!({"createdBy": "someone else"})).await, Vec::<String>::new());
    assert_eq!(filtered(json!({"status": ["DRAFT"], "tags": ["finance"]})).await, ["Invoices"]);
}

#[tokio::test]
async fn the_audit_trail_filters_by_actor_type_stream_and_time_and_pages_newest_first() {
    let stack = Stack::start().await;
    let a = stack.create_workflow("Alpha", &[], None).await;
    let (status, body) = stack.send("POST", &format!("/workflows/{a}/publish"), None, Some(1)).await;
    assert_eq!(status, 200, "{body}");
    let (_, dev) = stack.send("POST", "/api-keys", Some(json!({"name": "dev", "role": "developer"})), None).await;
    let dev_key = dev["key"].as_str().unwrap().to_owned();
    let dev_id = dev["id"].as_str().unwrap().to_owned();
    let url = format!("{}/v1/workspaces/{}/workflows", stack.commands, stack.workspace_id);
    let body = json!({"name": "Beta", "definition": definition(1)});
    let created = stack.client.post(url).bearer_auth(&dev_key).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let b = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    stack.project().await;

    let trail = |filter: Value, first: i64, after: Option<String>| {
        let stack = &stack;
        async move {
            let query = "query($f: AuditFilter, $n: Int, $a: String) { auditTrail(first: $n, after: $a, filter: $f) {
                edges { node { position eventType streamId actorId } } pageInfo { hasNextPage endCursor } } }";
            stack.data(query, json!({"f": filter, "n": first, "a": after})).await["auditTrail"].clone()
        }
    };
    let types = |page: &Value| -> Vec<String> {
        page["edges"].as_array().unwrap().iter().map(|e| e["node"]["eventType"].as_str().unwrap().to_owned()).collect()
    };
    let by_dev = trail(json!({"actor": dev_id}), 10, None).await;
    assert_eq!(types(&by_dev), ["WorkflowCreated"]);
    assert_eq!(by_dev["edges"][0]["node"]["streamId"], json!(format!("workflow-{b}")));
    let published = trail(json!({"eventTypes": ["WorkflowPublished"]}), 10, None).await;
    assert_eq!(types(&published), ["WorkflowPublished"]);
    let stream_a = trail(json!({"streamId": format!("workflow-{a}")}), 10, None).await;
    assert_eq!(types(&stream_a), ["WorkflowPublished", "WorkflowCreated"]);
    assert_eq!(types(&trail(json!({"to": "2000-01-01T00:00:00Z"}), 10, None).await), Vec::<String>::new());
    assert_eq!(
        types(&trail(json!({"from": "2000-01-01T00:00:00Z", "streamId": format!("workflow-{b}")}), 10, None).await),
        ["WorkflowCreated"]
    );

    // Paging: newest first, the pages together are the whole trail, once each.
    let whole = trail(json!({}), 100, None).await;
    let positions: Vec<i64> =
        whole["edges"].as_array().unwrap().iter().map(|e| e["node"]["position"].as_i64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");
    let (mut paged, mut after) = (Vec::new(), None);
    loop {
        let page = trail(json!({}), 2, after.clone()).await;
        paged.extend(page["edges"].as_array().unwrap().iter().map(|e| e["node"]["position"].as_i64().unwrap()));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(paged, positions);
}

/// A workflow's stored fields are answered in one step when nothing else is asked
/// (`query-api/src/schema/stored_fields.rs`), and by async-graphql's resolvers otherwise: byte for
/// byte the same answer, for every such field, in the list and in `workflow(id)`.
#[tokio::test]
async fn stored_workflow_fields_answer_alike_however_they_are_asked() {
    let stack = Stack::start().await;
    let body = json!({"name": "Published", "description": "Ships", "tags": ["a", "b"], "definition": definition(2)});
    let (status, created) = stack.send("POST", "/workflows", Some(body), None).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, body) = stack.send("POST", &format!("/workflows/{id}/publish"), None, Some(1)).await;
    assert_eq!(status, 200, "{body}");
    stack.create_workflow("Bare", &[], None).await;
    stack.project().await;

    let fields = "id name description tags status version publishedVersion definition createdBy createdAt \
                  updatedAt __typename again: name id";
    for (direct, through_fragment) in [
        (
            format!("{{ workflows {{ nodes {{ {fields} }} }} }}"),
            format!("{{ workflows {{ nodes {{ ... on Workflow {{ {fields} }} }} }} }}"),
        ),
        (
            format!("query($id: UUID!) {{ workflow(id: $id) {{ {fields} }} }}"),
            format!("query($id: UUID!) {{ workflow(id: $id) {{ ... on Workflow {{ {fields} }} }} }}"),
        ),
    ] {
        let (direct, through_fragment) = (raw(&stack, &direct, &id).await, raw(&stack, &through_fragment, &id).await);
        assert!(!direct.contains("\"errors\""), "{direct}");
        assert_eq!(direct, through_fragment);
    }

    let data = stack
        .data(
            &format!("{{ workflows(orderBy: {{field: NAME, direction: ASC}}) {{ nodes {{ {fields} }} }} }}"),
            json!({}),
        )
        .await;
    let (bare, published) = (&data["workflows"]["nodes"][0], &data["workflows"]["nodes"][1]);
    assert_eq!(
        (published["name"].as_str(), published["description"].as_str(), published["tags"].clone()),
        (Some("Published"), Some("Ships"), json!(["a", "b"]))
    );
    assert_eq!(
        (published["status"].as_str(), published["version"].as_i64(), published["publishedVersion"].as_i64()),
        (Some("published"), Some(2), Some(1))
    );
    assert_eq!(published["definition"], crate::support::stored(definition(2)));
    assert_eq!((published["__typename"].as_str(), published["again"].as_str()), (Some("Workflow"), Some("Published")));
    assert!(published["createdAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().is_ok());
    assert_eq!((bare["description"].clone(), bare["publishedVersion"].clone()), (Value::Null, Value::Null));
}

/// The body of a GraphQL answer as sent, for a query that must succeed.
async fn raw(stack: &Stack, query: &str, id: &str) -> String {
    let body = json!({"query": query, "variables": {"id": id}});
    let response = stack.client.post(&stack.graphql).bearer_auth(&stack.key).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}
