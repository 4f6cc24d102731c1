//! The read models must equal what the event store implies: every stream is folded with the
//! domain's own `evolve`, and each read-model table is compared with the fold.

use std::collections::{BTreeMap, BTreeSet};

use domain::aggregate::{Aggregate, fold};
use domain::{ApiKey, Workflow, Workspace};
use event_schemas::types::WorkflowDefinition;
use event_schemas::{ApiKeyEvent, Category, WorkflowEvent, WorkspaceEvent};
use eventstore::{EventStore, PgEventStore, StreamRead};
use sqlx::PgPool;
use uuid::Uuid;

type MemberRow = (Uuid, Uuid, String, Option<String>, String);
type KeyRow = (Uuid, String, String, String, Option<Uuid>, bool);
type WorkflowRow =
    (Uuid, String, Option<String>, Vec<String>, String, serde_json::Value, i64, Option<i64>, serde_json::Value);

pub async fn assert_read_models_match_store(pool: &PgPool) {
    let store = PgEventStore::new(pool.clone());
    let streams = store.list_streams(None, 100_000).await.unwrap();
    let mut total_events = 0i64;
    let mut members = BTreeSet::new();
    let mut teams = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut workflows = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for info in &streams {
        let events = store.read_stream(&info.stream_id, StreamRead::all()).await.unwrap();
        total_events += events.len() as i64;
        versions.insert(info.stream_id.to_string(), info.version);
        let ws = info.workspace_id;
        match info.stream_id.category() {
            Category::Workspace => {
                let decoded: Vec<_> = events.iter().map(|e| WorkspaceEvent::from_recorded(e).unwrap()).collect();
                let state: Workspace = fold(&decoded);
                for (user, member) in &state.members {
                    members.insert((
                        ws,
                        *user,
                        member.email.clone(),
                        member.name.clone(),
                        member.role.as_str().to_owned(),
                    ));
                }
                for (team, t) in &state.teams {
                    teams.insert((ws, *team, t.name.clone(), t.members.clone()));
                }
            }
            Category::ApiKey => {
                let decoded: Vec<_> = events.iter().map(|e| ApiKeyEvent::from_recorded(e).unwrap()).collect();
                let state: ApiKey = fold(&decoded);
                let role = state.role.unwrap().as_str().to_owned();
                keys.insert((state.id.unwrap(), state.name, role, state.prefix, state.user_id, state.revoked));
            }
            Category::Workflow => {
                let decoded: Vec<_> = events.iter().map(|e| WorkflowEvent::from_recorded(e).unwrap()).collect();
                let state: Workflow = fold(&decoded);
                workflows.insert(info.stream_id.id(), state);
            }
        }
    }

    let rows: Vec<MemberRow> =
        sqlx::query_as("SELECT workspace_id, user_id, email, name, role FROM read_model.members")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), members, "members");

    let team_rows: Vec<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT workspace_id, team_id, name FROM read_model.teams").fetch_all(pool).await.unwrap();
    let team_members: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT team_id, user_id FROM read_model.team_members").fetch_all(pool).await.unwrap();
    let actual_teams: BTreeSet<_> = team_rows
        .into_iter()
        .map(|(ws, team, name)| {
            let users = team_members.iter().filter(|(t, _)| *t == team).map(|(_, u)| *u).collect();
            (ws, team, name, users)
        })
        .collect();
    assert_eq!(actual_teams, teams, "teams");

    let rows: Vec<KeyRow> =
        sqlx::query_as("SELECT key_id, name, role, prefix, user_id, revoked_at IS NOT NULL FROM read_model.api_keys")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), keys, "api keys");

    let rows: Vec<WorkflowRow> = sqlx::query_as(
        "SELECT workflow_id, name, description, tags, status, definition, version, published_version, environments
         FROM read_model.workflows",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), workflows.len(), "one workflow row per workflow stream");
    for (id, name, description, tags, status, definition, version, published, environments) in rows {
        let state = &workflows[&id];
        assert_eq!((name, description, tags), (state.name.clone(), state.description.clone(), state.tags.clone()));
        assert_eq!(status, state.status.as_str(), "status of {id}");
        assert_eq!(version, state.version);
        assert_eq!(published, state.published_version);
        let definition: WorkflowDefinition = serde_json::from_value(definition).unwrap();
        assert_eq!(&definition, state.definition().unwrap().as_ref(), "definition of {id}");
        let expected: serde_json::Map<String, serde_json::Value> = state
            .environments
            .iter()
            .map(|(env, v)| (serde_json::to_value(env).unwrap().as_str().unwrap().to_owned(), (*v).into()))
            .collect();
        assert_eq!(environments, serde_json::Value::Object(expected), "environments of {id}");
        let (count, max): (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), max(version) FROM read_model.workflow_versions WHERE workflow_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!((count, max), (state.version(), Some(state.version())), "versions of {id}");
    }

    let (audit, activity): (i64, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM read_model.audit_log), (SELECT sum(events)::bigint FROM read_model.activity_daily)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(audit, total_events, "one audit row per event, none twice");
    assert_eq!(activity, Some(total_events), "activity counts every event once");
    let guard: Vec<(String, i64)> =
        sqlx::query_as("SELECT stream_id, version FROM read_model.stream_versions").fetch_all(pool).await.unwrap();
    assert_eq!(guard.into_iter().collect::<BTreeMap<_, _>>(), versions, "every stream projected to its last version");
}
