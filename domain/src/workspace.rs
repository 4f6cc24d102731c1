//! The workspace aggregate: the workspace itself, its plan and settings, its members and teams.

use std::collections::{BTreeMap, BTreeSet};

use event_schemas::WorkspaceEvent;
use event_schemas::types::{Plan, Role};
use event_schemas::workspace::*;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::quotas::quotas;
use crate::validation::{Email, PersonName, Settings, Slug, TeamName, WorkspaceName};

#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceCommand {
    Create { workspace_id: Uuid, name: WorkspaceName, slug: Slug, plan: Plan },
    Rename { name: WorkspaceName },
    ChangePlan { plan: Plan },
    ChangeSettings { settings: Settings },
    AddMember { user_id: Uuid, email: Email, name: Option<PersonName>, role: Role },
    ChangeMemberRole { user_id: Uuid, role: Role },
    RemoveMember { user_id: Uuid },
    CreateTeam { team_id: Uuid, name: TeamName },
    AddTeamMember { team_id: Uuid, user_id: Uuid },
    RemoveTeamMember { team_id: Uuid, user_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("the workspace already exists")]
    AlreadyExists,
    #[error("the workspace does not exist")]
    NotFound,
    #[error("user {0} is already a member")]
    AlreadyMember(Uuid),
    #[error("another member already has the email {0}")]
    EmailTaken(String),
    #[error("user {0} is not a member")]
    MemberNotFound(Uuid),
    #[error("the last admin cannot be removed or demoted")]
    LastAdmin,
    #[error("the {plan} plan allows at most {limit} members")]
    MemberQuotaExceeded { plan: &'static str, limit: usize },
    #[error("team {0} does not exist")]
    TeamNotFound(Uuid),
    #[error("team {0} already exists")]
    TeamExists(Uuid),
    #[error("a team named {0:?} already exists")]
    TeamNameTaken(String),
    #[error("user {user_id} is already in team {team_id}")]
    AlreadyInTeam { team_id: Uuid, user_id: Uuid },
    #[error("user {user_id} is not in team {team_id}")]
    NotInTeam { team_id: Uuid, user_id: Uuid },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub name: String,
    pub members: BTreeSet<Uuid>,
}

/// The state a workspace's decisions need.
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub version: i64,
    pub id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub plan: Plan,
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub members: BTreeMap<Uuid, Member>,
    pub teams: BTreeMap<Uuid, Team>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            version: 0,
            id: None,
            name: String::new(),
            slug: String::new(),
            plan: Plan::Free,
            settings: Default::default(),
            members: BTreeMap::new(),
            teams: BTreeMap::new(),
        }
    }
}

impl Workspace {
    pub fn admin_count(&self) -> usize {
        self.members.values().filter(|m| m.role == Role::Admin).count()
    }

    fn member(&self, user_id: Uuid) -> Result<&Member, WorkspaceError> {
        self.members.get(&user_id).ok_or(WorkspaceError::MemberNotFound(user_id))
    }

    fn team(&self, team_id: Uuid) -> Result<&Team, WorkspaceError> {
        self.teams.get(&team_id).ok_or(WorkspaceError::TeamNotFound(team_id))
    }

    /// Refuses a change that would leave a workspace that had an admin without one.
    fn ensure_not_last_admin(&self, user_id: Uuid) -> Result<(), WorkspaceError> {
        let is_admin = self.members.get(&user_id).is_some_and(|m| m.role == Role::Admin);
        if is_admin && self.admin_count() == 1 { Err(WorkspaceError::LastAdmin) } else { Ok(()) }
    }

