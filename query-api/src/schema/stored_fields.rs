//! Objects whose stored fields are resolved in one step when the query asks for nothing else, as
//! a list page does.
//!
//! async-graphql resolves every field of an object in a boxed future of its own, with a context,
//! a `FuturesUnordered` and a hashed insert into the answer's map: 11,000 instructions for a
//! workflow of five fields, a third of a list request's (docs/benchmarks.md, 2026-12-07). A
//! stored field needs none of that. So when every selection is a stored field (no fragment,
//! argument or directive; `@skip` and `@include` are gone by now, async-graphql applies them
//! before execution), [`Stored`] builds the object itself, with the conversions async-graphql
//! would apply; anything else goes to the type's derived resolvers.
//!
//! The selections are checked before any value is made, so a query that mixes in other fields
//! pays only for the check.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

/// A GraphQL object some of whose fields are plain values it holds.
pub trait StoredFields: OutputType {
    /// One of those fields.
    type Field: Copy;

    /// The stored field a GraphQL field name names, if it is one.
    fn stored(name: &str) -> Option<Self::Field>;

    /// Its value, as async-graphql's own resolver would give it.
    fn value(&self, field: Self::Field) -> Value;
}

/// `T` as a field returns it: resolved in one step when only stored fields are asked.
pub struct Stored<T>(pub T);

impl<T: StoredFields> OutputType for Stored<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let items = &ctx.item.node.items;
        if !items.iter().all(|selection| stored::<T>(&selection.node).is_some()) {
            return OutputType::resolve(&self.0, ctx, field).await;
        }
        let mut object = IndexMap::with_capacity(items.len());
        for (field, stored) in items.iter().filter_map(|selection| stored::<T>(&selection.node)) {
            let value = match stored {
                Some(stored) => self.0.value(stored),
                None => Value::String(T::type_name().into_owned()),
            };
            // A field asked twice under one response key (validation allows only the same field)
            // is answered once.
            object.entry(field.response_key().node.clone()).or_insert(value);
        }
        Ok(Value::Object(object))
    }
}

/// The field a selection asks for and what it is: `Some(stored)`, or `None` for `__typename`;
/// `None` if it is anything else.
fn stored<T: StoredFields>(selection: &Selection) -> Option<(&Field, Option<T::Field>)> {
    let Selection::Field(field) = selection else { return None };
    let field = &field.node;
    if !field.arguments.is_empty() || !field.directives.is_empty() {
        return None;
    }
    match field.name.node.as_str() {
        "__typename" => Some((field, None)),
        name => T::stored(name).map(|stored| (field, Some(stored))),
    }
}
