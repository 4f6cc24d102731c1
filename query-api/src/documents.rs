//! Parsed GraphQL documents, kept by their text. Clients send the same few queries again and
//! again, with different variables; parsing one (async-graphql's pest grammar) was about a tenth
//! of the query API's CPU in the list benchmark, more than validating and executing it together.
//! Only the parse is kept: validation depends on the variables and runs for every request.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Longer queries are parsed every time: the cache holds at most `capacity` times this much text.
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;

/// A bounded cache of parsed documents, least recently used first out.
pub struct DocumentCache {
    documents: Mutex<LruCache<String, ExecutableDocument>>,
}

impl DocumentCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self { documents: Mutex::new(LruCache::new(capacity)) }
    }

    /// `query` parsed: a copy of the kept document, or parsed now (and kept if it parses).
    pub fn parse(&self, query: &str) -> Result<ExecutableDocument, ServerError> {
        if let Some(document) = self.lock().get(query) {
            return Ok(document.clone());
        }
        let document = async_graphql::parser::parse_query(query)?;
        if query.len() <= MAX_CACHED_QUERY_BYTES {
            self.lock().put(query.to_owned(), document.clone());
        }
        Ok(document)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, ExecutableDocument>> {
        // The cache holds no invariant a panicking holder could break: keep using it.
        self.documents.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self::new(NonZeroUsize::new(256).expect("not zero"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_document_is_the_one_parsed_from_the_same_text() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        let query = "query Q($id: UUID!) { workflow(id: $id) { name } }";
        let first = cache.parse(query).unwrap();
        let again = cache.parse(query).unwrap();
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        assert_eq!(cache.lock().len(), 1);
    }

    #[test]
    fn parse_errors_are_returned_every_time_and_never_kept() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        for _ in 0..2 {
            let error = cache.parse("{ workflows(first: ").unwrap_err();
            assert!(!error.locations.is_empty(), "a parse error says where: {error:?}");
        }
        assert_eq!(cache.lock().len(), 0);
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_its_size_limit() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        for n in 0..5 {
            cache.parse(&format!("{{ a{n}: workspace {{ name }} }}")).unwrap();
        }
        assert_eq!(cache.lock().len(), 2);
        let long = format!("{{ workspace {{ name }} }} {}", "#".repeat(MAX_CACHED_QUERY_BYTES));
        cache.parse(&long).unwrap();
        assert!(!cache.lock().contains(long.as_str()), "a query over the size limit is not kept");
        assert!(cache.lock().contains("{ a4: workspace { name } }"), "the most recent stays");
    }
}
