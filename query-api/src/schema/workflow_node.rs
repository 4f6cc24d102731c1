//! `Workflow` as the workflow fields return it, resolved in one step when the query asks only
//! for its stored fields, as a list page does.
//!
//! async-graphql resolves every field of an object in a boxed future of its own, with a context,
//! a `FuturesUnordered` and a hashed insert into the answer's map: 11,000 instructions for a
//! workflow of five fields, a third of a list request's (docs/benchmarks.md, 2026-12-07). A
//! stored field needs none of that. So when every selection is such a field (no fragment,
//! argument or directive; `@skip` and `@include` are gone by now, async-graphql applies them
//! before execution), the object is built here with the same scalar conversions async-graphql
//! would apply; anything else goes to the derived resolver. `tests/graphql/queries.rs` checks
//! that both ways give the same answer for every field handled here.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ScalarType, ServerResult, Value};

use super::workflows::Workflow;

pub struct WorkflowNode(pub Workflow);

impl OutputType for WorkflowNode {
    fn type_name() -> Cow<'static, str> {
        Workflow::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Workflow::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        match self.stored_fields(ctx) {
            Some(object) => Ok(object),
            None => OutputType::resolve(&self.0, ctx, field).await,
        }
    }
}

impl WorkflowNode {
    /// The object, if the selection asks for stored fields only.
    fn stored_fields(&self, ctx: &ContextSelectionSet<'_>) -> Option<Value> {
        let workflow = &self.0;
        let mut object = IndexMap::with_capacity(ctx.item.node.items.len());
        for selection in &ctx.item.node.items {
            let Selection::Field(field) = &selection.node else { return None };
            let field = &field.node;
            if !field.arguments.is_empty() || !field.directives.is_empty() {
                return None;
            }
            let value = match field.name.node.as_str() {
                "id" => workflow.workflow_id.to_value(),
                "name" => workflow.name.to_value(),
                "description" => workflow.description.as_ref().map_or(Value::Null, ScalarType::to_value),
                "tags" => Value::List(workflow.tags.iter().map(ScalarType::to_value).collect()),
                "status" => workflow.status.to_value(),
                "version" => workflow.version.to_value(),
                "publishedVersion" => workflow.published_version.as_ref().map_or(Value::Null, ScalarType::to_value),
                "definition" => async_graphql::to_value(&workflow.definition).unwrap_or_default(),
                "createdBy" => workflow.created_by.to_value(),
                "createdAt" => workflow.created_at.to_value(),
                "updatedAt" => workflow.updated_at.to_value(),
                "__typename" => Value::String(Workflow::type_name().into_owned()),
                _ => return None,
            };
            // A field asked twice under one response key (validation allows only the same field) is
            // answered once.
            object.entry(field.response_key().node.clone()).or_insert(value);
        }
        Some(Value::Object(object))
    }
}
