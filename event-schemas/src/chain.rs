//! The per-stream hash chain (ARCHITECTURE.md decision 4).
//!
//! `hash = hex(SHA-256(prev_hash ‖ JCS(envelope)))`, where `prev_hash` is the previous event's hash
//! as its 64 lowercase hex characters ([`GENESIS_HASH`] for version 1) and `JCS(envelope)` is the
//! RFC 8785 canonical JSON of the envelope without `global_position`, `prev_hash` and `hash`.
//! Everything hashed is recomputable from what the store gives back: PostgreSQL's `jsonb` reorders
//! keys and normalizes numbers, and canonicalization undoes both. `docs/audit.md` shows an
//! auditor's own script doing the same computation.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::envelope::{Actor, NewEvent, RecordedEvent, StreamId, micros};

/// The `prev_hash` of the first event of every stream.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hashed fields of an envelope, by reference.
#[derive(Serialize)]
struct HashedEnvelope<'a> {
    stream_id: &'a StreamId,
    version: i64,
    event_id: &'a Uuid,
    event_type: &'a str,
    schema_version: u32,
    workspace_id: &'a Uuid,
    #[serde(with = "micros")]
    occurred_at: &'a DateTime<Utc>,
    actor: &'a Actor,
    correlation_id: &'a Option<String>,
    causation_id: &'a Option<String>,
    payload: &'a serde_json::Value,
    metadata: &'a serde_json::Value,
}

impl<'a> HashedEnvelope<'a> {
    fn of_new(stream_id: &'a StreamId, version: i64, event: &'a NewEvent) -> Self {
        Self {
            stream_id,
            version,
            event_id: &event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            workspace_id: &event.workspace_id,
            occurred_at: &event.occurred_at,
            actor: &event.actor,
            correlation_id: &event.correlation_id,
            causation_id: &event.causation_id,
            payload: &event.payload,
            metadata: &event.metadata,
        }
    }

    fn of_recorded(event: &'a RecordedEvent) -> Self {
        Self {
            stream_id: &event.stream_id,
            version: event.version,
            event_id: &event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            workspace_id: &event.workspace_id,
            occurred_at: &event.occurred_at,
            actor: &event.actor,
            correlation_id: &event.correlation_id,
            causation_id: &event.causation_id,
            payload: &event.payload,
            metadata: &event.metadata,
        }
    }

    fn canonical(&self) -> Vec<u8> {
        // Serializing plain JSON values and derived structs cannot fail.
        serde_json_canonicalizer::to_vec(self).expect("envelope is serializable")
    }

    fn chain_hash(&self, prev_hash: &str) -> String {
        chain_hash(prev_hash, &self.canonical())
    }
}

/// `hex(SHA-256(prev_hash ‖ canonical))`.
pub fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical);
    hex::encode(hasher.finalize())
}

/// The RFC 8785 canonical bytes of `event`'s envelope when it is appended to `stream_id` at
/// `version`: what the hash covers besides `prev_hash`. A store may hash them itself.
pub fn canonical_envelope(stream_id: &StreamId, version: i64, event: &NewEvent) -> Vec<u8> {
    HashedEnvelope::of_new(stream_id, version, event).canonical()
}

/// The hash of `event` when it is appended to `stream_id` at `version` after `prev_hash`.
pub fn hash_new_event(stream_id: &StreamId, version: i64, prev_hash: &str, event: &NewEvent) -> String {
    HashedEnvelope::of_new(stream_id, version, event).chain_hash(prev_hash)
}

/// The hash a stored event should carry, recomputed from its own fields and its `prev_hash`.
pub fn recompute_hash(event: &RecordedEvent) -> String {
    HashedEnvelope::of_recorded(event).chain_hash(&event.prev_hash)
}

