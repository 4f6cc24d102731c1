//! Workflows: the `workflows` connection with its filters and ordering, `workflow(id)`, and each
//! workflow's `team`, `versions`, `at` and `diff`.

use std::sync::Arc;

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Lookahead, Object, ScalarType, SimpleObject, Value};
use chrono::{DateTime, Utc};
use domain::Permission;
use event_schemas::{Category, StreamId};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row as _};
use uuid::Uuid;

use super::history::{Promotion, WorkflowAtVersion, WorkflowDiff, WorkflowVersion};
use super::loaders::{Loaders, TeamKey, VersionsPage};
use super::page::{PageArgs, Reading, connection};
use super::stored_fields::{Stored, StoredFields};
use super::workflow_cursor::{SortKey, WorkflowCursor};
use super::workspace::Team;
use crate::auth::caller_with;
use crate::db;
use crate::error::{QueryError, QueryResult};
use crate::snapshot_cache::SnapshotCache;
use crate::time_travel::TimeTravel;

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Workflow {
    #[graphql(name = "id")]
    pub workflow_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    #[graphql(skip)]
    pub team_id: Option<Uuid>,
    /// `draft`, `published` or `archived`.
    pub status: String,
    pub version: i64,
    pub published_version: Option<i64>,
    #[graphql(skip)]
    pub environments: sqlx::types::Json<std::collections::BTreeMap<event_schemas::types::Environment, i64>>,
    pub definition: serde_json::Value,
    /// The actor id of whoever created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of a workflow for a query that selects the fields of `nodes` (a connection has
/// two ways to its workflows, `edges { node }` and `nodes`). The columns that cost the
/// most to send and decode (the definition can be large, the others are JSON, arrays and text)
/// are read only when the query asks for their field; an empty value of the same type stands in
/// otherwise, and is never served. The order is the one `Workflow`'s `FromRow` reads them in.
fn workflow_columns(nodes: &[Lookahead<'_>]) -> String {
    let column = |field: &str, column: &'static str, stand_in: &'static str| {
        if nodes.iter().any(|node| node.field(field).exists()) { column } else { stand_in }
    };
    format!(
        "workflow_id, name, {}, {}, team_id, status, version, published_version, {}, {}, created_by, created_at, \
         updated_at",
        column("description", "description", "NULL::text AS description"),
        column("tags", "tags", "'{}'::text[] AS tags"),
        column("environments", "environments", "'{}'::jsonb AS environments"),
        column("definition", "definition", "'null'::jsonb AS definition"),
    )
}

/// By position, in the order [`workflow_columns`] lists them: a list page decodes 13 columns
/// of up to 101 rows, and finding each by name (a hash of the name per column and row) was a
/// fortieth of the list benchmark's CPU.
impl<'r> sqlx::FromRow<'r, PgRow> for Workflow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            workflow_id: row.try_get(0)?,
            name: row.try_get(1)?,
            description: row.try_get(2)?,
            tags: row.try_get(3)?,
            team_id: row.try_get(4)?,
            status: row.try_get(5)?,
            version: row.try_get(6)?,
            published_version: row.try_get(7)?,
            environments: row.try_get(8)?,
            definition: row.try_get(9)?,
            created_by: row.try_get(10)?,
            created_at: row.try_get(11)?,
            updated_at: row.try_get(12)?,
        })
    }
}

/// `Workflow`'s stored fields, for list pages ([`Stored`]). `tests/graphql/queries.rs` asks for
/// every one of them both ways and compares the answers byte for byte.
#[derive(Clone, Copy)]
pub enum WorkflowField {
    Id,
    Name,
    Description,
    Tags,
    Status,
    Version,
    PublishedVersion,
    Definition,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

impl StoredFields for Workflow {
    type Field = WorkflowField;

    fn stored(name: &str) -> Option<WorkflowField> {
        Some(match name {
            "id" => WorkflowField::Id,
            "name" => WorkflowField::Name,
            "description" => WorkflowField::Description,
            "tags" => WorkflowField::Tags,
            "status" => WorkflowField::Status,
            "version" => WorkflowField::Version,
            "publishedVersion" => WorkflowField::PublishedVersion,
            "definition" => WorkflowField::Definition,
            "createdBy" => WorkflowField::CreatedBy,
            "createdAt" => WorkflowField::CreatedAt,
            "updatedAt" => WorkflowField::UpdatedAt,
            _ => return None,
        })
    }

