//! Running a command: load the aggregate from its stream, let the domain decide, and append the
//! events with the expected version, in one transaction with the security index and the
//! idempotency record.

use std::time::Instant;

use domain::{Aggregate, ApiKey, Workflow, Workspace};
use event_schemas::{
    Actor, ApiKeyEvent, Category, Event, NewEvent, RecordedEvent, SchemaError, StreamId, WorkflowEvent, WorkspaceEvent,
};
use eventstore::{
    AppendResult, AppendTransaction, EventStore, ExpectedVersion, StoreError, StreamRead, TransactionalEventStore,
};
use uuid::Uuid;

use crate::app::AppState;
use crate::cache::{AggregateCache, Cached};
use crate::error::ApiError;
use crate::extract::{CommandContext, IfMatch};
use crate::response::CommandResponse;
use crate::{idempotency, security_index};

/// An aggregate that lives in a stream of one category.
pub trait StoredAggregate: Aggregate<Event: Into<Event>> {
    const CATEGORY: Category;
    fn decode(event: &RecordedEvent) -> Result<Self::Event, SchemaError>;
    fn cache(state: &AppState) -> &AggregateCache<Self>;
}

impl StoredAggregate for Workspace {
    const CATEGORY: Category = Category::Workspace;
    fn decode(event: &RecordedEvent) -> Result<WorkspaceEvent, SchemaError> {
        WorkspaceEvent::from_recorded(event)
    }
    fn cache(state: &AppState) -> &AggregateCache<Self> {
        &state.caches.workspaces
    }
}

impl StoredAggregate for ApiKey {
    const CATEGORY: Category = Category::ApiKey;
    fn decode(event: &RecordedEvent) -> Result<ApiKeyEvent, SchemaError> {
        ApiKeyEvent::from_recorded(event)
    }
    fn cache(state: &AppState) -> &AggregateCache<Self> {
        &state.caches.api_keys
    }
}

impl StoredAggregate for Workflow {
    const CATEGORY: Category = Category::Workflow;
    fn decode(event: &RecordedEvent) -> Result<WorkflowEvent, SchemaError> {
        WorkflowEvent::from_recorded(event)
    }
    fn cache(state: &AppState) -> &AggregateCache<Self> {
        &state.caches.workflows
    }
}

/// An aggregate's state as of its stream's last event.
pub struct Loaded<A> {
    pub state: A,
    pub stream_id: StreamId,
    pub workspace_id: Uuid,
    /// Global position of the stream's last event (0 for a new stream).
    pub last_position: i64,
    /// The state after the last decision, remembered once its events are appended.
    next: Option<A>,
}

impl<A: StoredAggregate> Loaded<A> {
    pub fn version(&self) -> i64 {
        self.state.version()
    }

    /// 404 unless the stream has events.
    pub fn existing(self) -> Result<Self, ApiError> {
        if self.version() == 0 { Err(ApiError::NotFound) } else { Ok(self) }
    }

    /// 412 when the client sent an `If-Match` that is not the current version.
    pub fn matching(self, if_match: &IfMatch) -> Result<Self, ApiError> {
        match if_match.0 {
            Some(expected) => self.at_version(expected),
            None => Ok(self),
        }
    }

    /// 412 unless the client's `If-Match` version is the current one.
    pub fn at_version(self, expected: i64) -> Result<Self, ApiError> {
        if self.version() == expected {
            Ok(self)
        } else {
            Err(ApiError::PreconditionFailed { current: self.version() })
        }
    }

    /// The events of `command` as one change of this stream.
    pub fn decide(&mut self, command: &A::Command) -> Result<Change, A::Error> {
        self.decide_all(std::slice::from_ref(command))
    }

    /// The events of several commands, each decided on the state the previous ones left.
    pub fn decide_all(&mut self, commands: &[A::Command]) -> Result<Change, A::Error> {
        let mut state = self.state.clone();
        let mut events = Vec::new();
        for command in commands {
            for event in state.decide(command)? {
                state.evolve(&event);
                events.push(event.into());
            }
        }
        self.next = Some(state);
        let expected =
            if self.version() == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(self.version()) };
        Ok(Change { stream_id: self.stream_id, expected, events })
    }

    /// Caches the state the last decision led to, now that its events are stored at `position`.
    fn remember(self, state: &AppState, position: i64) {
        if let Some(next) = self.next {
            let cached = Cached { state: next, workspace_id: self.workspace_id, last_position: position };
            A::cache(state).put(self.stream_id, cached);
        }
    }
}

