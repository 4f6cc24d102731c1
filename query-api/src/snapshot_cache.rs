//! Workflow snapshots kept in memory, so that a question about a version whose snapshot the
//! process has already seen reads no snapshot row and decodes no snapshot JSON: it reads only the
//! events from the snapshot's version on, which it reads anyway to check the snapshot.
//!
//! Nothing here can go stale in a way that matters: events are immutable, and a kept state is
//! trusted under the same rule as a snapshot row ([`crate::time_travel`]): only if the event at
//! its version still carries the hash recorded with it. Otherwise it is forgotten.
//!
//! The memory is bounded by the size of the states' JSON; quick_cache evicts by a variant of
//! CLOCK-Pro (close to S3-FIFO), so one scan through a long history does not flush the states
//! that are asked for again and again.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use uuid::Uuid;

use crate::time_travel::WorkflowState;

/// About this much JSON of states is kept; a query API holds one cache for all its requests.
pub const BUDGET_BYTES: u64 = 64 * 1024 * 1024;

/// A workflow's state right after `version`, and the hash of the event that made it.
#[derive(Debug)]
pub struct KeptState {
    pub hash: String,
    pub state: WorkflowState,
    /// The length of the state's JSON: its weight against [`BUDGET_BYTES`].
    pub bytes: u64,
}

type Key = (Uuid, i64);

#[derive(Clone)]
struct ByJsonLength;

impl Weighter<Key, Arc<KeptState>> for ByJsonLength {
    fn weight(&self, _: &Key, kept: &Arc<KeptState>) -> u64 {
        kept.bytes.max(1)
    }
}

/// Snapshots by workflow and version; shared by every request of a query API.
pub struct SnapshotCache {
    states: Cache<Key, Arc<KeptState>, ByJsonLength>,
}

impl SnapshotCache {
    pub fn new(budget_bytes: u64) -> Self {
        // quick_cache sizes its tables from the expected count: states of a few KB each.
        let expected = (budget_bytes / 4096).max(16) as usize;
        Self { states: Cache::with_weighter(expected, budget_bytes, ByJsonLength) }
    }

    /// The state of `workflow` at `version`, if kept. The caller checks its hash.
    pub fn get(&self, workflow: Uuid, version: i64) -> Option<Arc<KeptState>> {
        self.states.get(&(workflow, version))
    }

    pub fn keep(&self, workflow: Uuid, kept: KeptState) {
        self.states.insert((workflow, kept.state.version), Arc::new(kept));
    }

    /// Forgets the state of `workflow` at `version`: its event no longer has the recorded hash.
    pub fn forget(&self, workflow: Uuid, version: i64) {
        self.states.remove(&(workflow, version));
    }
}

impl Default for SnapshotCache {
    fn default() -> Self {
        Self::new(BUDGET_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(version: i64, bytes: u64) -> KeptState {
        KeptState { hash: format!("h{version}"), state: WorkflowState { version, ..Default::default() }, bytes }
    }

    #[test]
    fn states_are_found_by_workflow_and_version_until_forgotten() {
        let cache = SnapshotCache::new(1024 * 1024);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        cache.keep(a, kept(5, 100));
        cache.keep(b, kept(10, 100));
        assert_eq!(cache.get(a, 5).map(|k| k.hash.clone()).as_deref(), Some("h5"));
        assert!(cache.get(a, 10).is_none(), "another workflow's version");
        assert!(cache.get(b, 5).is_none());
        cache.forget(a, 5);
        assert!(cache.get(a, 5).is_none());
        assert_eq!(cache.get(b, 10).map(|k| k.state.version), Some(10));
    }

    #[test]
    fn the_memory_stays_within_its_budget() {
        let cache = SnapshotCache::new(10_000);
        let workflow = Uuid::now_v7();
        for version in 1..=100 {
            cache.keep(workflow, kept(version * 5, 1_000));
        }
        let held = (1..=100).filter(|v| cache.get(workflow, v * 5).is_some()).count();
        assert!((1..=10).contains(&held), "10 states of 1,000 bytes fit in 10,000, {held} held");
        assert!(cache.states.weight() <= 10_000, "weight {}", cache.states.weight());
    }
}
