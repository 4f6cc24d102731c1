//! What each event does to the read models. Workflows are folded in memory and written once per
//! batch; the workspace and API-key tables (far fewer events) change event by event, in order; the
//! audit log and the daily activity counts are collected and written once per batch.
//!
//! Table names are unqualified: the projector's transactions set `search_path` to `read_model`,
//! and a rebuild's to its shadow schema, so the same statements build both.
//!
//! - `entities`: the workspace and API-key tables, event by event;
//! - `workflows`: the workflow and version tables, set-wise;
//! - `memory`: the workflow rows a projector committed, for its next batches;
//! - `pending`: what a batch writes at its end: workflows, audit log, activity counts, positions;
//! - `summary`: the readable sentence of each audit row.

mod entities;
mod memory;
mod pending;
mod statement;
mod summary;
mod workflows;

use event_schemas::Event;
use sqlx::PgConnection;

use crate::cloudevents::ProjectedEvent;

pub use memory::{WorkflowMemory, WrittenWorkflows};
pub use pending::{GuardMoved, GuardRow, Offsets, Pending};

/// The projections, each a group of read-model tables with its own position.
pub const PROJECTIONS: [&str; 5] = ["workspaces", "api_keys", "workflows", "audit_log", "activity"];

/// The tables of a projection.
pub fn tables_of(projection: &str) -> &'static [&'static str] {
    match projection {
        "workspaces" => &["workspaces", "members", "teams", "team_members"],
        "api_keys" => &["api_keys"],
        "workflows" => &["workflows", "workflow_versions"],
        "audit_log" => &["audit_log"],
        "activity" => &["activity_daily"],
        _ => &[],
    }
}

/// Which projections a transaction writes: all of them (the projector) or some (a rebuild).
#[derive(Debug, Clone, Copy)]
pub struct Selection(u8);

impl Selection {
    pub const ALL: Selection = Selection(0b11111);

    pub fn of(names: &[&str]) -> Selection {
        Selection(names.iter().filter_map(|n| PROJECTIONS.iter().position(|p| p == n)).fold(0, |bits, i| bits | 1 << i))
    }

    pub fn contains(self, projection: &str) -> bool {
        PROJECTIONS.iter().position(|p| *p == projection).is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// Applies a batch of decoded events, each stream's in version order, to the selected read
/// models; what [`Pending`] collects is written by its `flush`.
pub async fn apply(
    conn: &mut PgConnection,
    events: &[(ProjectedEvent, Event)],
    pending: &mut Pending,
    selection: Selection,
) -> Result<(), sqlx::Error> {
    if selection.contains("workflows") {
        let workflow_events = events.iter().filter(|(_, d)| matches!(d, Event::Workflow(_))).map(|(e, _)| e);
        pending.workflows.load(conn, workflow_events).await?;
    }
    for (event, decoded) in events {
        apply_one(conn, event, decoded, pending, selection).await?;
    }
    Ok(())
}

async fn apply_one(
    conn: &mut PgConnection,
    event: &ProjectedEvent,
    decoded: &Event,
    pending: &mut Pending,
    selection: Selection,
) -> Result<(), sqlx::Error> {
    let projection = match decoded {
        Event::Workspace(_) => "workspaces",
        Event::ApiKey(_) => "api_keys",
        Event::Workflow(_) => "workflows",
    };
    if selection.contains(projection) {
        match decoded {
            Event::Workspace(e) => entities::workspace(conn, event, e).await?,
            Event::ApiKey(e) => entities::api_key(conn, event, e).await?,
            Event::Workflow(e) => pending.workflows.apply(event, e),
        }
        pending.reached(projection, event.global_position);
    }
    if selection.contains("audit_log") {
        pending.reached("audit_log", event.global_position);
        pending.push_audit(pending::AuditRow::of(event, summary::summary(decoded)));
    }
    if selection.contains("activity") {
        pending.reached("activity", event.global_position);
        pending.count_activity(event);
    }
    Ok(())
}