    fn value(&self, field: WorkflowField) -> Value {
        match field {
            WorkflowField::Id => self.workflow_id.to_value(),
            WorkflowField::Name => self.name.to_value(),
            WorkflowField::Description => self.description.as_ref().map_or(Value::Null, ScalarType::to_value),
            WorkflowField::Tags => Value::List(self.tags.iter().map(ScalarType::to_value).collect()),
            WorkflowField::Status => self.status.to_value(),
            WorkflowField::Version => self.version.to_value(),
            WorkflowField::PublishedVersion => {
                self.published_version.as_ref().map_or(Value::Null, ScalarType::to_value)
            }
            WorkflowField::Definition => async_graphql::to_value(&self.definition).unwrap_or_default(),
            WorkflowField::CreatedBy => self.created_by.to_value(),
            WorkflowField::CreatedAt => self.created_at.to_value(),
            WorkflowField::UpdatedAt => self.updated_at.to_value(),
        }
    }
}

/// The time travels of `at` and `diff` are boxed. async-graphql boxes a future for every field of
/// every workflow it resolves, each as large as `Workflow`'s largest resolver: with the folds held
/// inline that was 3.8 KB (1.3 KB boxed) allocated and copied for each of the hundred fields of a
/// list page, which asks for neither. The list's instructions fell by 3.5 % (docs/benchmarks.md).
#[ComplexObject]
impl Workflow {
    /// The environments it is promoted to, with the version each runs.
    async fn environments(&self) -> Vec<Promotion> {
        super::history::promotions(&self.environments.0)
    }

    async fn team(&self, ctx: &Context<'_>) -> QueryResult<Option<Team>> {
        let Some(team_id) = self.team_id else { return Ok(None) };
        Ok(ctx.data::<Loaders>()?.read_model.load_one(TeamKey(team_id)).await?)
    }

    /// Every version, oldest first (`last: n` for the newest). Cursors are stable: a version's
    /// cursor never changes.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(1) as usize * child_complexity")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> QueryResult<Connection<OpaqueCursor<i64>, WorkflowVersion>> {
        let args = PageArgs::new(after, before, first, last);
        let reading = args.reading()?;
        let (after, before): (Option<i64>, Option<i64>) = args.cursors()?;
        let page = VersionsPage {
            workflow_id: self.workflow_id,
            after: after.unwrap_or(0),
            before: before.unwrap_or(i64::MAX),
            limit: reading.size() as i64 + 1,
            backwards: matches!(reading, Reading::Backwards(_)),
        };
        let rows = ctx.data::<Loaders>()?.read_model.load_one(page).await?.unwrap_or_default();
        Ok(connection(rows, reading, after.is_some(), before.is_some(), |v| OpaqueCursor(v.version)))
    }

    /// The workflow as it was right after `version`, or at the moment `asOf`: rebuilt from the
    /// event store, whatever the read models say. Pass exactly one of the two.
    async fn at(
        &self,
        ctx: &Context<'_>,
        version: Option<i64>,
        as_of: Option<DateTime<Utc>>,
    ) -> QueryResult<Option<WorkflowAtVersion>> {
        let travel = TimeTravel::new(db::of(ctx)?, ctx.data::<Arc<SnapshotCache>>()?);
        let stream = self.stream();
        let version = match (version, as_of) {
            (Some(version), None) => version,
            (None, Some(at)) => match Box::pin(travel.version_as_of(&stream, at)).await? {
                Some(version) if version > 0 => version,
                _ => return Ok(None),
            },
            _ => return Err(QueryError::BadInput("pass exactly one of `version` and `asOf`".into()).into()),
        };
        Ok(Some(Box::pin(travel.workflow_at(&self.stream(), version)).await?.into()))
    }

    /// What changed from version `from` to version `to` (either order).
    async fn diff(&self, ctx: &Context<'_>, from: i64, to: i64) -> QueryResult<WorkflowDiff> {
        let travel = TimeTravel::new(db::of(ctx)?, ctx.data::<Arc<SnapshotCache>>()?);
        let before = Box::pin(travel.workflow_at(&self.stream(), from)).await?;
        let after = Box::pin(travel.workflow_at(&self.stream(), to)).await?;
        Ok(crate::diff::diff(&before, &after).into())
    }
}

impl Workflow {
    fn stream(&self) -> StreamId {
        StreamId::new(Category::Workflow, self.workflow_id)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::WorkflowStatus")]
pub enum WorkflowStatus {
    Draft,
    Published,
    Archived,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "event_schemas::types::Environment")]
pub enum DeployEnvironment {
    Dev,
    Staging,
    Prod,
}

/// Every condition given must hold.
#[derive(InputObject, Default)]
pub struct WorkflowFilter {
    /// Any of these statuses.
    pub status: Option<Vec<WorkflowStatus>>,
    /// Promoted to this environment.
    pub environment: Option<DeployEnvironment>,
    /// Carries every one of these tags.
    pub tags: Option<Vec<String>>,
    /// Full-text search over name, description and tags (web-search syntax: `"exact phrase"`,
    /// `-excluded`, `or`).
    pub search: Option<String>,
    /// Updated at or after this moment.
    pub updated_after: Option<DateTime<Utc>>,
    /// Updated before this moment.
    pub updated_before: Option<DateTime<Utc>>,
    /// Created by this actor id.
    pub created_by: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default, Debug)]
pub enum WorkflowOrderField {
    Name,
    #[default]
    UpdatedAt,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default, Debug)]
