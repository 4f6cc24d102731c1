//! Input validation: raw values from outside are parsed into validated newtypes here, and every
//! refusal names the field it concerns.

mod definition;
mod markup;
mod text;

pub use definition::{MAX_EDGES, MAX_NODES, ValidDefinition};
pub use markup::contains_markup;
pub use text::{
    CommitMessage, Description, Email, KeyHash, KeyName, KeyPrefix, PersonName, Settings, Slug, Tags, TeamName,
    WorkflowName, WorkspaceName,
};

/// One refused input: which field, a stable machine code, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every field error found in one input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ValidationErrors(pub Vec<FieldError>);

impl From<FieldError> for ValidationErrors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}
