//! The rules of a workflow definition (CONTRACT.md): at most 200 nodes and 500 edges, unique node
//! and edge ids, edges between existing nodes, an acyclic graph with at least one trigger, and no
//! script patterns in names, configs or conditions. Every violation is its own field error.

use std::collections::{HashMap, HashSet, VecDeque};

use event_schemas::types::{NodeType, WorkflowDefinition};

use super::markup::{contains_markup, json_contains_markup};
use super::{FieldError, ValidationErrors};

pub const MAX_NODES: usize = 200;
pub const MAX_EDGES: usize = 500;
const MAX_ID_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 255;
const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// A definition that satisfies every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDefinition(WorkflowDefinition);

impl ValidDefinition {
    /// Checks every rule; field names are rooted at `definition`.
    pub fn parse(definition: WorkflowDefinition) -> Result<Self, ValidationErrors> {
        let mut errors = Vec::new();
        check_sizes(&definition, &mut errors);
        check_nodes(&definition, &mut errors);
        check_edges(&definition, &mut errors);
        if errors.is_empty() {
            // Only a graph whose edges all resolve can be checked for cycles.
            check_acyclic(&definition, &mut errors);
        }
        if errors.is_empty() { Ok(Self(definition)) } else { Err(ValidationErrors(errors)) }
    }

    pub fn as_definition(&self) -> &WorkflowDefinition {
        &self.0
    }

    pub fn into_inner(self) -> WorkflowDefinition {
        self.0
    }
}

fn check_sizes(definition: &WorkflowDefinition, errors: &mut Vec<FieldError>) {
    if definition.nodes.len() > MAX_NODES {
        errors.push(FieldError::new(
            "definition.nodes",
            "too_many_nodes",
            format!("at most {MAX_NODES} nodes (got {})", definition.nodes.len()),
        ));
    }
    if definition.edges.len() > MAX_EDGES {
        errors.push(FieldError::new(
            "definition.edges",
            "too_many_edges",
            format!("at most {MAX_EDGES} edges (got {})", definition.edges.len()),
        ));
    }
    if !definition.nodes.iter().any(|n| n.node_type == NodeType::Trigger) {
        errors.push(FieldError::new("definition.nodes", "missing_trigger", "needs at least one trigger node"));
    }
}

fn check_id(field: String, id: &str, errors: &mut Vec<FieldError>) -> bool {
    let valid = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !valid {
        errors.push(FieldError::new(
            field,
            "invalid_id",
            format!("must be 1-{MAX_ID_CHARS} ASCII letters, digits, '-', '_', '.' or ':'"),
        ));
    }
    valid
}

fn check_nodes(definition: &WorkflowDefinition, errors: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (i, node) in definition.nodes.iter().enumerate() {
        let field = |name: &str| format!("definition.nodes[{i}].{name}");
        if check_id(field("id"), &node.id, errors) && !seen.insert(node.id.as_str()) {
            errors.push(FieldError::new(
                field("id"),
                "duplicate_node_id",
                format!("node id {:?} is used twice", node.id),
            ));
        }
        if node.name.trim().is_empty() || node.name.chars().count() > MAX_NAME_CHARS {
            errors.push(FieldError::new(field("name"), "invalid_length", "must be 1-255 characters"));
        } else if contains_markup(&node.name) {
            errors.push(FieldError::new(field("name"), "forbidden_content", "must not contain script patterns"));
        }
        let config = serde_json::Value::Object(node.config.clone());
        if config.to_string().len() > MAX_CONFIG_BYTES {
            errors.push(FieldError::new(field("config"), "too_long", "must be at most 64 KiB of JSON"));
        } else if json_contains_markup(&config) {
            errors.push(FieldError::new(field("config"), "forbidden_content", "must not contain script patterns"));
        }
    }
}

fn check_edges(definition: &WorkflowDefinition, errors: &mut Vec<FieldError>) {
    let node_ids: HashSet<&str> = definition.nodes.iter().map(|n| n.id.as_str()).collect();
    let mut seen = HashSet::new();
    for (j, edge) in definition.edges.iter().enumerate() {
        let field = |name: &str| format!("definition.edges[{j}].{name}");
        if check_id(field("id"), &edge.id, errors) && !seen.insert(edge.id.as_str()) {
            errors.push(FieldError::new(
                field("id"),
                "duplicate_edge_id",
                format!("edge id {:?} is used twice", edge.id),
            ));
        }
        for (end, node) in [("source", &edge.source), ("target", &edge.target)] {
            if !node_ids.contains(node.as_str()) {
                errors.push(FieldError::new(field(end), "unknown_node", format!("no node has id {node:?}")));
            }
        }
        if let Some(condition) = &edge.condition
            && (condition.chars().count() > 1000 || contains_markup(condition))
        {
            errors.push(FieldError::new(
                field("condition"),
                "invalid_condition",
                "must be at most 1000 characters without script patterns",
            ));
        }
    }
}

