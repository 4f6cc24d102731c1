//! Parsed GraphQL documents, kept by their text. Clients send the same few queries again and
//! again, with different variables; parsing one (async-graphql's pest grammar) was about a tenth
//! of the query API's CPU in the list benchmark, more than validating and executing it together.
//!
//! Validation runs in full the first time a kept document is executed. Once it has passed for an
//! operation name, [`Parsed::validated`] says so for later requests with that name whose variable
//! values conform to their declared types (`crate::schema::variable_types`, which explains why
//! that is enough), and the caller runs those with async-graphql's fast validation, which still
//! enforces the depth and complexity limits (with the request's own variables).

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType};
use async_graphql::{Positioned, ServerError, Variables};
use lru::LruCache;

use crate::schema::variable_types;

/// Longer queries are parsed every time: the cache holds at most `capacity` times this much text.
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;

/// A bounded cache of parsed documents, least recently used first out.
pub struct DocumentCache {
    documents: Mutex<LruCache<String, Kept>>,
}

struct Kept {
    document: ExecutableDocument,
    /// The operation name it passed the full validation with, if it has.
    validated_for: Option<Option<String>>,
}

/// A parsed document, the type of the operation the request runs (none if the name selects none),
/// whether this request may skip the full validation, and whether passing it would be remembered
/// ([`DocumentCache::passed_validation`]).
#[derive(Debug)]
pub struct Parsed {
    pub document: ExecutableDocument,
    pub operation: Option<OperationType>,
    pub validated: bool,
    pub rememberable: bool,
}

impl DocumentCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self { documents: Mutex::new(LruCache::new(capacity)) }
    }

    /// `query` parsed: a copy of the kept document, or parsed now (and kept if it parses).
    pub fn parse(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<Parsed, ServerError> {
        // The lock is held for the look-up and the copy only; the variables are judged after.
        let kept = self.lock().get(query).map(|kept| {
            let passed = kept.validated_for.as_ref().is_some_and(|name| name.as_deref() == operation_name);
            (kept.document.clone(), passed)
        });
        if let Some((document, passed)) = kept {
            let operation = operation(&document.operations, operation_name);
            let validated =
                passed && operation.is_some_and(|op| variable_types::conform(&op.node.variable_definitions, variables));
            let operation = operation.map(|op| op.node.ty);
            return Ok(Parsed { document, operation, validated, rememberable: !passed });
        }
        let document = async_graphql::parser::parse_query(query)?;
        let operation = operation(&document.operations, operation_name).map(|op| op.node.ty);
        let kept = query.len() <= MAX_CACHED_QUERY_BYTES;
        if kept {
            self.lock().put(query.to_owned(), Kept { document: document.clone(), validated_for: None });
        }
        Ok(Parsed { document, operation, validated: false, rememberable: kept })
    }

    /// Records that `query` passed the full validation with `operation_name`.
    pub fn passed_validation(&self, query: &str, operation_name: Option<&str>) {
        if let Some(kept) = self.lock().get_mut(query) {
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

/// The operation a request runs: the one named, or the only one.
fn operation<'a>(
    operations: &'a DocumentOperations,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_document_is_the_one_parsed_from_the_same_text() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        let query = "query Q($id: UUID!) { workflow(id: $id) { name } }";
        let first = cache.parse(query, None, &none()).unwrap().document;
        let again = cache.parse(query, None, &none()).unwrap().document;
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        assert_eq!(cache.lock().len(), 1);
    }

    #[test]
    fn parse_errors_are_returned_every_time_and_never_kept() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        for _ in 0..2 {
            let error = cache.parse("{ workflows(first: ", None, &none()).unwrap_err();
            assert!(!error.locations.is_empty(), "a parse error says where: {error:?}");
        }
        assert_eq!(cache.lock().len(), 0);
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_its_size_limit() {
        let cache = DocumentCache::new(NonZeroUsize::new(2).unwrap());
        for n in 0..5 {
            cache.parse(&format!("{{ a{n}: workspace {{ name }} }}"), None, &none()).unwrap();
        }
        assert_eq!(cache.lock().len(), 2);
        let long = format!("{{ workspace {{ name }} }} {}", "#".repeat(MAX_CACHED_QUERY_BYTES));
        cache.parse(&long, None, &none()).unwrap();
        assert!(!cache.lock().contains(long.as_str()), "a query over the size limit is not kept");
        assert!(cache.lock().contains("{ a4: workspace { name } }"), "the most recent stays");
    }

    fn none() -> Variables {
        Variables::default()
    }

    #[test]
    fn a_document_passed_once_skips_the_full_validation_for_its_operation_and_conforming_variables() {
        let cache = DocumentCache::default();
        let plain = "query Names { workflows { edges { node { name } } } }";
        let with_variables = "query One($id: UUID!, $v: Int!) { workflow(id: $id) { at(version: $v) { name } } }";
        let good = Variables::from_json(serde_json::json!({"id": uuid::Uuid::now_v7(), "v": 3}));
        for (query, name) in [(plain, "Names"), (with_variables, "One")] {
            let parsed = cache.parse(query, Some(name), &good).unwrap();
            assert!(!parsed.validated && parsed.rememberable, "nothing validated yet");
            cache.passed_validation(query, Some(name));
            let parsed = cache.parse(query, Some(name), &good).unwrap();
            assert!(parsed.validated && !parsed.rememberable, "remembered");
        }
        assert!(!cache.parse(plain, None, &none()).unwrap().validated, "another operation name validates anew");
        let bad = Variables::from_json(serde_json::json!({"id": uuid::Uuid::now_v7(), "v": "three"}));
        assert!(!cache.parse(with_variables, Some("One"), &bad).unwrap().validated, "a bad value validates in full");
        assert!(cache.parse(with_variables, Some("One"), &none()).unwrap().validated, "missing ones are execution's");
    }

    #[test]
    fn the_operation_is_the_one_named_or_the_only_one() {
        let two = "query A { workspace { name } } query B { members { totalCount } }";
        let two = async_graphql::parser::parse_query(two).unwrap();
        assert_eq!(operation(&two.operations, Some("B")).map(|op| op.node.selection_set.node.items.len()), Some(1));
        assert!(operation(&two.operations, None).is_none(), "two operations need a name");
        assert!(operation(&two.operations, Some("C")).is_none());
        let one = async_graphql::parser::parse_query("query A { workspace { name } }").unwrap();
        assert!(operation(&one.operations, None).is_some());
    }
}
