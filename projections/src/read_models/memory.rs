//! The workflow rows a projector committed, kept for its next batches (see `projector::guard`).

use lru::LruCache;

use super::workflows::{Key, WorkflowRow};

/// The workflow rows a batch wrote, once it committed: see [`WorkflowMemory`].
#[derive(Debug, Default)]
pub struct WrittenWorkflows(pub(super) Vec<(WorkflowRow, usize)>);

/// Workflow rows a projector committed, so that its next batch need not read them back. A row
/// is recalled only for a stream whose version guard the batch takes from the projector's own
/// memory too, and the batch's statement checks that guard: if it holds, no one else has
/// written the row since (a row changes only with its stream's guard, in one transaction).
pub struct WorkflowMemory {
    pub(super) rows: LruCache<Key, (WorkflowRow, usize)>,
    pub(super) bytes: usize,
    budget: usize,
}

impl WorkflowMemory {
    /// Keeps rows up to about `budget` bytes of their JSON, least recently written out first.
    pub fn new(budget: usize) -> Self {
        Self { rows: LruCache::unbounded(), bytes: 0, budget }
    }

    /// The rows `written` wrote, as committed.
    pub fn remember(&mut self, written: WrittenWorkflows) {
        for (row, size) in written.0 {
            let key = row.key();
            self.bytes += size;
            if let Some((_, old)) = self.rows.put(key, (row, size)) {
                self.bytes -= old;
            }
        }
        while self.bytes > self.budget {
            let Some((_, (_, size))) = self.rows.pop_lru() else { break };
            self.bytes -= size;
        }
    }

    /// The row of `key` as last committed, if remembered.
    pub(super) fn recall(&mut self, key: &Key) -> Option<&WorkflowRow> {
        self.rows.get(key).map(|(row, _)| row)
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.bytes = 0;
    }
}

impl Default for WorkflowMemory {
    fn default() -> Self {
        Self::new(32 * 1024 * 1024)
    }
}
