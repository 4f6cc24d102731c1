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
use crate::error::ApiError;
use crate::extract::CommandContext;
use crate::response::CommandResponse;
use crate::{idempotency, security_index};

/// An aggregate that lives in a stream of one category.
pub trait StoredAggregate: Aggregate<Event: Into<Event>> {
    const CATEGORY: Category;
    fn decode(event: &RecordedEvent) -> Result<Self::Event, SchemaError>;
}

impl StoredAggregate for Workspace {
    const CATEGORY: Category = Category::Workspace;
    fn decode(event: &RecordedEvent) -> Result<WorkspaceEvent, SchemaError> {
        WorkspaceEvent::from_recorded(event)
    }
}

impl StoredAggregate for ApiKey {
    const CATEGORY: Category = Category::ApiKey;
    fn decode(event: &RecordedEvent) -> Result<ApiKeyEvent, SchemaError> {
        ApiKeyEvent::from_recorded(event)
    }
}

impl StoredAggregate for Workflow {
    const CATEGORY: Category = Category::Workflow;
    fn decode(event: &RecordedEvent) -> Result<WorkflowEvent, SchemaError> {
        WorkflowEvent::from_recorded(event)
    }
}

/// An aggregate's state as of its stream's last event.
pub struct Loaded<A> {
    pub state: A,
    pub stream_id: StreamId,
    /// Global position of the stream's last event (0 for a new stream).
    pub last_position: i64,
}

impl<A: StoredAggregate> Loaded<A> {
    pub fn version(&self) -> i64 {
        self.state.version()
    }

    /// 404 unless the stream has events.
    pub fn existing(self) -> Result<Self, ApiError> {
        if self.version() == 0 {
            Err(ApiError::NotFound)
        } else {
            Ok(self)
        }
    }

    /// 412 unless the client's `If-Match` version is the current one.
    pub fn at_version(self, expected: i64) -> Result<Self, ApiError> {
        if self.version() == expected {
            Ok(self)
        } else {
            Err(ApiError::PreconditionFailed {
                current: self.version(),
            })
        }
    }

    /// The events of `command` as one change of this stream.
    pub fn decide(&self, command: &A::Command) -> Result<Change, A::Error> {
        self.decide_all(std::slice::from_ref(command))
    }

    /// The events of several commands, each decided on the state the previous ones left.
    pub fn decide_all(&self, commands: &[A::Command]) -> Result<Change, A::Error> {
        let mut state = self.state.clone();
        let mut events = Vec::new();
        for command in commands {
            for event in state.decide(command)? {
                state.evolve(&event);
                events.push(event.into());
            }
        }
        let expected = if self.version() == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(self.version())
        };
        Ok(Change {
            stream_id: self.stream_id,
            expected,
            events,
        })
    }
}

/// Loads the stream `<category>-<id>` of `workspace_id`. A stream of another workspace is
/// reported as not found, exactly like a stream that does not exist.
pub async fn load<A: StoredAggregate>(state: &AppState, workspace_id: Uuid, id: Uuid) -> Result<Loaded<A>, ApiError> {
    let stream_id = StreamId::new(A::CATEGORY, id);
    let events = state
        .store
        .read_stream(&stream_id, StreamRead::all())
        .await
        .map_err(ApiError::internal)?;
    if events.first().is_some_and(|e| e.workspace_id != workspace_id) {
        return Err(ApiError::NotFound);
    }
    let mut aggregate = A::default();
    for recorded in &events {
        aggregate.evolve(&A::decode(recorded).map_err(ApiError::internal)?);
    }
    let last_position = events.last().map_or(0, |e| e.global_position);
    Ok(Loaded {
        state: aggregate,
        stream_id,
        last_position,
    })
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
    let mut tx = state.store.begin().await.map_err(ApiError::internal)?;
    let mut results = Vec::with_capacity(changes.len());
    for change in changes.into_iter().filter(|c| !c.is_empty()) {
        let new_events: Vec<NewEvent> = change
            .events
            .iter()
            .map(|event| {
                NewEvent::now(provenance.workspace_id, provenance.actor.clone(), event).with_correlation(
                    Some(provenance.correlation_id.clone()),
                    Some(provenance.causation_id.clone()),
                )
            })
            .collect();
        let result = tx
            .append_to_stream(&change.stream_id, change.expected, new_events)
            .await
            .map_err(|e| match e {
                StoreError::WrongExpectedVersion { actual, .. } => {
                    metrics::counter!("command_conflicts_total", "kind" => "version").increment(1);
                    ApiError::PreconditionFailed {
                        current: actual.unwrap_or(0),
                    }
                }
                StoreError::StreamDeleted(_) => ApiError::NotFound,
                other => ApiError::internal(other),
            })?;
        security_index::apply(
            tx.connection(),
            provenance.workspace_id,
            &change.stream_id,
            &change.events,
        )
        .await?;
        results.push(result);
    }
    let response = respond(&results);
    if let Some(claim) = idempotency {
        idempotency::store_response(tx.connection(), claim, &response).await?;
    }
    tx.commit().await.map_err(ApiError::internal)?;
    metrics::histogram!("command_append_duration_seconds").record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Commits one change of an already loaded aggregate; a change without events (the command asked
/// for what already holds) answers with the current version and appends nothing.
pub async fn run_change<A: StoredAggregate>(
    state: &AppState,
    provenance: &Provenance,
    ctx: &CommandContext,
    loaded: &Loaded<A>,
    change: Change,
    respond: impl FnOnce(i64, i64) -> CommandResponse,
) -> Result<CommandResponse, ApiError> {
    if change.is_empty() {
        return Ok(respond(loaded.version(), loaded.last_position));
    }
    commit(state, provenance, ctx.idempotency.as_ref(), vec![change], |results| {
        respond(results[0].last_version, results[0].last_position)
    })
    .await
}