pub enum OrderDirection {
    Asc,
    #[default]
    Desc,
}

#[derive(InputObject, Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkflowOrder {
    #[graphql(default)]
    pub field: WorkflowOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(Default)]
pub struct WorkflowQuery;

#[Object]
impl WorkflowQuery {
    /// Workflows of the caller's workspace, filtered and ordered (newest change first by default).
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(1) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn workflows(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
        filter: Option<WorkflowFilter>,
        order_by: Option<WorkflowOrder>,
    ) -> QueryResult<Connection<WorkflowCursor, Stored<Workflow>>> {
        let caller = caller_with(ctx, Permission::Read)?;
        let order = order_by.unwrap_or_default();
        let args = PageArgs::new(after, before, first, last);
        let reading = args.reading()?;
        let (after, before): (Option<WorkflowCursor>, Option<WorkflowCursor>) = args.cursors_of()?;
        for cursor in after.iter().chain(&before) {
            if cursor.order() != order {
                return Err(QueryError::BadInput("this cursor belongs to another ordering".into()).into());
            }
        }
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} FROM read_model.workflows WHERE workspace_id = ",
            workflow_columns(&[ctx.look_ahead().field("edges").field("node"), ctx.look_ahead().field("nodes")])
        ));
        sql.push_bind(caller.workspace_id);
        push_filter(&mut sql, filter.unwrap_or_default());
        // Names compare in byte order (`COLLATE "C"`) in the cursor bounds and the ordering alike.
        let column = match order.field {
            WorkflowOrderField::Name => "name COLLATE \"C\"",
            WorkflowOrderField::UpdatedAt => "updated_at",
        };
        let ascending = order.direction == OrderDirection::Asc;
        for (cursor, is_after) in after.iter().map(|c| (c, true)).chain(before.iter().map(|c| (c, false))) {
            let greater = ascending == is_after;
            sql.push(format!(" AND ({column}, workflow_id) {} (", if greater { ">" } else { "<" }));
            match &cursor.key {
                SortKey::Name(name) => sql.push_bind(name.clone()),
                SortKey::UpdatedAt(at) => sql.push_bind(*at),
            };
            sql.push(", ").push_bind(cursor.id).push(")");
        }
        let read_ascending = ascending != matches!(reading, Reading::Backwards(_));
        let direction = if read_ascending { "ASC" } else { "DESC" };
        sql.push(format!(" ORDER BY {column} {direction}, workflow_id {direction} LIMIT "));
        sql.push_bind(reading.size() as i64 + 1);
        let rows: Vec<Workflow> =
            sql.build_query_as().fetch_all(&mut *db::connection(ctx).await?).await.map_err(QueryError::from)?;
        let rows = rows.into_iter().map(Stored).collect();
        Ok(connection(rows, reading, after.is_some(), before.is_some(), |Stored(w)| WorkflowCursor {
            direction: order.direction,
            key: match order.field {
                WorkflowOrderField::Name => SortKey::Name(w.name.clone()),
                WorkflowOrderField::UpdatedAt => SortKey::UpdatedAt(w.updated_at),
            },
            id: w.workflow_id,
        }))
    }

    /// One workflow of the caller's workspace, or null.
    async fn workflow(&self, ctx: &Context<'_>, id: Uuid) -> QueryResult<Option<Stored<Workflow>>> {
        let caller = caller_with(ctx, Permission::Read)?;
        let row = sqlx::query_as(&format!(
            "SELECT {} FROM read_model.workflows WHERE workspace_id = $1 AND workflow_id = $2",
            workflow_columns(&[ctx.look_ahead()])
        ))
        .bind(caller.workspace_id)
        .bind(id)
        .fetch_optional(&mut *db::connection(ctx).await?)
        .await
        .map_err(QueryError::from)?;
        Ok(row.map(Stored))
    }
}

fn push_filter(sql: &mut QueryBuilder<'_, Postgres>, filter: WorkflowFilter) {
    if let Some(statuses) = filter.status {
        let statuses: Vec<&str> = statuses.into_iter().map(|s| domain::WorkflowStatus::from(s).as_str()).collect();
        sql.push(" AND status = ANY(").push_bind(statuses).push(")");
    }
    if let Some(environment) = filter.environment {
        let key = event_schemas::types::Environment::from(environment).as_str();
        sql.push(" AND environments ? ").push_bind(key);
    }
    if let Some(tags) = filter.tags {
        sql.push(" AND tags @> ").push_bind(tags);
    }
    if let Some(search) = filter.search {
        sql.push(" AND search @@ websearch_to_tsquery('simple', ").push_bind(search).push(")");
    }
    if let Some(at) = filter.updated_after {
        sql.push(" AND updated_at >= ").push_bind(at);
    }
    if let Some(at) = filter.updated_before {
        sql.push(" AND updated_at < ").push_bind(at);
    }
    if let Some(actor) = filter.created_by {
        sql.push(" AND created_by = ").push_bind(actor);
    }
}
