//! The version guard a batch starts from: what PostgreSQL holds in `read_model.stream_versions`,
//! or, without reading it, what this consumer last committed there; and with a guessed guard, the
//! workflow rows this consumer last committed.
//!
//! A batch that reads the guard and the workflow rows spends two of its five round trips on
//! them, which under a steady load of small batches is two fifths of its time. But the batch's
//! statement moves each guard row only from the version the batch started from
//! (`Pending::move_guard`), and fails with `GuardMoved` otherwise, so a guessed starting version
//! can cost a retry, never an event: the guess is taken only where it would let the event
//! through (the next version after what this consumer committed, or version 1 of a stream it has
//! not seen), and checked by that statement. A duplicate is dropped and a gap
//! repaired only on a version read from PostgreSQL, since dropping or repairing moves no guard
//! row the statement could check. A workflow row changes only with its stream's guard, in one
//! transaction, so where the guard holds at the guessed version, the row is as this consumer
//! committed it (`WorkflowMemory`). Retries read everything, and after a failed guess about unseen
//! streams (a broker replaying a topic it lost: every stream is old) those are read until the
//! reads find new streams again.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

use lru::LruCache;
use sqlx::PgConnection;

use crate::read_models::{WorkflowMemory, WrittenWorkflows};

/// Streams whose guard a consumer remembers; beyond that the least recently applied are read.
const REMEMBERED_STREAMS: usize = 65_536;

/// What a batch's guard is made of: what is known without reading, and what must be read.
#[derive(Debug, Default)]
struct Plan {
    known: HashMap<String, i64>,
    /// The streams whose starting version is a guess (those of `known`, and new streams).
    guessed: HashSet<String>,
    to_read: Vec<String>,
    /// Those of `to_read` that this consumer has not seen and that start at version 1.
    new_to_read: Vec<String>,
}

/// What this consumer committed: the guard version per stream, and the workflow rows.
pub(super) struct GuardCache {
    committed: LruCache<String, i64>,
    /// The workflow rows this consumer committed, recalled for streams whose guard is guessed.
    workflows: WorkflowMemory,
    /// Whether a stream this consumer has not seen, starting at version 1, is taken to have no
    /// guard row. Off after such a guess failed (the broker replays a topic from its start after
    /// it lost it: every stream is old), on again once the streams read that way had none.
    trust_new_streams: bool,
    /// Whether the batch being applied started from a guess.
    guessed: bool,
}

impl Default for GuardCache {
    fn default() -> Self {
        Self {
            committed: LruCache::new(NonZeroUsize::new(REMEMBERED_STREAMS).expect("not zero")),
            workflows: WorkflowMemory::default(),
            trust_new_streams: true,
            guessed: false,
        }
    }
}

impl GuardCache {
    /// The guard of each of `streams` (in batch order, with the version of its first record): a
    /// guess where `guess` allows one, else read from PostgreSQL in one statement. A stream
    /// without a guard row is absent from the versions; the guessed streams come with them.
    pub(super) async fn starting_versions(
        &mut self,
        conn: &mut PgConnection,
        streams: &[(String, i64)],
        guess: bool,
    ) -> Result<(HashMap<String, i64>, HashSet<String>), sqlx::Error> {
        let mut plan = self.plan(streams, guess);
        if !plan.to_read.is_empty() {
            let read = read_guard(conn, &plan.to_read).await?;
            self.was_read(&plan, &read);
            plan.known.extend(read);
        }
        Ok((plan.known, plan.guessed))
    }

    /// The workflow rows this consumer committed.
    pub(super) fn workflows(&mut self) -> &mut WorkflowMemory {
        &mut self.workflows
    }

    /// Which starting versions can be guessed, and which must be read.
    fn plan(&mut self, streams: &[(String, i64)], guess: bool) -> Plan {
        let mut plan = Plan::default();
        let mut seen = HashSet::with_capacity(streams.len());
        for (stream, first_version) in streams {
            if !seen.insert(stream.as_str()) {
                continue;
            }
            match self.committed.get(stream).copied() {
                Some(committed) if guess && committed + 1 == *first_version => {
                    plan.known.insert(stream.clone(), committed);
                    plan.guessed.insert(stream.clone());
                }
                // A stream this consumer has not seen, starting at its beginning: no guard row yet.
                None if guess && *first_version == 1 && self.trust_new_streams => {
                    plan.guessed.insert(stream.clone());
                }
                None if *first_version == 1 => plan.new_to_read.push(stream.clone()),
                _ => plan.to_read.push(stream.clone()),
            }
        }
        plan.to_read.extend(plan.new_to_read.iter().cloned());
        self.guessed = !plan.guessed.is_empty();
        plan
    }