/// Loads the stream `<category>-<id>` of `workspace_id`: the cached state caught up with the
/// events appended since, or the whole stream. A stream of another workspace is reported as not
/// found, exactly like a stream that does not exist.
pub async fn load<A: StoredAggregate>(state: &AppState, workspace_id: Uuid, id: Uuid) -> Result<Loaded<A>, ApiError> {
    let stream_id = StreamId::new(A::CATEGORY, id);
    let cached = A::cache(state).get(&stream_id);
    let (mut aggregate, mut last_position, from_version) = match cached {
        Some(cached) if cached.workspace_id != workspace_id => return Err(ApiError::NotFound),
        Some(cached) => {
            let from = cached.state.version() + 1;
            (cached.state, cached.last_position, from)
        }
        None => (A::default(), 0, 1),
    };
    let read = StreamRead::between(from_version, None);
    let events = state.store.read_stream(&stream_id, read).await.map_err(ApiError::internal)?;
    if events.first().is_some_and(|e| e.workspace_id != workspace_id) {
        return Err(ApiError::NotFound);
    }
    for recorded in &events {
        aggregate.evolve(&A::decode(recorded).map_err(ApiError::internal)?);
        last_position = recorded.global_position;
    }
    if !events.is_empty() {
        let cached = Cached { state: aggregate.clone(), workspace_id, last_position };
        A::cache(state).put(stream_id, cached);
    }
    Ok(Loaded { state: aggregate, stream_id, workspace_id, last_position, next: None })
}

/// Loads the stream for a command whose client expects `expected_version` (`If-Match`). When
/// the cached state is at exactly that version it is used without reading: if another instance
/// appended meanwhile, the append (expecting that version) is refused and the client gets the
/// 412 its stale `If-Match` deserves.
pub async fn load_expecting<A: StoredAggregate>(
    state: &AppState,
    workspace_id: Uuid,
    id: Uuid,
    expected_version: i64,
) -> Result<Loaded<A>, ApiError> {
    let stream_id = StreamId::new(A::CATEGORY, id);
    match A::cache(state).get(&stream_id) {
        Some(cached) if cached.workspace_id == workspace_id && cached.state.version() == expected_version => {
            Ok(Loaded { state: cached.state, stream_id, workspace_id, last_position: cached.last_position, next: None })
        }
        _ => load(state, workspace_id, id).await,
    }
}

/// A stream that cannot exist yet (its id was just made): nothing to read.
pub fn new_stream<A: StoredAggregate>(workspace_id: Uuid, id: Uuid) -> Loaded<A> {
    let stream_id = StreamId::new(A::CATEGORY, id);
    Loaded { state: A::default(), stream_id, workspace_id, last_position: 0, next: None }
}

/// New events for one stream.
pub struct Change {
    pub stream_id: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<Event>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Who made a change and why: what every appended envelope records.
pub struct Provenance {
    pub workspace_id: Uuid,
    pub actor: Actor,
    pub correlation_id: String,
    pub causation_id: String,
}

impl Provenance {
    pub fn of_request(workspace_id: Uuid, key_id: Uuid, ctx: &CommandContext) -> Self {
        Self {
            workspace_id,
            actor: Actor::api_key(key_id),
            correlation_id: ctx.correlation_id.clone(),
            causation_id: ctx.request_id.clone(),
        }
    }
}

fn new_events(provenance: &Provenance, events: &[Event]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| {
            NewEvent::now(provenance.workspace_id, provenance.actor.clone(), event)
                .with_correlation(Some(provenance.correlation_id.clone()), Some(provenance.causation_id.clone()))
        })
        .collect()
}

/// A version conflict between loading and appending is the client's stale `If-Match`.
fn append_error(error: StoreError) -> ApiError {
    match error {
        StoreError::WrongExpectedVersion { actual, .. } => {
            metrics::counter!("command_conflicts_total", "kind" => "version").increment(1);
            ApiError::PreconditionFailed { current: actual.unwrap_or(0) }
        }
        StoreError::StreamDeleted(_) => ApiError::NotFound,
        other => ApiError::internal(other),
    }
}

