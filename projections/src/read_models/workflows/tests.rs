use event_schemas::types::{Environment, WorkflowDefinition};
use event_schemas::workflow::*;
use event_schemas::{Actor, Category, StreamId};

use super::*;

fn event(
    workspace: Uuid,
    workflow: Uuid,
    version: i64,
    e: impl Into<WorkflowEvent>,
) -> (ProjectedEvent, WorkflowEvent) {
    let e = e.into();
    let projected = ProjectedEvent {
        stream_id: StreamId::new(Category::Workflow, workflow),
        version,
        event_id: Uuid::now_v7(),
        event_type: e.event_type().to_owned(),
        schema_version: e.schema_version(),
        workspace_id: workspace,
        global_position: 100 + version,
        occurred_at: Utc::now(),
        actor: Actor::system("test"),
        correlation_id: None,
        causation_id: None,
        payload: serde_json::value::to_raw_value(&e.to_payload()).unwrap(),
    };
    (projected, e)
}

fn created(workflow: Uuid) -> WorkflowCreated {
    WorkflowCreated {
        workflow_id: workflow,
        name: "Invoices".into(),
        description: None,
        tags: vec!["finance".into()],
        team_id: None,
        definition: WorkflowDefinition::default(),
    }
}

#[test]
fn folds_a_stream_in_order_and_records_every_version() {
    let (ws, id) = (Uuid::now_v7(), Uuid::now_v7());
    let mut workflows = Workflows::default();
    let details = WorkflowDetailsChanged { name: "Bills".into(), description: Some("d".into()), tags: vec![] };
    let changed = WorkflowDefinitionChanged { definition: WorkflowDefinition::default(), message: "tweak".into() };
    let history: Vec<WorkflowEvent> = vec![
        created(id).into(),
        WorkflowPublished { version: 1 }.into(),
        WorkflowPromoted { environment: Environment::Staging, version: 1 }.into(),
        details.into(),
        changed.into(),
        WorkflowArchived {}.into(),
        WorkflowRestored {}.into(),
    ];
    for (n, e) in history.into_iter().enumerate() {
        let (projected, e) = event(ws, id, n as i64 + 1, e);
        workflows.apply(&projected, &e);
    }
    let row = workflows.rows[&(ws, id)].as_ref().expect("created");
    assert_eq!((row.name.as_str(), row.description.as_deref()), ("Bills", Some("d")));
    // The definition change made the published workflow a draft; archive and restore kept it.
    assert_eq!((row.status.as_str(), row.published_version, row.version), ("draft", Some(1), 7));
    assert_eq!(row.environments, serde_json::json!({"staging": 1}));
    let versions: Vec<(i64, Option<&str>)> =
        workflows.versions.iter().map(|v| (v.version, v.message.as_deref())).collect();
    assert_eq!(versions, [(1, None), (2, None), (3, None), (4, None), (5, Some("tweak")), (6, None), (7, None)]);
    assert_eq!(workflows.changed.len(), 1);
}

#[test]
fn archive_remembers_the_status_it_restores() {
    let (ws, id) = (Uuid::now_v7(), Uuid::now_v7());
    let mut workflows = Workflows::default();
    let history: [WorkflowEvent; 3] =
        [created(id).into(), WorkflowPublished { version: 1 }.into(), WorkflowArchived {}.into()];
    for (n, e) in history.into_iter().enumerate() {
        let (projected, e) = event(ws, id, n as i64 + 1, e);
        workflows.apply(&projected, &e);
    }
    assert_eq!(workflows.rows[&(ws, id)].as_ref().unwrap().status, "archived");
    let (projected, e) = event(ws, id, 4, WorkflowRestored {});
    workflows.apply(&projected, &e);
    assert_eq!(workflows.rows[&(ws, id)].as_ref().unwrap().status, "published");
}

#[test]
fn an_event_reaches_only_its_own_workspace_row() {
    let (ws, other, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut workflows = Workflows::default();
    let (projected, e) = event(ws, id, 1, created(id));
    workflows.apply(&projected, &e);
    // The same workflow id under another workspace has no row: nothing changes, no version.
    let (projected, e) = event(other, id, 2, WorkflowArchived {});
    workflows.apply(&projected, &e);
    assert_eq!(workflows.rows[&(ws, id)].as_ref().unwrap().status, "draft");
    assert!(workflows.rows[&(other, id)].is_none());
    assert_eq!(workflows.versions.len(), 1);
}

/// A batch that creates `ids` and commits: what it wrote, remembered in `memory`.
fn commit_creations(memory: &mut WorkflowMemory, ws: Uuid, ids: &[Uuid]) {
    let mut workflows = Workflows::default();
    for id in ids {
        let (projected, e) = event(ws, *id, 1, created(*id));
        workflows.apply(&projected, &e);
    }
    workflows.push_into(&mut BatchStatement::new());
    memory.remember(workflows.into_written());
}

#[test]
fn a_committed_row_is_recalled_as_written_and_a_new_stream_as_absent() {
    let (ws, id, fresh, unknown) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut memory = WorkflowMemory::default();
    commit_creations(&mut memory, ws, &[id]);

    let mut next = Workflows::default();
    let events = [event(ws, id, 2, WorkflowArchived {}).0, event(ws, fresh, 1, created(fresh)).0];
    let unknown_event = event(ws, unknown, 5, WorkflowArchived {}).0;
    next.recall(&mut memory, events.iter().chain([&unknown_event]), |e| e.version == 1);
    assert_eq!(next.rows[&(ws, id)].as_ref().map(|r| (r.name.as_str(), r.version)), Some(("Invoices", 1)));
    assert_eq!(next.rows.get(&(ws, fresh)), Some(&None), "a new stream has no row");
    assert!(!next.rows.contains_key(&(ws, unknown)), "a row not in memory is left to `load`");
}

#[test]
fn the_memory_keeps_to_its_budget_dropping_the_least_recently_written() {
    let ws = Uuid::now_v7();
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let mut probe = WorkflowMemory::new(usize::MAX);
    commit_creations(&mut probe, ws, &ids[..1]);
    let one_row = probe.bytes;
    assert!(one_row > 100, "a row's size is its JSON: {one_row} bytes");

    // Room for two rows (their timestamps may differ in length by a few digits).
    let budget = 2 * one_row + 8;
    let mut memory = WorkflowMemory::new(budget);
    commit_creations(&mut memory, ws, &ids);
    let counted = |m: &WorkflowMemory| m.rows.iter().map(|(_, (_, size))| size).sum::<usize>();
    assert_eq!(memory.rows.len(), 2);
    assert!(memory.bytes <= budget && memory.bytes == counted(&memory));
    assert!(!memory.rows.contains(&(ws, ids[0])), "the first written goes first");
    // Writing a remembered row again replaces it, and its size is counted once.
    commit_creations(&mut memory, ws, &ids[2..]);
    assert_eq!(memory.rows.len(), 2);
    assert_eq!(memory.bytes, counted(&memory));
}