    /// Unseen streams starting at version 1 that had no guard row indeed: trust them again.
    fn was_read(&mut self, plan: &Plan, read: &HashMap<String, i64>) {
        if !plan.new_to_read.is_empty() && plan.new_to_read.iter().all(|s| !read.contains_key(s)) {
            self.trust_new_streams = true;
        }
    }

    /// Whether the batch being applied started from a guess (false again once it committed, or
    /// failed and was dealt with: a batch that fails before its plan guessed nothing).
    pub(super) fn guessed(&self) -> bool {
        self.guessed
    }

    /// After a commit: the versions the batch moved the guard to, and the workflow rows it wrote.
    pub(super) fn committed(&mut self, guard: &HashMap<String, i64>, written: WrittenWorkflows) {
        for (stream, version) in guard {
            self.committed.put(stream.clone(), *version);
        }
        self.workflows.remember(written);
        self.guessed = false;
    }

    /// Forgets everything: after a failed batch, or when the partitions assigned change (another
    /// consumer may have moved the guard of their streams meanwhile).
    pub(super) fn clear(&mut self) {
        self.committed.clear();
        self.workflows.clear();
        self.guessed = false;
    }

    /// After a batch that started from a guess failed: its retry reads the guard, and so do the
    /// next batches' unseen streams, until they are seen to be new again.
    pub(super) fn guess_failed(&mut self) {
        self.clear();
        self.trust_new_streams = false;
    }
}

/// The version each stream's events are applied up to. Read without row locks: the batch's
/// statement moves each guard only from the version read here (see `Pending::move_guard`).
pub(super) async fn read_guard(
    conn: &mut PgConnection,
    streams: &[String],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT stream_id, version FROM read_model.stream_versions WHERE stream_id = ANY($1)")
            .bind(streams)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(s, v)| ((*s).to_owned(), *v)).collect()
    }

    #[test]
    fn the_next_version_after_a_commit_is_guessed_and_any_other_is_read() {
        let mut cache = GuardCache::default();
        cache.committed(&HashMap::from([("a".to_owned(), 4), ("b".to_owned(), 4)]), WrittenWorkflows::default());
        let plan = cache.plan(&streams(&[("a", 5), ("b", 4), ("b", 5), ("c", 7)]), true);
        assert_eq!(plan.known, HashMap::from([("a".to_owned(), 4)]));
        assert_eq!(plan.guessed, HashSet::from(["a".to_owned()]));
        assert_eq!(plan.to_read, ["b", "c"], "a duplicate or a gap is decided on what PostgreSQL holds");
        assert!(cache.guessed());
    }

    #[test]
    fn a_retry_guesses_nothing() {
        let mut cache = GuardCache::default();
        cache.committed(&HashMap::from([("a".to_owned(), 4)]), WrittenWorkflows::default());
        let plan = cache.plan(&streams(&[("a", 5), ("new", 1)]), false);
        assert!(plan.known.is_empty());
        assert_eq!(plan.to_read, ["a", "new"]);
        assert!(!cache.guessed());
    }

    #[test]
    fn unseen_streams_are_taken_as_new_until_such_a_guess_fails_and_again_once_they_are_new() {
        let mut cache = GuardCache::default();
        let batch = streams(&[("new", 1)]);
        let plan = cache.plan(&batch, true);
        assert!(plan.known.is_empty() && plan.to_read.is_empty(), "no guard row: nothing to read");
        assert_eq!(plan.guessed, HashSet::from(["new".to_owned()]));
        assert!(cache.guessed());

        cache.guess_failed();
        let plan = cache.plan(&batch, true);
        assert_eq!(plan.to_read, ["new"], "after a failed guess, unseen streams are read");
        cache.was_read(&plan, &HashMap::from([("new".to_owned(), 3)]));
        assert_eq!(cache.plan(&batch, true).to_read, ["new"], "still old streams: still read");

        let plan = cache.plan(&streams(&[("newer", 1)]), true);
        cache.was_read(&plan, &HashMap::new());
        assert!(cache.plan(&streams(&[("newest", 1)]), true).to_read.is_empty(), "trusted again");
    }

    #[test]
    fn a_failed_guess_forgets_the_committed_versions() {
        let mut cache = GuardCache::default();
        cache.committed(&HashMap::from([("a".to_owned(), 4)]), WrittenWorkflows::default());
        cache.guess_failed();
        assert_eq!(cache.plan(&streams(&[("a", 5)]), true).to_read, ["a"]);
    }
}