/// Appends `changes` atomically, with their security-index effects and, when the request carries
/// an `Idempotency-Key`, the response that `respond` builds from the append results.
pub async fn commit(
    state: &AppState,
    provenance: &Provenance,
    idempotency: Option<&idempotency::IdempotencyClaim>,
    changes: Vec<Change>,
    respond: impl FnOnce(&[AppendResult]) -> CommandResponse,
) -> Result<CommandResponse, ApiError> {
    let started = Instant::now();
    let single = matches!(changes.as_slice(),
        [change] if idempotency.is_none() && !security_index::affected_by(&change.stream_id, &change.events));
    if single {
        // One stream, nothing else to write: a single autocommit statement, one round trip.
        let change = changes.into_iter().next().expect("one change");
        let events = new_events(provenance, &change.events);
        let result = state.store.append_to_stream(&change.stream_id, change.expected, events).await;
        let result = result.map_err(append_error)?;
        metrics::histogram!("command_append_duration_seconds").record(started.elapsed().as_secs_f64());
        return Ok(respond(&[result]));
    }
    let mut respond = Some(respond);
    const ATTEMPTS: usize = 3;
    let mut attempt = 1;
    let outcome = loop {
        match transact(state, provenance, idempotency, &changes, &mut respond).await {
            // Rolled back before its response was built: safe to run again.
            Err(error) if attempt < ATTEMPTS && respond.is_some() && lost_quota_race(&error) => {
                metrics::counter!("command_conflicts_total", "kind" => "quota_race").increment(1);
                attempt += 1;
            }
            outcome => break outcome,
        }
    };
    metrics::histogram!("command_append_duration_seconds").record(started.elapsed().as_secs_f64());
    outcome
}

/// Whether a transaction failed with serialization_failure (40001). Under READ COMMITTED,
/// PostgreSQL itself never raises it; `security.count_workflow` does, when creates raced this
/// one to the workflow quota: run again, the transaction counts exactly.
fn lost_quota_race(error: &ApiError) -> bool {
    let ApiError::Internal(cause) = error else { return false };
    let code = cause.downcast_ref::<sqlx::Error>().and_then(|e| e.as_database_error()).and_then(|db| db.code());
    code.as_deref() == Some("40001")
}

/// One attempt of [`commit`] in a transaction; `respond` is taken once the appends are done.
async fn transact<F: FnOnce(&[AppendResult]) -> CommandResponse>(
    state: &AppState,
    provenance: &Provenance,
    idempotency: Option<&idempotency::IdempotencyClaim>,
    changes: &[Change],
    respond: &mut Option<F>,
) -> Result<CommandResponse, ApiError> {
    let mut tx = state.store.begin().await.map_err(ApiError::internal)?;
    if changes.iter().any(|c| security_index::writes_workspace_row(&c.stream_id, &c.events)) {
        security_index::queue_for_workspace(tx.connection(), provenance.workspace_id).await?;
    }
    let mut results = Vec::with_capacity(changes.len());
    for change in changes.iter().filter(|c| !c.is_empty()) {
        let events = new_events(provenance, &change.events);
        let result = tx.append_to_stream(&change.stream_id, change.expected, events).await.map_err(append_error)?;
        security_index::apply(tx.connection(), provenance.workspace_id, &change.stream_id, &change.events).await?;
        results.push(result);
    }
    let respond = respond.take().expect("a response is built once, by the attempt that commits");
    let response = respond(&results);
    if let Some(claim) = idempotency {
        idempotency::store_response(tx.connection(), claim, &response).await?;
    }
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(response)
}

/// Commits one change of an already loaded aggregate; a change without events (the command asked
/// for what already holds) answers with the current version and appends nothing.
pub async fn run_change<A: StoredAggregate>(
    state: &AppState,
    provenance: &Provenance,
    ctx: &CommandContext,
    loaded: Loaded<A>,
    change: Change,
    respond: impl FnOnce(i64, i64) -> CommandResponse,
) -> Result<CommandResponse, ApiError> {
    if change.is_empty() {
        return Ok(respond(loaded.version(), loaded.last_position));
    }
    let response = commit(state, provenance, ctx.idempotency.as_ref(), vec![change], |results| {
        respond(results[0].last_version, results[0].last_position)
    })
    .await?;
    loaded.remember(state, response.position);
    Ok(response)
}
