//! What changed between two states of a workflow: nodes and edges added, removed and changed (by
//! id), and changes of name, description, tags and status. Pure; the states come from
//! [`crate::time_travel`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::time_travel::WorkflowState;

/// An element (node or edge) present on both sides with different content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElementChange {
    pub id: String,
    pub before: Value,
    pub after: Value,
}

/// Added, removed and changed elements of one kind, each list ordered by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ElementDiff {
    pub added: Vec<Value>,
    pub removed: Vec<Value>,
    pub changed: Vec<ElementChange>,
}

/// A field whose value differs, as its two values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange<T> {
    pub before: T,
    pub after: T,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowDiff {
    pub from_version: i64,
    pub to_version: i64,
    pub nodes: ElementDiff,
    pub edges: ElementDiff,
    pub name: Option<FieldChange<String>>,
    pub description: Option<FieldChange<Option<String>>>,
    pub tags_added: Vec<String>,
    pub tags_removed: Vec<String>,
    pub status: Option<FieldChange<String>>,
}

impl WorkflowDiff {
    pub fn is_empty(&self) -> bool {
        self.nodes == ElementDiff::default()
            && self.edges == ElementDiff::default()
            && self.name.is_none()
            && self.description.is_none()
            && self.tags_added.is_empty()
            && self.tags_removed.is_empty()
            && self.status.is_none()
    }
}

/// The difference from `from` to `to`.
pub fn diff(from: &WorkflowState, to: &WorkflowState) -> WorkflowDiff {
    let nodes = diff_by_id(
        from.definition.nodes.iter().map(|n| (n.id.clone(), to_json(n))),
        to.definition.nodes.iter().map(|n| (n.id.clone(), to_json(n))),
    );
    let edges = diff_by_id(
        from.definition.edges.iter().map(|e| (e.id.clone(), to_json(e))),
        to.definition.edges.iter().map(|e| (e.id.clone(), to_json(e))),
    );
    WorkflowDiff {
        from_version: from.version,
        to_version: to.version,
        nodes,
        edges,
        name: change(&from.name, &to.name),
        description: change(&from.description, &to.description),
        tags_added: to.tags.iter().filter(|t| !from.tags.contains(t)).cloned().collect(),
        tags_removed: from.tags.iter().filter(|t| !to.tags.contains(t)).cloned().collect(),
        status: change(&from.status, &to.status),
    }
}

fn change<T: PartialEq + Clone>(before: &T, after: &T) -> Option<FieldChange<T>> {
    (before != after).then(|| FieldChange { before: before.clone(), after: after.clone() })
}

fn diff_by_id(
    before: impl Iterator<Item = (String, Value)>,
    after: impl Iterator<Item = (String, Value)>,
) -> ElementDiff {
    let before: BTreeMap<String, Value> = before.collect();
    let after: BTreeMap<String, Value> = after.collect();
    let mut diff = ElementDiff::default();
    for (id, old) in &before {
        match after.get(id) {
            None => diff.removed.push(old.clone()),
            Some(new) if new != old => {
                diff.changed.push(ElementChange { id: id.clone(), before: old.clone(), after: new.clone() })
            }
            Some(_) => {}
        }
    }
    diff.added = after.iter().filter(|(id, _)| !before.contains_key(*id)).map(|(_, v)| v.clone()).collect();
    diff
}

fn to_json(element: &impl Serialize) -> Value {
    serde_json::to_value(element).expect("nodes and edges serialize to JSON")
}

#[cfg(test)]
mod tests {
    use event_schemas::types::WorkflowDefinition;
    use serde_json::json;

    use super::*;

    fn state(version: i64, name: &str, tags: &[&str], definition: Value) -> WorkflowState {
        WorkflowState {
            version,
            name: name.into(),
            description: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            status: "draft".into(),
            definition: serde_json::from_value::<WorkflowDefinition>(definition).unwrap().into(),
            ..WorkflowState::default()
        }
    }

    fn node(id: &str, name: &str) -> Value {
        json!({"id": id, "type": "action", "name": name, "position": {"x": 0.0, "y": 0.0}, "config": {}})
    }

    #[test]
    fn reports_added_removed_and_changed_elements_and_details() {
        let before = state(
            1,
            "old",
            &["a", "b"],
            json!({"nodes": [node("n1", "one"), node("n2", "two")],
                   "edges": [{"id": "e1", "source": "n1", "target": "n2"}]}),
        );
        let after =
            state(4, "new", &["b", "c"], json!({"nodes": [node("n1", "ONE"), node("n3", "three")], "edges": []}));
        let d = diff(&before, &after);
        assert_eq!((d.from_version, d.to_version), (1, 4));
        assert_eq!(d.nodes.added, vec![node("n3", "three")]);
        assert_eq!(d.nodes.removed, vec![node("n2", "two")]);
        assert_eq!(d.nodes.changed.len(), 1);
        assert_eq!(d.nodes.changed[0].id, "n1");
        assert_eq!(d.nodes.changed[0].after["name"], "ONE");
        assert_eq!(d.edges.removed.len(), 1);
        assert!(d.edges.added.is_empty() && d.edges.changed.is_empty());
        assert_eq!(d.name, Some(FieldChange { before: "old".into(), after: "new".into() }));
        assert_eq!((d.tags_added, d.tags_removed), (vec!["c".to_string()], vec!["a".to_string()]));
        assert!(d.description.is_none() && d.status.is_none());
    }

    #[test]
    fn a_state_has_no_difference_from_itself() {
        let s = state(2, "same", &["x"], json!({"nodes": [node("n1", "one")], "edges": []}));
        assert!(diff(&s, &s).is_empty());
    }
}
