//! Given/When/Then tests of the workflow aggregate.

use event_schemas::types::{Edge, Node, NodeType, Position};

use super::*;
use crate::aggregate::fold;

const WF: Uuid = Uuid::from_u128(42);

fn definition(actions: usize) -> WorkflowDefinition {
    let mut nodes = vec![Node {
        id: "start".into(),
        node_type: NodeType::Trigger,
        name: "Start".into(),
        position: Position { x: 0.0, y: 0.0 },
        config: Default::default(),
    }];
    let mut edges = Vec::new();
    for i in 0..actions {
        nodes.push(Node {
            id: format!("a{i}"),
            node_type: NodeType::Action,
            name: format!("Action {i}"),
            position: Position { x: 100.0 * (i + 1) as f64, y: 0.0 },
            config: Default::default(),
        });
        let source = if i == 0 { "start".to_owned() } else { format!("a{}", i - 1) };
        edges.push(Edge { id: format!("e{i}"), source, target: format!("a{i}"), condition: None });
    }
    WorkflowDefinition { nodes, edges }
}

fn created() -> WorkflowEvent {
    WorkflowCreated {
        workflow_id: WF,
        name: "Nightly sync".into(),
        description: None,
        tags: vec![],
        team_id: None,
        definition: definition(1),
    }
    .into()
}

fn changed(actions: usize) -> WorkflowEvent {
    WorkflowDefinitionChanged { definition: definition(actions), message: format!("{actions} actions") }.into()
}

fn change(actions: usize) -> WorkflowCommand {
    WorkflowCommand::ChangeDefinition {
        definition: ValidDefinition::parse(definition(actions)).unwrap(),
        message: CommitMessage::parse(&format!("{actions} actions")).unwrap(),
    }
}

fn given(events: &[WorkflowEvent]) -> Workflow {
    fold(events)
}

#[test]
fn create_records_the_first_version() {
    let command = WorkflowCommand::Create {
        workflow_id: WF,
        name: WorkflowName::parse("Nightly sync").unwrap(),
        description: None,
        tags: Tags::default(),
        team_id: None,
        definition: ValidDefinition::parse(definition(1)).unwrap(),
    };
    assert_eq!(given(&[]).decide(&command), Ok(vec![created()]));
    assert_eq!(given(&[created()]).decide(&command), Err(WorkflowError::AlreadyExists));
    assert_eq!(given(&[]).decide(&WorkflowCommand::Publish), Err(WorkflowError::NotFound));
}

#[test]
fn each_definition_is_kept_by_version() {
    let state = given(&[created(), changed(2), WorkflowPublished { version: 2 }.into(), changed(3)]);
    assert_eq!(state.version, 4);
    assert_eq!(state.definition_at(1).unwrap().nodes.len(), 2);
    assert_eq!(state.definition_at(3).unwrap().nodes.len(), 3);
    assert_eq!(state.definition().unwrap().nodes.len(), 4);
    assert_eq!(state.status, WorkflowStatus::Draft, "a change after publishing is a draft again");
}

#[test]
fn rollback_brings_back_the_definition_of_an_existing_version() {
    let state = given(&[created(), changed(2), changed(3)]);
    assert_eq!(
        state.decide(&WorkflowCommand::RollBack { to_version: 2 }),
        Ok(vec![WorkflowRolledBack { to_version: 2, definition: definition(2) }.into()])
    );
    for bad in [0, 4, -1] {
        assert_eq!(
            state.decide(&WorkflowCommand::RollBack { to_version: bad }),
            Err(WorkflowError::NoSuchVersion { requested: bad, latest: 3 })
        );
    }
}

#[test]
fn only_a_published_version_goes_to_prod() {
    let prod = WorkflowCommand::Promote { environment: Environment::Prod };
    assert_eq!(given(&[created()]).decide(&prod), Err(WorkflowError::NotPublished));
    let published = given(&[created(), WorkflowPublished { version: 1 }.into()]);
    assert_eq!(
        published.decide(&prod),
        Ok(vec![WorkflowPromoted { environment: Environment::Prod, version: 1 }.into()])
    );
    let edited = given(&[created(), WorkflowPublished { version: 1 }.into(), changed(2)]);
    assert_eq!(edited.decide(&prod), Err(WorkflowError::NotPublished));
    let staging = WorkflowCommand::Promote { environment: Environment::Staging };
    assert_eq!(
        edited.decide(&staging),
        Ok(vec![WorkflowPromoted { environment: Environment::Staging, version: 3 }.into()])
    );
}

#[test]
fn an_archived_workflow_takes_no_edits_until_restored() {
    let archived = given(&[created(), WorkflowPublished { version: 1 }.into(), WorkflowArchived {}.into()]);
    for command in [
        change(2),
        WorkflowCommand::Publish,
        WorkflowCommand::Archive,
        WorkflowCommand::RollBack { to_version: 1 },
        WorkflowCommand::Promote { environment: Environment::Dev },
        WorkflowCommand::ChangeDetails { name: Some(WorkflowName::parse("x").unwrap()), description: None, tags: None },
    ] {
        assert_eq!(archived.decide(&command), Err(WorkflowError::Archived), "{command:?}");
    }
    assert_eq!(archived.decide(&WorkflowCommand::Restore), Ok(vec![WorkflowRestored {}.into()]));
    let restored = given(&[
        created(),
        WorkflowPublished { version: 1 }.into(),
        WorkflowArchived {}.into(),
        WorkflowRestored {}.into(),
    ]);
    assert_eq!(restored.status, WorkflowStatus::Published, "restore returns to the status before archiving");
    assert_eq!(given(&[created()]).decide(&WorkflowCommand::Restore), Err(WorkflowError::NotArchived));
}

#[test]
fn details_change_keeps_what_is_not_named_and_skips_no_ops() {
    let state = given(&[created()]);
    let same = WorkflowCommand::ChangeDetails {
        name: Some(WorkflowName::parse("Nightly sync").unwrap()),
        description: None,
        tags: None,
    };
    assert_eq!(state.decide(&same), Ok(vec![]));
    let tags = WorkflowCommand::ChangeDetails {
        name: None,
        description: None,
        tags: Some(Tags::parse(&["etl".into()]).unwrap()),
    };
    assert_eq!(
        state.decide(&tags),
        Ok(vec![
            WorkflowDetailsChanged { name: "Nightly sync".into(), description: None, tags: vec!["etl".into()] }.into()
        ])
    );
    assert_eq!(
        given(&[created(), WorkflowPublished { version: 1 }.into()]).decide(&WorkflowCommand::Publish),
        Ok(vec![])
    );
}
