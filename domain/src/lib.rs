//! FlowFuse's pure domain: aggregates as `decide(state, command) -> events` and
//! `evolve(state, event)`, with no IO of any kind.
//!
//! - [`aggregate`]: the [`Aggregate`] trait every aggregate implements, and `fold`;
//! - [`workspace`], [`api_key`], [`workflow`]: one file per aggregate, with its commands, state,
//!   error enum and Given/When/Then tests;
//! - [`validation`]: validated newtypes parsed at the edge (`WorkflowName::parse`, …) and the
//!   workflow-definition rules, each reported as a field-level error;
//! - [`key_format`]: the format of API keys and the hash the security index keeps of them;
//! - [`permissions`]: the roles-and-permissions matrix of CONTRACT.md as pure functions;
//! - [`quotas`]: what each plan allows.

pub mod aggregate;
pub mod api_key;
pub mod key_format;
pub mod permissions;
pub mod quotas;
pub mod validation;
pub mod workflow;
pub mod workspace;

pub use aggregate::{Aggregate, fold};
pub use api_key::{ApiKey, ApiKeyCommand, ApiKeyError};
pub use permissions::{Grant, Permission, can_grant, permits};
pub use validation::{FieldError, ValidationErrors};
pub use workflow::{Workflow, WorkflowCommand, WorkflowError, WorkflowStatus};
pub use workspace::{Workspace, WorkspaceCommand, WorkspaceError};