/// Kahn's algorithm: whatever cannot be put in topological order lies on or behind a cycle.
fn check_acyclic(definition: &WorkflowDefinition, errors: &mut Vec<FieldError>) {
    let mut incoming: HashMap<&str, usize> = definition.nodes.iter().map(|n| (n.id.as_str(), 0)).collect();
    let mut outgoing: HashMap<&str, Vec<&str>> = HashMap::new();
    for edge in &definition.edges {
        *incoming.entry(edge.target.as_str()).or_default() += 1;
        outgoing.entry(edge.source.as_str()).or_default().push(edge.target.as_str());
    }
    let mut ready: VecDeque<&str> = incoming.iter().filter(|(_, n)| **n == 0).map(|(id, _)| *id).collect();
    let mut ordered = 0;
    while let Some(id) = ready.pop_front() {
        ordered += 1;
        for target in outgoing.get(id).into_iter().flatten() {
            let remaining = incoming.get_mut(target).expect("edges were checked to reference nodes");
            *remaining -= 1;
            if *remaining == 0 {
                ready.push_back(target);
            }
        }
    }
    if ordered < definition.nodes.len() {
        let mut stuck: Vec<&str> = incoming.iter().filter(|(_, n)| **n > 0).map(|(id, _)| *id).collect();
        stuck.sort_unstable();
        errors.push(FieldError::new(
            "definition.edges",
            "cycle",
            format!("the graph must be acyclic; these nodes are on or after a cycle: {}", stuck.join(", ")),
        ));
    }
}

#[cfg(test)]
mod tests {
    use event_schemas::types::{Edge, Node, Position};

    use super::*;

    fn node(id: &str, node_type: NodeType) -> Node {
        Node {
            id: id.into(),
            node_type,
            name: format!("Node {id}"),
            position: Position { x: 0.0, y: 0.0 },
            config: Default::default(),
        }
    }

    fn edge(id: &str, source: &str, target: &str) -> Edge {
        Edge { id: id.into(), source: source.into(), target: target.into(), condition: None }
    }

    fn codes(definition: WorkflowDefinition) -> Vec<(String, &'static str)> {
        match ValidDefinition::parse(definition) {
            Ok(_) => vec![],
            Err(errors) => errors.0.into_iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    fn chain() -> WorkflowDefinition {
        WorkflowDefinition {
            nodes: vec![node("t", NodeType::Trigger), node("a", NodeType::Action), node("b", NodeType::Action)],
            edges: vec![edge("e1", "t", "a"), edge("e2", "a", "b")],
        }
    }

    #[test]
    fn a_simple_chain_is_valid() {
        assert_eq!(codes(chain()), vec![]);
    }

    #[test]
    fn each_rule_has_its_own_field_error() {
        let mut d = chain();
        d.nodes[2].id = "a".into();
        assert!(codes(d).contains(&("definition.nodes[2].id".into(), "duplicate_node_id")));

        let mut d = chain();
        d.edges[1].target = "zzz".into();
        assert_eq!(codes(d), [("definition.edges[1].target".into(), "unknown_node")]);

        let mut d = chain();
        d.nodes[0].node_type = NodeType::Action;
        assert_eq!(codes(d), [("definition.nodes".into(), "missing_trigger")]);

        let mut d = chain();
        d.edges.push(edge("e3", "b", "a"));
        assert_eq!(codes(d), [("definition.edges".into(), "cycle")]);

        let mut d = chain();
        d.edges.push(edge("loop", "b", "b"));
        assert_eq!(codes(d), [("definition.edges".into(), "cycle")]);

        let mut d = chain();
        d.edges[1].id = "e1".into();
        assert_eq!(codes(d), [("definition.edges[1].id".into(), "duplicate_edge_id")]);

        let mut d = chain();
        d.nodes[1].name = "<script>x".into();
        assert_eq!(codes(d), [("definition.nodes[1].name".into(), "forbidden_content")]);

        let mut d = chain();
        d.nodes[1].config.insert("url".into(), "javascript:alert(1)".into());
        assert_eq!(codes(d), [("definition.nodes[1].config".into(), "forbidden_content")]);

        let mut d = chain();
        d.edges[0].condition = Some("x onclick=y".into());
        assert_eq!(codes(d), [("definition.edges[0].condition".into(), "invalid_condition")]);
    }

    #[test]
    fn size_limits_are_exact() {
        let mut d = WorkflowDefinition { nodes: vec![node("t", NodeType::Trigger)], edges: vec![] };
        d.nodes.extend((1..MAX_NODES).map(|i| node(&format!("n{i}"), NodeType::Action)));
        d.edges.extend((0..MAX_EDGES).map(|j| edge(&format!("e{j}"), "t", &format!("n{}", 1 + j % 199))));
        assert_eq!(codes(d.clone()), vec![]);

        d.nodes.push(node("extra", NodeType::Action));
        d.edges.push(edge("extra", "t", "extra"));
        let found = codes(d);
        assert!(found.contains(&("definition.nodes".into(), "too_many_nodes")));
        assert!(found.contains(&("definition.edges".into(), "too_many_edges")));
    }
}
