//! Whether a request's variable values have the types its operation declares for them.
//!
//! async-graphql's full validation depends on the variables in one rule only: it substitutes
//! their values into each argument and checks the argument against its type (unknown variables
//! are left unchecked, for execution to report). Every other rule looks at the document alone. So
//! a kept document that once passed the full validation for an operation passes it again with
//! other values exactly when those values are valid for their types, which [`conform`] checks
//! with the same per-type tests the validation calls (`ScalarType::is_valid`, the enum's values).
//!
//! It errs on the side of the full validation: a value it cannot judge as async-graphql would (a
//! `null`, an input object, a type it does not know) does not conform, and the request is then
//! validated in full, so that a bad value is always the request error the specification asks for.

use std::borrow::Cow;

use async_graphql::parser::types::{BaseType, Type, VariableDefinition};
use async_graphql::{ID, InputType, Name, Positioned, ScalarType, Value, Variables};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::workflows::{DeployEnvironment, OrderDirection, WorkflowOrderField, WorkflowStatus};

/// True when every variable given has a value valid for its declared type, as far as the full
/// validation would look; false when in doubt.
pub fn conform(definitions: &[Positioned<VariableDefinition>], variables: &Variables) -> bool {
    definitions.iter().all(|definition| {
        let definition = &definition.node;
        // A variable not given is not checked by validation either: execution substitutes its
        // default or reports it, the same way in either validation mode.
        variables.get(&definition.name.node).is_none_or(|value| value_conforms(&definition.var_type.node, value))
    })
}

fn value_conforms(declared: &Type, value: &Value) -> bool {
    match (&declared.base, value) {
        // Whether a null is allowed depends on where the variable is used (a nullable variable
        // with a default may stand for a non-null argument): left to the full validation.
        (_, Value::Null) => false,
        (BaseType::List(item), Value::List(items)) => items.iter().all(|value| value_conforms(item, value)),
        // A single value where a list is declared is coerced to a list of one.
        (BaseType::List(item), value) => value_conforms(item, value),
        (BaseType::Named(name), value) => leaf_check(name).is_some_and(|check| check(value)),
    }
}

type Check = fn(&Value) -> bool;
type TypeName = fn() -> Cow<'static, str>;

/// The scalars and enums the schema's arguments use, each named by its own Rust type so that
/// the names cannot drift from the schema's. Input objects are not here: judging one means
/// judging its fields as the registry declares them, so they always get the full validation.
fn leaf_check(name: &Name) -> Option<Check> {
    const LEAVES: [(TypeName, Check); 11] = [
        (<i32 as InputType>::type_name, <i32 as ScalarType>::is_valid),
        (<f64 as InputType>::type_name, <f64 as ScalarType>::is_valid),
        (<String as InputType>::type_name, <String as ScalarType>::is_valid),
        (<bool as InputType>::type_name, <bool as ScalarType>::is_valid),
        (<ID as InputType>::type_name, <ID as ScalarType>::is_valid),
        (<Uuid as InputType>::type_name, <Uuid as ScalarType>::is_valid),
        (<DateTime<Utc> as InputType>::type_name, <DateTime<Utc> as ScalarType>::is_valid),
        (<WorkflowStatus as InputType>::type_name, is_enum_value::<WorkflowStatus>),
        (<DeployEnvironment as InputType>::type_name, is_enum_value::<DeployEnvironment>),
        (<WorkflowOrderField as InputType>::type_name, is_enum_value::<WorkflowOrderField>),
        (<OrderDirection as InputType>::type_name, is_enum_value::<OrderDirection>),
    ];
    LEAVES.iter().find(|(type_name, _)| type_name() == name.as_str()).map(|(_, check)| *check)
}

/// An enum's values arrive as strings in JSON variables; the validation accepts any of its names.
fn is_enum_value<E: InputType>(value: &Value) -> bool {
    E::parse(Some(value.clone())).is_ok()
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use serde_json::json;

    use super::*;

    fn conforms(declarations: &str, variables: serde_json::Value) -> bool {
        let document = parse_query(format!("query Q({declarations}) {{ workspace {{ name }} }}")).expect("parses");
        let (_, operation) = document.operations.iter().next().expect("one operation");
        conform(&operation.node.variable_definitions, &Variables::from_json(variables))
    }

    #[test]
    fn values_of_the_declared_scalars_and_enums_conform() {
        let id = Uuid::now_v7();
        assert!(conforms("$id: UUID!, $v: Int!", json!({"id": id, "v": 7})));
        assert!(conforms(
            "$at: DateTime, $s: String, $b: Boolean, $f: Float, $i: ID",
            json!({"at": "2026-12-06T10:00:00Z", "s": "x", "b": true, "f": 1.5, "i": "k"})
        ));
        assert!(conforms(
            "$status: [WorkflowStatus!], $env: DeployEnvironment",
            json!({"status": ["DRAFT", "ARCHIVED"], "env": "PROD"})
        ));
        assert!(conforms("$tags: [String!]", json!({"tags": "one"})), "a single value stands for a list of one");
        assert!(conforms("$v: Int!, $unused: Int", json!({"v": 1})), "a variable not given is execution's to judge");
    }

    #[test]
    fn a_value_the_validation_would_refuse_does_not_conform() {
        assert!(!conforms("$v: Int!", json!({"v": "seven"})));
        assert!(!conforms("$v: Int!", json!({"v": 1.5})));
        assert!(!conforms("$b: Boolean", json!({"b": "yes"})));
        assert!(!conforms("$status: [WorkflowStatus!]", json!({"status": ["DRAFT", "GONE"]})));
        assert!(!conforms("$env: DeployEnvironment", json!({"env": 3})));
    }

    #[test]
    fn nulls_input_objects_and_unknown_types_are_left_to_the_full_validation() {
        assert!(!conforms("$v: Int", json!({"v": null})));
        assert!(!conforms("$tags: [String]", json!({"tags": ["a", null]})));
        assert!(!conforms("$filter: WorkflowFilter", json!({"filter": {"tags": ["a"]}})));
        assert!(!conforms("$x: Colour", json!({"x": "red"})));
    }

    #[tokio::test]
    async fn every_leaf_type_is_one_the_schema_declares() {
        // The schema's SDL needs no database: the pool is never connected.
        let pool =
            sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://127.0.0.1/unused").expect("a lazy pool");
        let sdl = crate::schema::build(pool, crate::schema::Limits::default(), Default::default()).sdl();
        for name in ["UUID", "DateTime", "WorkflowStatus", "DeployEnvironment", "WorkflowOrderField", "OrderDirection"]
        {
            assert!(leaf_check(&Name::new(name)).is_some(), "{name} is checked");
            let declared = [format!("scalar {name}"), format!("enum {name} ")];
            assert!(declared.iter().any(|d| sdl.contains(d.as_str())), "{name} is in the schema");
        }
    }
}