/// Why a link of a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The stored hash is not the hash of the stored content: the event was altered.
    HashMismatch { expected: String, stored: String },
    /// The event does not point at its predecessor's hash: an event was altered, removed or inserted.
    PrevHashMismatch { expected: String, stored: String },
    /// Versions are not 1, 2, 3, …: an event was removed or inserted.
    VersionGap { expected: i64, found: i64 },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::HashMismatch { expected, stored } => {
                write!(f, "content does not match its hash (stored {stored}, recomputed {expected})")
            }
            ChainBreak::PrevHashMismatch { expected, stored } => {
                write!(f, "prev_hash {stored} does not match the previous event's hash {expected}")
            }
            ChainBreak::VersionGap { expected, found } => {
                write!(f, "expected version {expected}, found {found}")
            }
        }
    }
}

/// Walks one stream's events in version order and checks every link.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_version: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { next_version: 1, prev_hash: GENESIS_HASH.to_owned() }
    }
}

impl ChainVerifier {
    /// Checks the next event; on success the verifier moves past it.
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), ChainBreak> {
        if event.version != self.next_version {
            return Err(ChainBreak::VersionGap { expected: self.next_version, found: event.version });
        }
        if event.prev_hash != self.prev_hash {
            return Err(ChainBreak::PrevHashMismatch {
                expected: self.prev_hash.clone(),
                stored: event.prev_hash.clone(),
            });
        }
        let recomputed = recompute_hash(event);
        if recomputed != event.hash {
            return Err(ChainBreak::HashMismatch { expected: recomputed, stored: event.hash.clone() });
        }
        self.next_version += 1;
        self.prev_hash = event.hash.clone();
        Ok(())
    }

    /// The hash of the last event checked ([`GENESIS_HASH`] before any).
    pub fn last_hash(&self) -> &str {
        &self.prev_hash
    }

    /// How many events were checked.
    pub fn checked(&self) -> i64 {
        self.next_version - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{ActorKind, Category};
    use chrono::SubsecRound;
    use serde_json::json;

    fn recorded(stream_id: StreamId, version: i64, prev_hash: &str, payload: serde_json::Value) -> RecordedEvent {
        let new = NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "WorkflowRenamed".into(),
            schema_version: 1,
            workspace_id: Uuid::now_v7(),
            occurred_at: Utc::now().trunc_subsecs(6),
            actor: Actor { kind: ActorKind::System, id: "test".into() },
            correlation_id: Some("c".into()),
            causation_id: None,
            payload,
            metadata: json!({}),
        };
        let hash = hash_new_event(&stream_id, version, prev_hash, &new);
        RecordedEvent {
            global_position: version,
            stream_id,
            version,
            event_id: new.event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            workspace_id: new.workspace_id,
            occurred_at: new.occurred_at,
            actor: new.actor,
            correlation_id: new.correlation_id,
            causation_id: new.causation_id,
            payload: new.payload,
            metadata: new.metadata,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }

    #[test]
    fn hash_ignores_key_order_and_number_spelling() {
        let stream = StreamId::new(Category::Workflow, Uuid::now_v7());
        let mut event = recorded(stream, 1, GENESIS_HASH, json!({"b": 1.0, "a": [1, 2]}));
        // What jsonb hands back: keys reordered, 1.0 spelled 1.
        event.payload = serde_json::from_str(r#"{"a":[1,2],"b":1}"#).unwrap();
        assert_eq!(recompute_hash(&event), event.hash);
    }

    #[test]
    fn verifier_names_the_first_broken_link() {
        let stream = StreamId::new(Category::Workflow, Uuid::now_v7());
        let first = recorded(stream, 1, GENESIS_HASH, json!({"name": "a"}));
        let mut second = recorded(stream, 2, &first.hash, json!({"name": "b"}));
        let third = recorded(stream, 3, &second.hash, json!({"name": "c"}));

        let mut verifier = ChainVerifier::default();
        for event in [&first, &second, &third] {
            verifier.check(event).unwrap();
        }
        assert_eq!(verifier.checked(), 3);

        second.payload = json!({"name": "B"});
        let mut verifier = ChainVerifier::default();
        verifier.check(&first).unwrap();
        assert!(matches!(verifier.check(&second), Err(ChainBreak::HashMismatch { .. })));

        let mut verifier = ChainVerifier::default();
        verifier.check(&first).unwrap();
        assert_eq!(verifier.check(&third), Err(ChainBreak::VersionGap { expected: 2, found: 3 }));
    }
}
