//! An in-process cache of aggregate states, so that a command reads only the events appended
//! since the state was cached (usually none) instead of the whole stream.
//!
//! It never decides anything alone: every load still asks the store for newer events, and every
//! append carries the expected version, so a state made stale by another instance is caught up
//! before deciding, or refused by the store.

use std::collections::HashMap;
use std::sync::Mutex;

use event_schemas::StreamId;
use uuid::Uuid;

/// A cached aggregate state as of `last_position`.
#[derive(Clone)]
pub struct Cached<A> {
    pub state: A,
    pub workspace_id: Uuid,
    pub last_position: i64,
}

pub struct AggregateCache<A> {
    entries: Mutex<HashMap<StreamId, Cached<A>>>,
    capacity: usize,
}

impl<A: Clone> AggregateCache<A> {
    pub fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity }
    }

    pub fn get(&self, stream_id: &StreamId) -> Option<Cached<A>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(stream_id).cloned()
    }

    pub fn put(&self, stream_id: StreamId, cached: Cached<A>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&stream_id) {
            // Crude but bounded: drop an arbitrary half when full.
            let victims: Vec<StreamId> = entries.keys().take(self.capacity / 2 + 1).copied().collect();
            for victim in victims {
                entries.remove(&victim);
            }
        }
        entries.insert(stream_id, cached);
    }
}
