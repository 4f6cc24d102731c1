//! Property tests: random command sequences never break an aggregate's invariants, every event
//! validates against its JSON Schema, and folding the emitted events (after a round trip through
//! their stored JSON form) always reproduces the state that `decide` saw.

use chrono::{Duration, Utc};
use domain::aggregate::{Aggregate, fold};
use domain::api_key::{ApiKeyCommand, KeySecret};
use domain::quotas::quotas;
use domain::validation::*;
use domain::{ApiKey, Workflow, WorkflowCommand, WorkflowStatus, Workspace, WorkspaceCommand, can_grant};
use event_schemas::types::{Edge, Environment, Node, NodeType, Plan, Position, Role, WorkflowDefinition};
use event_schemas::validation::validate_payload;
use event_schemas::{ApiKeyEvent, WorkflowEvent, WorkspaceEvent};
use proptest::prelude::*;
use uuid::Uuid;

/// Runs `commands` against an aggregate, checking after every accepted command that the events
/// are schema-valid, that `invariant(before, after)` holds, and that a fold of every event so far,
/// decoded from its JSON payload, equals the state.
fn run<A, F, D>(
    commands: &[A::Command],
    to_json: fn(&A::Event) -> (String, u32, serde_json::Value),
    decode: D,
    invariant: F,
) where
    A: Aggregate + PartialEq + std::fmt::Debug,
    A::Event: PartialEq + std::fmt::Debug,
    F: Fn(&A, &A, &A::Command),
    D: Fn(&str, u32, serde_json::Value) -> A::Event,
{
    let mut state = A::default();
    let mut history: Vec<A::Event> = Vec::new();
    for command in commands {
        let before = state.clone();
        let Ok(events) = state.decide(command) else { continue };
        for event in &events {
            let (event_type, version, payload) = to_json(event);
            validate_payload(&event_type, &payload).unwrap();
            let decoded = decode(&event_type, version, payload);
            assert_eq!(&decoded, event, "payload round trip");
            state.evolve(&decoded);
            history.push(decoded);
        }
        assert_eq!(state.version(), history.len() as i64);
        invariant(&before, &state, command);
        assert_eq!(fold::<A>(&history), state, "fold of the history reproduces the state");
    }
}

