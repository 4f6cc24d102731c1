//! The readable summary of each event, for the audit log.

use event_schemas::{ApiKeyEvent, Event, WorkflowEvent, WorkspaceEvent};

/// A sentence for people reading the audit log.
pub(super) fn summary(event: &Event) -> String {
    match event {
        Event::Workspace(e) => match e {
            WorkspaceEvent::Created(c) => format!("workspace {:?} created on the {} plan", c.name, c.plan.as_str()),
            WorkspaceEvent::Renamed(r) => format!("workspace renamed to {:?}", r.name),
            WorkspaceEvent::PlanChanged(p) => format!("plan changed from {} to {}", p.from.as_str(), p.to.as_str()),
            WorkspaceEvent::SettingsChanged(_) => "workspace settings changed".into(),
            WorkspaceEvent::MemberAdded(m) => format!("member {} added as {}", m.email, m.role.as_str()),
            WorkspaceEvent::MemberRoleChanged(m) => {
                format!("member {} changed from {} to {}", m.user_id, m.from.as_str(), m.to.as_str())
            }
            WorkspaceEvent::MemberRemoved(m) => format!("member {} removed", m.user_id),
            WorkspaceEvent::TeamCreated(t) => format!("team {:?} created", t.name),
            WorkspaceEvent::TeamMemberAdded(t) => format!("member {} joined team {}", t.user_id, t.team_id),
            WorkspaceEvent::TeamMemberRemoved(t) => format!("member {} left team {}", t.user_id, t.team_id),
        },
        Event::ApiKey(e) => match e {
            ApiKeyEvent::Issued(i) => {
                format!("API key {:?} ({}) issued with role {}", i.name, i.prefix, i.role.as_str())
            }
            ApiKeyEvent::Rotated(r) => format!("API key rotated; new prefix {}", r.prefix),
            ApiKeyEvent::Revoked(_) => "API key revoked".into(),
        },
        Event::Workflow(e) => match e {
            WorkflowEvent::Created(c) => format!("workflow {:?} created", c.name),
            WorkflowEvent::DefinitionChanged(d) => format!("definition changed: {}", d.message),
            WorkflowEvent::DetailsChanged(d) => format!("details changed; name {:?}", d.name),
            WorkflowEvent::Published(p) => format!("version {} published", p.version),
            WorkflowEvent::Promoted(p) => format!("version {} promoted to {:?}", p.version, p.environment),
            WorkflowEvent::Archived(_) => "workflow archived".into(),
            WorkflowEvent::Restored(_) => "workflow restored".into(),
            WorkflowEvent::RolledBack(r) => format!("rolled back to version {}", r.to_version),
        },
    }
}
