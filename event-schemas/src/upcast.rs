//! Upcasters: pure functions that lift a stored payload from one schema version to the next.
//!
//! Stored events are never rewritten; old payloads are upgraded each time they are read. To change
//! a payload type: bump its version in [`crate::catalog`], add a step here from the old version,
//! and regenerate the JSON Schemas (`FLOWFUSE_BLESS=1 cargo test -p event-schemas`).

use serde_json::Value;

use crate::catalog::SchemaError;

/// One step: `event_type` at `from_version` becomes `from_version + 1`.
struct Upcaster {
    event_type: &'static str,
    from_version: u32,
    upgrade: fn(Value) -> Value,
}

const UPCASTERS: &[Upcaster] =
    &[Upcaster { event_type: "WorkspaceCreated", from_version: 1, upgrade: workspace_created_v1_to_v2 }];

/// v1 had no plan: every workspace then started on the free plan.
fn workspace_created_v1_to_v2(mut payload: Value) -> Value {
    if let Value::Object(fields) = &mut payload {
        fields.entry("plan").or_insert_with(|| Value::from("free"));
    }
    payload
}

/// Applies the steps from `version` up to `current`, one at a time.
pub fn to_current(event_type: &str, version: u32, current: u32, mut payload: Value) -> Result<Value, SchemaError> {
    let unsupported = || SchemaError::UnsupportedVersion { event_type: event_type.to_owned(), version, current };
    if version == 0 || version > current {
        return Err(unsupported());
    }
    for from_version in version..current {
        let step = UPCASTERS
            .iter()
            .find(|u| u.event_type == event_type && u.from_version == from_version)
            .ok_or_else(unsupported)?;
        payload = (step.upgrade)(payload);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use crate::catalog::{Event, WorkspaceEvent};
    use crate::types::Plan;

    #[test]
    fn a_v1_workspace_created_is_read_as_v2_on_the_free_plan() {
        let id = Uuid::now_v7();
        let v1 = json!({"workspace_id": id, "name": "Acme", "slug": "acme"});
        let Event::Workspace(WorkspaceEvent::Created(created)) = Event::decode("WorkspaceCreated", 1, v1).unwrap()
        else {
            panic!("decoded to another event");
        };
        assert_eq!(created.plan, Plan::Free);
        assert_eq!(created.workspace_id, id);
    }

    #[test]
    fn a_v2_payload_is_left_alone() {
        let v2 = json!({"workspace_id": Uuid::now_v7(), "name": "Acme", "slug": "acme", "plan": "pro"});
        let Event::Workspace(WorkspaceEvent::Created(created)) = Event::decode("WorkspaceCreated", 2, v2).unwrap()
        else {
            panic!("decoded to another event");
        };
        assert_eq!(created.plan, Plan::Pro);
    }
}
