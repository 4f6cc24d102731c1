//! The roles-and-permissions matrix of CONTRACT.md.

use event_schemas::types::Role;

/// Something a caller may be allowed to do in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    WorkflowsCreate,
    WorkflowsEdit,
    WorkflowsDelete,
    WorkflowsExecute,
    ExecutionsView,
    ExecutionsCancel,
    ApprovalsDecide,
    MembersManage,
    ApiKeysManage,
    SettingsManage,
    AuditView,
    /// Reading workflows, members and the workspace.
    Read,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::WorkflowsCreate,
        Permission::WorkflowsEdit,
        Permission::WorkflowsDelete,
        Permission::WorkflowsExecute,
        Permission::ExecutionsView,
        Permission::ExecutionsCancel,
        Permission::ApprovalsDecide,
        Permission::MembersManage,
        Permission::ApiKeysManage,
        Permission::SettingsManage,
        Permission::AuditView,
        Permission::Read,
    ];

    /// The dotted name used in docs and error messages, e.g. `workflows.create`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::WorkflowsCreate => "workflows.create",
            Permission::WorkflowsEdit => "workflows.edit",
            Permission::WorkflowsDelete => "workflows.delete",
            Permission::WorkflowsExecute => "workflows.execute",
            Permission::ExecutionsView => "executions.view",
            Permission::ExecutionsCancel => "executions.cancel",
            Permission::ApprovalsDecide => "approvals.decide",
            Permission::MembersManage => "members.manage",
            Permission::ApiKeysManage => "apikeys.manage",
            Permission::SettingsManage => "settings.manage",
            Permission::AuditView => "audit.view",
            Permission::Read => "read",
        }
    }
}

/// What a caller may do: its own role, capped by the role of the member it acts for (an API key
/// never has more than its member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub member_role: Option<Role>,
}

impl Grant {
    pub fn can(self, permission: Permission) -> bool {
        permits(self.role, permission) && self.member_role.is_none_or(|role| permits(role, permission))
    }

    /// Whether this caller may hand out `role` (to a key or a member).
    pub fn can_grant(self, role: Role) -> bool {
        can_grant(self.role, role) && self.member_role.is_none_or(|member| can_grant(member, role))
    }
}

/// Whether `role` holds `permission`.
pub fn permits(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Developer => matches!(
            permission,
            WorkflowsCreate
                | WorkflowsEdit
                | WorkflowsDelete
                | WorkflowsExecute
                | ExecutionsView
                | ExecutionsCancel
                | Read
        ),
        Role::Operator => matches!(permission, WorkflowsExecute | ExecutionsView | ExecutionsCancel | Read),
        Role::Viewer => matches!(permission, ExecutionsView | AuditView | Read),
    }
}

/// Whether a caller with role `granter` may hand out `granted` (to an API key or a member):
/// only if every permission of `granted` is one the granter holds.
pub fn can_grant(granter: Role, granted: Role) -> bool {
    Permission::ALL.into_iter().all(|p| !permits(granted, p) || permits(granter, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn matrix_matches_the_contract() {
        let table: [(Permission, [bool; 4]); 12] = [
            // admin, developer, operator, viewer
            (WorkflowsCreate, [true, true, false, false]),
            (WorkflowsEdit, [true, true, false, false]),
            (WorkflowsDelete, [true, true, false, false]),
            (WorkflowsExecute, [true, true, true, false]),
            (ExecutionsView, [true, true, true, true]),
            (ExecutionsCancel, [true, true, true, false]),
            (ApprovalsDecide, [true, false, false, false]),
            (MembersManage, [true, false, false, false]),
            (ApiKeysManage, [true, false, false, false]),
            (SettingsManage, [true, false, false, false]),
            (AuditView, [true, false, false, true]),
            (Read, [true, true, true, true]),
        ];
        for (permission, expected) in table {
            for (role, allowed) in Role::ALL.into_iter().zip(expected) {
                assert_eq!(permits(role, permission), allowed, "{role:?} {}", permission.as_str());
            }
        }
    }

    #[test]
    fn nobody_grants_more_than_they_hold() {
        assert!(Role::ALL.into_iter().all(|r| can_grant(Role::Admin, r)));
        assert!(can_grant(Role::Developer, Role::Operator));
        // A viewer may read the audit trail; a developer may not, so cannot hand that out.
        assert!(!can_grant(Role::Developer, Role::Viewer));
        assert!(!can_grant(Role::Operator, Role::Developer));
        assert!(!can_grant(Role::Viewer, Role::Operator));
        assert!(Role::ALL.into_iter().all(|r| can_grant(r, r)));
    }
}