fn ids(n: u128) -> impl Strategy<Value = Uuid> {
    (0..n).prop_map(|i| Uuid::from_u128(i + 1))
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn plan() -> impl Strategy<Value = Plan> {
    prop::sample::select(Plan::ALL.to_vec())
}

fn workspace_command() -> impl Strategy<Value = WorkspaceCommand> {
    let name = prop::sample::select(vec!["Acme", "Globex", "Initech"]).prop_map(|n| WorkspaceName::parse(n).unwrap());
    let email = (0..8u8).prop_map(|i| Email::parse(&format!("user{i}@example.com")).unwrap());
    let team_name = prop::sample::select(vec!["Ops", "Data"]).prop_map(|n| TeamName::parse(n).unwrap());
    prop_oneof![
        (name.clone(), plan()).prop_map(|(name, plan)| WorkspaceCommand::Create {
            workspace_id: Uuid::from_u128(99),
            name,
            slug: Slug::parse("acme").unwrap(),
            plan
        }),
        name.prop_map(|name| WorkspaceCommand::Rename { name }),
        plan().prop_map(|plan| WorkspaceCommand::ChangePlan { plan }),
        (ids(8), email, role()).prop_map(|(user_id, email, role)| WorkspaceCommand::AddMember {
            user_id,
            email,
            name: None,
            role
        }),
        (ids(8), role()).prop_map(|(user_id, role)| WorkspaceCommand::ChangeMemberRole { user_id, role }),
        ids(8).prop_map(|user_id| WorkspaceCommand::RemoveMember { user_id }),
        (ids(3), team_name).prop_map(|(team_id, name)| WorkspaceCommand::CreateTeam { team_id, name }),
        (ids(3), ids(8)).prop_map(|(team_id, user_id)| WorkspaceCommand::AddTeamMember { team_id, user_id }),
        (ids(3), ids(8)).prop_map(|(team_id, user_id)| WorkspaceCommand::RemoveTeamMember { team_id, user_id }),
    ]
}

fn definition(actions: usize, branch: bool) -> WorkflowDefinition {
    let node = |id: String, node_type| Node {
        name: format!("Node {id}"),
        id,
        node_type,
        position: Position { x: 1.5, y: -2.25 },
        config: serde_json::json!({"retries": 3, "url": "https://example.com"}).as_object().unwrap().clone(),
    };
    let mut nodes = vec![node("t".into(), NodeType::Trigger)];
    let mut edges = Vec::new();
    for i in 0..actions {
        nodes.push(node(format!("n{i}"), NodeType::Action));
        let source = if branch || i == 0 { "t".to_owned() } else { format!("n{}", i - 1) };
        edges.push(Edge { id: format!("e{i}"), source, target: format!("n{i}"), condition: Some("ok".into()) });
    }
    WorkflowDefinition { nodes, edges }
}

fn valid_definition() -> impl Strategy<Value = ValidDefinition> {
    (0..6usize, any::<bool>()).prop_map(|(n, branch)| ValidDefinition::parse(definition(n, branch)).unwrap())
}

fn workflow_command() -> impl Strategy<Value = WorkflowCommand> {
    let name = prop::sample::select(vec!["Sync", "Backup", "Report"]).prop_map(|n| WorkflowName::parse(n).unwrap());
    let env = prop::sample::select(vec![Environment::Dev, Environment::Staging, Environment::Prod]);
    prop_oneof![
        (name.clone(), valid_definition()).prop_map(|(name, definition)| WorkflowCommand::Create {
            workflow_id: Uuid::from_u128(7),
            name,
            description: None,
            tags: Tags::default(),
            team_id: None,
            definition
        }),
        valid_definition().prop_map(|definition| WorkflowCommand::ChangeDefinition {
            definition,
            message: CommitMessage::parse("change").unwrap()
        }),
        (proptest::option::of(name), any::<bool>()).prop_map(|(name, tag)| WorkflowCommand::ChangeDetails {
            name,
            description: Some(Some(Description::parse("d").unwrap())),
            tags: tag.then(|| Tags::parse(&["etl".into()]).unwrap()),
        }),
        Just(WorkflowCommand::Publish),
        env.prop_map(|environment| WorkflowCommand::Promote { environment }),
        Just(WorkflowCommand::Archive),
        Just(WorkflowCommand::Restore),
        (-1..12i64).prop_map(|to_version| WorkflowCommand::RollBack { to_version }),
    ]
}

fn api_key_command() -> impl Strategy<Value = ApiKeyCommand> {
    let secret = (0..4u8).prop_map(|n| KeySecret {
        prefix: KeyPrefix::parse(&format!("prefix{n:02}")).unwrap(),
        hash: KeyHash::parse(&format!("{n:02x}").repeat(32)).unwrap(),
    });
    prop_oneof![
        (role(), role(), secret.clone(), any::<bool>()).prop_map(|(role, issuer_role, secret, expires)| {
            let now = Utc::now();
            ApiKeyCommand::Issue {
                key_id: Uuid::from_u128(5),
                name: KeyName::parse("ci").unwrap(),
                role,
                secret,
                expires_at: expires.then(|| now + Duration::days(30)),
                user_id: None,
                issuer_role,
                now,
            }
        }),
        secret.prop_map(|secret| ApiKeyCommand::Rotate { secret }),
        Just(ApiKeyCommand::Revoke),
    ]
}

fn workspace_json(e: &WorkspaceEvent) -> (String, u32, serde_json::Value) {
    (e.event_type().into(), e.schema_version(), e.to_payload())
}

fn workflow_json(e: &WorkflowEvent) -> (String, u32, serde_json::Value) {
    (e.event_type().into(), e.schema_version(), e.to_payload())
}

fn api_key_json(e: &ApiKeyEvent) -> (String, u32, serde_json::Value) {
    (e.event_type().into(), e.schema_version(), e.to_payload())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn workspace_invariants_hold(commands in prop::collection::vec(workspace_command(), 0..60)) {
        run::<Workspace, _, _>(&commands, workspace_json, |t, v, p| WorkspaceEvent::decode(t, v, p).unwrap(), |before, after, _| {
            for team in after.teams.values() {
                assert!(team.members.iter().all(|m| after.members.contains_key(m)), "team holds a non-member");
            }
            let mut emails: Vec<_> = after.members.values().map(|m| &m.email).collect();
            emails.sort();
            emails.dedup();
            assert_eq!(emails.len(), after.members.len(), "emails are unique");
            assert!(after.members.len() <= quotas(after.plan).max_members, "member quota");
            if before.admin_count() > 0 {
                assert!(after.admin_count() > 0, "the last admin was removed");
            }
        });
    }

    #[test]
    fn workflow_invariants_hold(commands in prop::collection::vec(workflow_command(), 0..60)) {
        run::<Workflow, _, _>(&commands, workflow_json, |t, v, p| WorkflowEvent::decode(t, v, p).unwrap(), |before, after, command| {
            let current = after.definition().expect("a created workflow has a definition");
            assert!(ValidDefinition::parse((**current).clone()).is_ok(), "current definition is valid");
            assert!(after.definitions.keys().all(|v| (1..=after.version).contains(v)));
            assert!(after.published_version.is_none_or(|v| v <= after.version));
            assert!(after.environments.values().all(|v| (1..=after.version).contains(v)));
            if let Some(prod) = after.environments.get(&Environment::Prod)
                && before.environments.get(&Environment::Prod) != Some(prod)
            {
                assert_eq!(Some(*prod), before.published_version, "prod got an unpublished version");
                assert_eq!(before.status, WorkflowStatus::Published);
            }
            if before.status == WorkflowStatus::Archived && before.version > 0 {
                assert!(matches!(command, WorkflowCommand::Restore), "an archived workflow changed");
            }
        });
    }

    #[test]
    fn api_key_invariants_hold(commands in prop::collection::vec(api_key_command(), 0..20)) {
        run::<ApiKey, _, _>(&commands, api_key_json, |t, v, p| ApiKeyEvent::decode(t, v, p).unwrap(), |before, after, command| {
            assert!(!before.revoked, "a revoked key changed");
            if let ApiKeyCommand::Issue { issuer_role, .. } = command {
                assert!(can_grant(*issuer_role, after.role.unwrap()));
            }
            assert!(after.key_hash.len() == 64);
        });
    }
}
