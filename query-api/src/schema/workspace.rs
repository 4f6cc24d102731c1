//! The workspace itself and its people: `workspace`, `members`, `teams`, `apiKeys`.

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use domain::Permission;
use uuid::Uuid;

use super::loaders::{Loaders, MemberKey, TeamMembersKey};
use super::page::{PageArgs, in_memory};
use crate::auth::caller_with;
use crate::db;
use crate::error::{QueryError, QueryResult};

#[derive(SimpleObject, sqlx::FromRow)]
#[graphql(complex)]
pub struct Workspace {
    #[graphql(name = "id")]
    pub workspace_id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan: String,
    pub settings: serde_json::Value,
    /// The version of the workspace's own stream.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(SimpleObject, sqlx::FromRow)]
pub struct DailyActivity {
    pub day: NaiveDate,
    /// Events recorded in the workspace that day (UTC).
    pub events: i64,
}

#[ComplexObject]
impl Workspace {
    /// Events per day, oldest first, for at most the last 366 days.
    async fn activity(&self, ctx: &Context<'_>, days: Option<i32>) -> QueryResult<Vec<DailyActivity>> {
        let days = days.unwrap_or(30);
        if !(1..=366).contains(&days) {
            return Err(QueryError::BadInput(format!("`days` must be between 1 and 366, got {days}")).into());
        }
        let rows = sqlx::query_as(
            "SELECT day, events FROM read_model.activity_daily
             WHERE workspace_id = $1 AND day > (now() AT TIME ZONE 'UTC')::date - $2::int ORDER BY day",
        )
        .bind(self.workspace_id)
        .bind(days)
        .fetch_all(&mut *db::connection(ctx).await?)
        .await
        .map_err(QueryError::from)?;
        Ok(rows)
    }
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
pub struct Member {
    #[graphql(name = "id")]
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub added_at: DateTime<Utc>,
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Team {
    #[graphql(name = "id")]
    pub team_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl Team {
    async fn members(&self, ctx: &Context<'_>) -> QueryResult<Vec<Member>> {
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.read_model.load_one(TeamMembersKey(self.team_id)).await?.unwrap_or_default())
    }
}

/// An API key as the read model knows it: never the key, never its hash.
#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct ApiKey {
    #[graphql(name = "id")]
    pub key_id: Uuid,
    pub name: String,
    pub role: String,
    /// The public part of the key (`ffk_<prefix>_…`), to recognise it.
    pub prefix: String,
    #[graphql(skip)]
    pub user_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl ApiKey {
    /// The member the key acts for, if any.
    async fn member(&self, ctx: &Context<'_>) -> QueryResult<Option<Member>> {
        let Some(user_id) = self.user_id else { return Ok(None) };
        Ok(ctx.data::<Loaders>()?.read_model.load_one(MemberKey(user_id)).await?)
    }
}

#[derive(Default)]
pub struct WorkspaceQuery;

#[Object]
impl WorkspaceQuery {
    /// The caller's workspace.
    async fn workspace(&self, ctx: &Context<'_>) -> QueryResult<Option<Workspace>> {
        let caller = caller_with(ctx, Permission::Read)?;
        let row = sqlx::query_as(
            "SELECT workspace_id, name, slug, plan, settings, version, created_at, updated_at
             FROM read_model.workspaces WHERE workspace_id = $1",
        )
        .bind(caller.workspace_id)
        .fetch_optional(&mut *db::connection(ctx).await?)
        .await
        .map_err(QueryError::from)?;
        Ok(row)
    }

    /// Members of the caller's workspace, by email.
    async fn members(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> QueryResult<Connection<OpaqueCursor<String>, Member>> {
        let sql = "SELECT user_id, email, name, role, added_at FROM read_model.members WHERE workspace_id = $1";
        let rows: Vec<Member> = workspace_rows(ctx, Permission::Read, sql).await?;
        in_memory(rows, &PageArgs::new(after, before, first, last), |m| format!("{}\u{0}{}", m.email, m.user_id))
    }

    /// Teams of the caller's workspace, by name.
    async fn teams(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> QueryResult<Connection<OpaqueCursor<String>, Team>> {
        let sql = "SELECT team_id, name, created_at FROM read_model.teams WHERE workspace_id = $1";
        let rows: Vec<Team> = workspace_rows(ctx, Permission::Read, sql).await?;
        in_memory(rows, &PageArgs::new(after, before, first, last), |t| format!("{}\u{0}{}", t.name, t.team_id))
    }

    /// API keys of the caller's workspace, oldest first. Needs `apikeys.manage`.
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> QueryResult<Connection<OpaqueCursor<String>, ApiKey>> {
        let sql = "SELECT key_id, name, role, prefix, user_id, expires_at, revoked_at, rotated_at, created_at
                   FROM read_model.api_keys WHERE workspace_id = $1";
        let rows: Vec<ApiKey> = workspace_rows(ctx, Permission::ApiKeysManage, sql).await?;
        let key = |k: &ApiKey| format!("{}\u{0}{}", k.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"), k.key_id);
        in_memory(rows, &PageArgs::new(after, before, first, last), key)
    }
}

/// Every row `sql` selects for the caller's workspace (bound as `$1`), after checking `permission`.
/// For the short lists that [`in_memory`] pages, and orders itself.
async fn workspace_rows<T>(ctx: &Context<'_>, permission: Permission, sql: &'static str) -> QueryResult<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let caller = caller_with(ctx, permission)?;
    let rows = sqlx::query_as(sql)
        .bind(caller.workspace_id)
        .fetch_all(&mut *db::connection(ctx).await?)
        .await
        .map_err(QueryError::from)?;
    Ok(rows)
}