    fn decide_existing(&self, command: &WorkspaceCommand) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        use WorkspaceCommand as C;
        let event: WorkspaceEvent = match command {
            C::Create { .. } => return Err(WorkspaceError::AlreadyExists),
            C::Rename { name } if name.as_str() == self.name => return Ok(vec![]),
            C::Rename { name } => WorkspaceRenamed { name: name.as_str().to_owned() }.into(),
            C::ChangePlan { plan } if *plan == self.plan => return Ok(vec![]),
            C::ChangePlan { plan } => {
                let limit = quotas(*plan).max_members;
                if self.members.len() > limit {
                    return Err(WorkspaceError::MemberQuotaExceeded { plan: plan.as_str(), limit });
                }
                WorkspacePlanChanged { from: self.plan, to: *plan }.into()
            }
            C::ChangeSettings { settings } => {
                let settings = settings.clone().into_inner();
                if settings == self.settings {
                    return Ok(vec![]);
                }
                WorkspaceSettingsChanged { settings }.into()
            }
            C::AddMember { user_id, email, name, role } => {
                if self.members.contains_key(user_id) {
                    return Err(WorkspaceError::AlreadyMember(*user_id));
                }
                if self.members.values().any(|m| m.email == email.as_str()) {
                    return Err(WorkspaceError::EmailTaken(email.as_str().to_owned()));
                }
                let limit = quotas(self.plan).max_members;
                if self.members.len() >= limit {
                    return Err(WorkspaceError::MemberQuotaExceeded { plan: self.plan.as_str(), limit });
                }
                MemberAdded {
                    user_id: *user_id,
                    email: email.as_str().to_owned(),
                    name: name.clone().map(PersonName::into_inner),
                    role: *role,
                }
                .into()
            }
            C::ChangeMemberRole { user_id, role } => {
                let from = self.member(*user_id)?.role;
                if from == *role {
                    return Ok(vec![]);
                }
                self.ensure_not_last_admin(*user_id)?;
                MemberRoleChanged { user_id: *user_id, from, to: *role }.into()
            }
            C::RemoveMember { user_id } => {
                self.member(*user_id)?;
                self.ensure_not_last_admin(*user_id)?;
                MemberRemoved { user_id: *user_id }.into()
            }
            C::CreateTeam { team_id, name } => {
                if self.teams.contains_key(team_id) {
                    return Err(WorkspaceError::TeamExists(*team_id));
                }
                if self.teams.values().any(|t| t.name == name.as_str()) {
                    return Err(WorkspaceError::TeamNameTaken(name.as_str().to_owned()));
                }
                TeamCreated { team_id: *team_id, name: name.as_str().to_owned() }.into()
            }
            C::AddTeamMember { team_id, user_id } => {
                let team = self.team(*team_id)?;
                self.member(*user_id)?;
                if team.members.contains(user_id) {
                    return Err(WorkspaceError::AlreadyInTeam { team_id: *team_id, user_id: *user_id });
                }
                TeamMemberAdded { team_id: *team_id, user_id: *user_id }.into()
            }
            C::RemoveTeamMember { team_id, user_id } => {
                if !self.team(*team_id)?.members.contains(user_id) {
                    return Err(WorkspaceError::NotInTeam { team_id: *team_id, user_id: *user_id });
                }
                TeamMemberRemoved { team_id: *team_id, user_id: *user_id }.into()
            }
        };
        Ok(vec![event])
    }
}

impl Aggregate for Workspace {
    type Command = WorkspaceCommand;
    type Event = WorkspaceEvent;
    type Error = WorkspaceError;

