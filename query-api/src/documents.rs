//! Parsed GraphQL documents, kept by their text. Clients send the same few queries again and
//! again, with different variables; parsing one (async-graphql's pest grammar) was about a tenth
//! of the query API's CPU in the list benchmark, more than validating and executing it together.
//!
//! Validation depends on the variables, so it runs for every request, with one exception: a
//! document that declares no variables validates the same way every time (for the same operation
//! name). Once one has passed the full validation, [`Parsed::validated`] says so, and the caller
//! runs it with async-graphql's fast validation, which still enforces the depth and complexity
//! limits.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Longer queries are parsed every time: the cache holds at most `capacity` times this much text.
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;

/// A bounded cache of parsed documents, least recently used first out.
pub struct DocumentCache {
    documents: Mutex<LruCache<String, Kept>>,
}

struct Kept {
    document: ExecutableDocument,
    declares_variables: bool,
    /// The operation name it passed the full validation with, if it declares no variables.
    validated_for: Option<Option<String>>,
}

/// A parsed document, whether it already passed the full validation for this operation name, and
/// whether passing it would be remembered ([`DocumentCache::passed_validation`]).
#[derive(Debug)]
pub struct Parsed {
    pub document: ExecutableDocument,
    pub validated: bool,
    pub rememberable: bool,
}

impl DocumentCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self { documents: Mutex::new(LruCache::new(capacity)) }
    }

    /// `query` parsed: a copy of the kept document, or parsed now (and kept if it parses).
    pub fn parse(&self, query: &str, operation_name: Option<&str>) -> Result<Parsed, ServerError> {
        if let Some(kept) = self.lock().get(query) {
            let validated = kept.validated_for.as_ref().is_some_and(|name| name.as_deref() == operation_name);
            let rememberable = !validated && !kept.declares_variables;
            return Ok(Parsed { document: kept.document.clone(), validated, rememberable });
        }
        let document = async_graphql::parser::parse_query(query)?;
        let declares_variables =
            document.operations.iter().any(|(_, operation)| !operation.node.variable_definitions.is_empty());
        let kept = query.len() <= MAX_CACHED_QUERY_BYTES;
        if kept {
            let entry = Kept { document: document.clone(), declares_variables, validated_for: None };
            self.lock().put(query.to_owned(), entry);
        }
        Ok(Parsed { document, validated: false, rememberable: kept && !declares_variables })
    }

    /// Records that `query` passed the full validation with `operation_name`; remembered only for
    /// a kept document that declares no variables.
    pub fn passed_validation(&self, query: &str, operation_name: Option<&str>) {
        if let Some(kept) = self.lock().get_mut(query)
            && !kept.declares_variables
        {
            kept.validated_for = Some(operation_name.map(str::to_owned));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Kept>> {
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
        let first = cache.parse(query, None).unwrap().document;
        let again = cache.parse(query, None).unwrap().document;
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        assert_eq!(cache.lock().len(), 1);
    }

    #[test]
    fn parse_errors_are_returned_every_time_and_never_kept() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        for _ in 0..2 {
            let error = cache.parse("{ workflows(first: ", None).unwrap_err();
            assert!(!error.locations.is_empty(), "a parse error says where: {error:?}");
        }
        assert_eq!(cache.lock().len(), 0);
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_its_size_limit() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        for n in 0..5 {
            cache.parse(&format!("{{ a{n}: workspace {{ name }} }}"), None).unwrap();
        }
        assert_eq!(cache.lock().len(), 2);
        let long = format!("{{ workspace {{ name }} }} {}", "#".repeat(MAX_CACHED_QUERY_BYTES));
        cache.parse(&long, None).unwrap();
        assert!(!cache.lock().contains(long.as_str()), "a query over the size limit is not kept");
        assert!(cache.lock().contains("{ a4: workspace { name } }"), "the most recent stays");
    }

    #[test]
    fn only_a_document_without_variables_is_remembered_as_validated_and_only_for_its_operation() {
        let cache = DocumentCache::default();
        let plain = "query Names { workflows { edges { node { name } } } }";
        let with_variables = "query One($id: UUID!) { workflow(id: $id) { name } }";
        for query in [plain, with_variables] {
            let parsed = cache.parse(query, Some("Names")).unwrap();
            assert!(!parsed.validated, "nothing validated yet");
            assert_eq!(parsed.rememberable, query == plain);
            cache.passed_validation(query, Some("Names"));
        }
        assert!(cache.parse(plain, Some("Names")).unwrap().validated);
        assert!(!cache.parse(plain, None).unwrap().validated, "another operation name validates anew");
        assert!(!cache.parse(with_variables, Some("Names")).unwrap().validated, "variables change validation");
    }
}