    fn decide(&self, command: &WorkspaceCommand) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        match (self.id, command) {
            (None, WorkspaceCommand::Create { workspace_id, name, slug, plan }) => Ok(vec![
                WorkspaceCreated {
                    workspace_id: *workspace_id,
                    name: name.as_str().to_owned(),
                    slug: slug.as_str().to_owned(),
                    plan: *plan,
                }
                .into(),
            ]),
            (None, _) => Err(WorkspaceError::NotFound),
            (Some(_), command) => self.decide_existing(command),
        }
    }

    fn evolve(&mut self, event: &WorkspaceEvent) {
        self.version += 1;
        match event {
            WorkspaceEvent::Created(e) => {
                self.id = Some(e.workspace_id);
                self.name = e.name.clone();
                self.slug = e.slug.clone();
                self.plan = e.plan;
            }
            WorkspaceEvent::Renamed(e) => self.name = e.name.clone(),
            WorkspaceEvent::PlanChanged(e) => self.plan = e.to,
            WorkspaceEvent::SettingsChanged(e) => self.settings = e.settings.clone(),
            WorkspaceEvent::MemberAdded(e) => {
                let member = Member { email: e.email.clone(), name: e.name.clone(), role: e.role };
                self.members.insert(e.user_id, member);
            }
            WorkspaceEvent::MemberRoleChanged(e) => {
                if let Some(member) = self.members.get_mut(&e.user_id) {
                    member.role = e.to;
                }
            }
            WorkspaceEvent::MemberRemoved(e) => {
                self.members.remove(&e.user_id);
                for team in self.teams.values_mut() {
                    team.members.remove(&e.user_id);
                }
            }
            WorkspaceEvent::TeamCreated(e) => {
                self.teams.insert(e.team_id, Team { name: e.name.clone(), members: BTreeSet::new() });
            }
            WorkspaceEvent::TeamMemberAdded(e) => {
                if let Some(team) = self.teams.get_mut(&e.team_id) {
                    team.members.insert(e.user_id);
                }
            }
            WorkspaceEvent::TeamMemberRemoved(e) => {
                if let Some(team) = self.teams.get_mut(&e.team_id) {
                    team.members.remove(&e.user_id);
                }
            }
        }
    }

    fn version(&self) -> i64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fold;

    const WS: Uuid = Uuid::from_u128(1);
    const ADA: Uuid = Uuid::from_u128(10);
    const BOB: Uuid = Uuid::from_u128(11);
    const TEAM: Uuid = Uuid::from_u128(20);

    fn created() -> WorkspaceEvent {
        WorkspaceCreated { workspace_id: WS, name: "Acme".into(), slug: "acme".into(), plan: Plan::Free }.into()
    }

    fn added(user_id: Uuid, email: &str, role: Role) -> WorkspaceEvent {
        MemberAdded { user_id, email: email.into(), name: None, role }.into()
    }

    fn add_member(user_id: Uuid, email: &str, role: Role) -> WorkspaceCommand {
        WorkspaceCommand::AddMember { user_id, email: Email::parse(email).unwrap(), name: None, role }
    }

    fn given(events: &[WorkspaceEvent]) -> Workspace {
        fold(events)
    }

    #[test]
    fn create_then_create_again_is_refused() {
        let command = WorkspaceCommand::Create {
            workspace_id: WS,
            name: WorkspaceName::parse("Acme").unwrap(),
            slug: Slug::parse("acme").unwrap(),
            plan: Plan::Free,
        };
        assert_eq!(given(&[]).decide(&command), Ok(vec![created()]));
        assert_eq!(given(&[created()]).decide(&command), Err(WorkspaceError::AlreadyExists));
    }

    #[test]
    fn commands_on_a_missing_workspace_are_not_found() {
        let rename = WorkspaceCommand::Rename { name: WorkspaceName::parse("X").unwrap() };
        assert_eq!(given(&[]).decide(&rename), Err(WorkspaceError::NotFound));
    }

    #[test]
    fn renaming_to_the_same_name_changes_nothing() {
        let rename = WorkspaceCommand::Rename { name: WorkspaceName::parse("Acme").unwrap() };
        assert_eq!(given(&[created()]).decide(&rename), Ok(vec![]));
    }

    #[test]
    fn members_are_unique_by_id_and_email() {
        let state = given(&[created(), added(ADA, "ada@example.com", Role::Admin)]);
        assert_eq!(
            state.decide(&add_member(ADA, "x@example.com", Role::Viewer)),
            Err(WorkspaceError::AlreadyMember(ADA))
        );
        assert_eq!(
            state.decide(&add_member(BOB, "ADA@example.com", Role::Viewer)),
            Err(WorkspaceError::EmailTaken("ada@example.com".into()))
        );
        assert_eq!(
            state.decide(&add_member(BOB, "bob@example.com", Role::Viewer)),
            Ok(vec![added(BOB, "bob@example.com", Role::Viewer)])
        );
    }

    #[test]
    fn the_last_admin_cannot_be_removed_or_demoted() {
        let state = given(&[
            created(),
            added(ADA, "ada@example.com", Role::Admin),
            added(BOB, "bob@example.com", Role::Developer),
        ]);
        assert_eq!(state.decide(&WorkspaceCommand::RemoveMember { user_id: ADA }), Err(WorkspaceError::LastAdmin));
        let demote = WorkspaceCommand::ChangeMemberRole { user_id: ADA, role: Role::Viewer };
        assert_eq!(state.decide(&demote), Err(WorkspaceError::LastAdmin));

        let promoted = MemberRoleChanged { user_id: BOB, from: Role::Developer, to: Role::Admin };
        let state = given(&[
            created(),
            added(ADA, "ada@example.com", Role::Admin),
            added(BOB, "bob@example.com", Role::Developer),
            promoted.into(),
        ]);
        assert_eq!(
            state.decide(&WorkspaceCommand::RemoveMember { user_id: ADA }),
            Ok(vec![MemberRemoved { user_id: ADA }.into()])
        );
    }

    #[test]
    fn the_member_quota_follows_the_plan() {
        let mut events = vec![created()];
        events.extend((0..5).map(|i| added(Uuid::from_u128(100 + i), &format!("u{i}@example.com"), Role::Viewer)));
        let state = given(&events);
        assert_eq!(
            state.decide(&add_member(BOB, "bob@example.com", Role::Viewer)),
            Err(WorkspaceError::MemberQuotaExceeded { plan: "free", limit: 5 })
        );
        let upgraded =
            given(&[events.clone(), vec![WorkspacePlanChanged { from: Plan::Free, to: Plan::Pro }.into()]].concat());
        assert!(upgraded.decide(&add_member(BOB, "bob@example.com", Role::Viewer)).is_ok());
    }

    #[test]
    fn teams_hold_only_members_and_lose_removed_ones() {
        let team_created: WorkspaceEvent = TeamCreated { team_id: TEAM, name: "Ops".into() }.into();
        let state = given(&[created(), added(ADA, "ada@example.com", Role::Admin), team_created.clone()]);
        let add_bob = WorkspaceCommand::AddTeamMember { team_id: TEAM, user_id: BOB };
        assert_eq!(state.decide(&add_bob), Err(WorkspaceError::MemberNotFound(BOB)));
        let create_again =
            WorkspaceCommand::CreateTeam { team_id: Uuid::from_u128(21), name: TeamName::parse("Ops").unwrap() };
        assert_eq!(state.decide(&create_again), Err(WorkspaceError::TeamNameTaken("Ops".into())));

        let state = given(&[
            created(),
            added(ADA, "ada@example.com", Role::Admin),
            added(BOB, "bob@example.com", Role::Viewer),
            team_created,
            TeamMemberAdded { team_id: TEAM, user_id: BOB }.into(),
            MemberRemoved { user_id: BOB }.into(),
        ]);
        assert!(state.teams[&TEAM].members.is_empty());
        assert_eq!(state.version, 6);
    }
}
