//! Who may do what: the one place that decides. Handlers describe the call (an [`Action`] on a
//! [`Target`] read from the watch cache) and obey the [`Decision`]; they never decide alone.

use crate::airlock::state::{Direction, State as AirlockState};
use crate::identity::{PlatformRole, Principal};
use crate::resources::Workspace;
use crate::resources::{MemberRole, Project, ProjectPhase};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    ListProjects,
    CreateProject,
    ReadProject,
    ApproveProject,
    EditMembers,
    SuspendProject,
    ResumeProject,
    CloseProject,
    ListWorkspaces,
    CreateWorkspace,
    ReadWorkspace,
    StartWorkspace,
    StopWorkspace,
    DeleteWorkspace,
}

impl Action {
    /// The name used in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Action::ListProjects => "project.list",
            Action::CreateProject => "project.create",
            Action::ReadProject => "project.read",
            Action::ApproveProject => "project.approve",
            Action::EditMembers => "project.members",
            Action::SuspendProject => "project.suspend",
            Action::ResumeProject => "project.resume",
            Action::CloseProject => "project.close",
            Action::ListWorkspaces => "workspace.list",
            Action::CreateWorkspace => "workspace.create",
            Action::ReadWorkspace => "workspace.read",
            Action::StartWorkspace => "workspace.start",
            Action::StopWorkspace => "workspace.stop",
            Action::DeleteWorkspace => "workspace.delete",
        }
    }

    pub const ALL: [Action; 14] = [
        Action::ListProjects,
        Action::CreateProject,
        Action::ReadProject,
        Action::ApproveProject,
        Action::EditMembers,
        Action::SuspendProject,
        Action::ResumeProject,
        Action::CloseProject,
        Action::ListWorkspaces,
        Action::CreateWorkspace,
        Action::ReadWorkspace,
        Action::StartWorkspace,
        Action::StopWorkspace,
        Action::DeleteWorkspace,
    ];
}

/// What an action is about, as the cache knows it.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The platform as a whole (listing, creating projects).
    Platform,
    Project(&'a Project),
    Workspace(&'a Project, &'a Workspace),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        *self == Decision::Allow
    }
}

/// The caller's role in `project`, if a member.
pub fn membership(principal: &Principal, project: &Project) -> Option<MemberRole> {
    project
        .spec
        .members
        .iter()
        .find(|m| m.subject == principal.subject)
        .map(|m| m.role)
}

/// Which workspaces of a project a caller may see: all of them, or only their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkspaceView {
    All,
    Own,
}

pub fn workspace_view(principal: &Principal, project: &Project) -> WorkspaceView {
    if is_admin(principal) || membership(principal, project) == Some(MemberRole::Owner) {
        WorkspaceView::All
    } else {
        WorkspaceView::Own
    }
}

/// Whether a caller sees a project in listings (the same rule as reading it).
pub fn can_see_project(principal: &Principal, project: &Project) -> bool {
    decide(principal, Action::ReadProject, Target::Project(project)).allowed()
}

fn is_admin(principal: &Principal) -> bool {
    // A workspace credential never carries platform roles, but check the scope too: a
    // workspace must not administer anything.
    principal.project_scope().is_none() && principal.has(PlatformRole::Admin)
}

fn project_name(project: &Project) -> &str {
    project.metadata.name.as_deref().unwrap_or_default()
}

pub fn decide(principal: &Principal, action: Action, target: Target<'_>) -> Decision {
    let deny = |why: &str| Decision::Deny(why.to_string());
    // A workspace credential acts only inside its own project.
    if let Some(scope) = principal.project_scope() {
        match target {
            Target::Platform if action != Action::ListProjects => {
                return deny("a workspace credential cannot act outside its project");
            }
            Target::Project(p) | Target::Workspace(p, _) if project_name(p) != scope => {
                return deny("a workspace credential cannot act outside its project");
            }
            _ => {}
        }
    }
    let admin = is_admin(principal);
    match (action, target) {
        (Action::ListProjects, Target::Platform) => Decision::Allow,
        (Action::CreateProject, Target::Platform) => {
            if admin {
                Decision::Allow
            } else {
                deny("only platform admins create projects")
            }
        }
        (Action::ReadProject | Action::ListWorkspaces, Target::Project(p)) => {
            if admin || membership(principal, p).is_some() {
                Decision::Allow
            } else {
                deny("only the project's members and platform admins see it")
            }
        }
        (
            Action::ApproveProject
            | Action::EditMembers
            | Action::SuspendProject
            | Action::ResumeProject
            | Action::CloseProject,
            Target::Project(_),
        ) => {
            if admin {
                Decision::Allow
            } else {
                deny("only platform admins govern projects")
            }
        }
        (Action::CreateWorkspace, Target::Project(p)) => {
            if membership(principal, p).is_some() {
                Decision::Allow
            } else {
                deny("only the project's members create workspaces in it")
            }
        }
        (Action::ReadWorkspace, Target::Workspace(p, w)) => {
            let own = w.spec.owner == principal.subject && membership(principal, p).is_some();
            if own || workspace_view(principal, p) == WorkspaceView::All {
                Decision::Allow
            } else {
                deny("only the workspace's owner, the project's owners and platform admins see it")
            }
        }
        (Action::StartWorkspace, Target::Workspace(p, w)) => {
            if w.spec.owner == principal.subject && membership(principal, p).is_some() {
                Decision::Allow
            } else {
                deny("only the workspace's owner, while a project member, starts it")
            }
        }
        (Action::StopWorkspace | Action::DeleteWorkspace, Target::Workspace(p, w)) => {
            if (w.spec.owner == principal.subject && membership(principal, p).is_some()) || admin {
                Decision::Allow
            } else {
                deny("only the workspace's owner and platform admins stop or delete it")
            }
        }
        _ => deny("this action does not apply to this kind of target"),
    }
}

/// Whether the caller holds the reviewing role for a direction: output checkers review egress,
/// data stewards ingress. A workspace credential never reviews.
pub fn reviewer_role(principal: &Principal, direction: Direction) -> bool {
    principal.project_scope().is_none()
        && principal.has(match direction {
            Direction::Egress => PlatformRole::OutputChecker,
            Direction::Ingress => PlatformRole::DataSteward,
        })
}

fn in_scope(principal: &Principal, project: &str) -> bool {
    principal
        .project_scope()
        .is_none_or(|scope| scope == project)
}

/// Who may open an airlock request: project members for egress (from a workspace too); members
/// and data stewards for ingress.
pub fn airlock_create(principal: &Principal, project: &Project, direction: Direction) -> Decision {
    if !in_scope(principal, project_name(project)) {
        return Decision::Deny("a workspace credential cannot act outside its project".into());
    }
    let member = membership(principal, project).is_some();
    match direction {
        Direction::Egress if member => Decision::Allow,
        Direction::Ingress if member || reviewer_role(principal, direction) => Decision::Allow,
        Direction::Egress => Decision::Deny("only the project's members request egress".into()),
        Direction::Ingress => {
            Decision::Deny("only the project's members and data stewards request ingress".into())
        }
    }
}

/// Who may see a request (its state, files' hashes and checks, history): its author, the
/// project's members, platform admins, and holders of the reviewing role for its direction.
/// `project` is `None` once the project is gone; the records outlive it.
pub fn airlock_read(
    principal: &Principal,
    project: Option<&Project>,
    project_name: &str,
    author: &str,
    direction: Direction,
) -> Decision {
    if !in_scope(principal, project_name) {
        return Decision::Deny("a workspace credential cannot act outside its project".into());
    }
    let member = project.is_some_and(|p| membership(principal, p).is_some());
    if principal.subject == author
        || member
        || is_admin(principal)
        || reviewer_role(principal, direction)
    {
        Decision::Allow
    } else {
        Decision::Deny(
            "only the author, the project's members, reviewers and admins see a request".into(),
        )
    }
}

/// Who may list a project's requests: its members (a workspace credential, in its own project)
/// and platform admins.
pub fn airlock_list(
    principal: &Principal,
    project: Option<&Project>,
    project_name: &str,
) -> Decision {
    let member = project.is_some_and(|p| membership(principal, p).is_some());
    if in_scope(principal, project_name) && (member || is_admin(principal)) {
        Decision::Allow
    } else {
        Decision::Deny("only the project's members and admins list its requests".into())
    }
}

/// Who may fetch a file's bytes: reviewers (not the author) once it is submitted; the project's
/// members once an egress request is released, from outside the TRE (never before: that would be
/// a way out around review); the project's workspaces once an ingress request is released (their
/// inputs).
pub fn airlock_download(
    principal: &Principal,
    project: Option<&Project>,
    project_name: &str,
    author: &str,
    direction: Direction,
    state: AirlockState,
) -> Decision {
    let reviewing = matches!(
        state,
        AirlockState::InReview
            | AirlockState::Reviewed
            | AirlockState::Approved
            | AirlockState::Released
    );
    if reviewer_role(principal, direction) && principal.subject != author && reviewing {
        return Decision::Allow;
    }
    let member = project.is_some_and(|p| membership(principal, p).is_some());
    if direction == Direction::Egress
        && state == AirlockState::Released
        && member
        && principal.project_scope().is_none()
    {
        return Decision::Allow;
    }
    if direction == Direction::Ingress
        && state == AirlockState::Released
        && member
        && principal.project_scope() == Some(project_name)
    {
        return Decision::Allow;
    }
    Decision::Deny(
        "files are fetched by reviewers during review, and by the project's members once released"
            .into(),
    )
}

/// Who may read and export the audit log: platform admins only.
pub fn audit_read(principal: &Principal) -> Decision {
    if is_admin(principal) {
        Decision::Allow
    } else {
        Decision::Deny("only platform admins read the audit log".into())
    }
}

/// Who may use a workspace through the gateway: only its owner, signed in as a person (not from
/// a workspace), while a member of the project and the project is Active. Nobody else, not even
/// platform admins or the project's owners: a workspace holds its owner's view of the project's
/// data, and what leaves it must go through the airlock.
pub fn gateway(principal: &Principal, project: &Project, workspace: &Workspace) -> Decision {
    let deny = |why: &str| Decision::Deny(why.to_string());
    if principal.project_scope().is_some() {
        return deny("a workspace credential cannot open workspaces through the gateway");
    }
    if workspace.spec.owner != principal.subject {
        return deny("only the workspace's owner opens it");
    }
    if membership(principal, project).is_none() {
        return deny("the workspace's owner is no longer a member of the project");
    }
    let phase = project.status.as_ref().and_then(|s| s.phase);
    if phase != Some(ProjectPhase::Active) {
        let shown = phase.map_or_else(|| "not yet provisioned".to_string(), |p| format!("{p:?}"));
        return Decision::Deny(format!(
            "the project is {shown}; workspaces are open only while it is Active"
        ));
    }
    Decision::Allow
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::identity::Credential;
    use crate::resources::WorkspaceSpec;
    use crate::resources::{Member, ProjectSpec};

    fn project(name: &str) -> Project {
        let spec: ProjectSpec = serde_json::from_value(serde_json::json!({
            "title": "t", "purpose": "p", "startDate": "2026-01-01", "endDate": "2027-01-01",
            "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 2},
        }))
        .unwrap();
        let mut p = Project::new(name, spec);
        p.spec.members = vec![
            Member {
                subject: "olivia".into(),
                role: MemberRole::Owner,
            },
            Member {
                subject: "alice".into(),
                role: MemberRole::Researcher,
            },
            Member {
                subject: "bob".into(),
                role: MemberRole::Researcher,
            },
        ];
        p
    }

    fn workspace(owner: &str) -> Workspace {
        let mut w = Workspace::new(
            "w",
            serde_json::from_value::<WorkspaceSpec>(
                serde_json::json!({"owner": owner, "template": "jupyter"}),
            )
            .unwrap(),
        );
        w.metadata.namespace = Some("trellis-demo".into());
        w
    }

    fn person(subject: &str, roles: &[PlatformRole]) -> Principal {
        Principal {
            subject: subject.into(),
            name: None,
            email: None,
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
            credential: Credential::Bearer,
        }
    }

    fn from_workspace(subject: &str, project: &str) -> Principal {
        Principal {
            credential: Credential::Workspace {
                project: project.into(),
                workspace: "w".into(),
            },
            ..person(subject, &[])
        }
    }

    /// Every action × caller, with the expected answer written out, so a change of policy
    /// shows up here as a changed table.
    #[test]
    fn the_policy_table() {
        use Action::*;
        let p = project("demo");
        let alices = workspace("alice");
        let callers = [
            ("admin", person("root", &[PlatformRole::Admin])),
            ("owner", person("olivia", &[])),
            ("alice", person("alice", &[])),
            ("bob", person("bob", &[])),
            ("checker", person("carol", &[PlatformRole::OutputChecker])),
            ("steward", person("steward", &[PlatformRole::DataSteward])),
            ("outsider", person("eve", &[])),
            ("alice-in-workspace", from_workspace("alice", "demo")),
        ];
        // Columns: admin owner alice bob checker steward outsider alice-in-workspace.
        let table: [(Action, [bool; 8]); 14] = [
            (
                ListProjects,
                [true, true, true, true, true, true, true, true],
            ),
            (
                CreateProject,
                [true, false, false, false, false, false, false, false],
            ),
            (
                ReadProject,
                [true, true, true, true, false, false, false, true],
            ),
            (
                ApproveProject,
                [true, false, false, false, false, false, false, false],
            ),
            (
                EditMembers,
                [true, false, false, false, false, false, false, false],
            ),
            (
                SuspendProject,
                [true, false, false, false, false, false, false, false],
            ),
            (
                ResumeProject,
                [true, false, false, false, false, false, false, false],
            ),
            (
                CloseProject,
                [true, false, false, false, false, false, false, false],
            ),
            (
                ListWorkspaces,
                [true, true, true, true, false, false, false, true],
            ),
            (
                CreateWorkspace,
                [false, true, true, true, false, false, false, true],
            ),
            (
                ReadWorkspace,
                [true, true, true, false, false, false, false, true],
            ),
            (
                StartWorkspace,
                [false, false, true, false, false, false, false, true],
            ),
            (
                StopWorkspace,
                [true, false, true, false, false, false, false, true],
            ),
            (
                DeleteWorkspace,
                [true, false, true, false, false, false, false, true],
            ),
        ];
        for (action, expected) in table {
            for ((who, caller), allowed) in callers.iter().zip(expected) {
                let target = match action {
                    ListProjects | CreateProject => Target::Platform,
                    ReadWorkspace | StartWorkspace | StopWorkspace | DeleteWorkspace => {
                        Target::Workspace(&p, &alices)
                    }
                    _ => Target::Project(&p),
                };
                assert_eq!(
                    decide(caller, action, target).allowed(),
                    allowed,
                    "{who} {}",
                    action.name()
                );
            }
        }
    }

    #[test]
    fn a_workspace_credential_stays_in_its_project() {
        let other = project("other");
        let mut member_elsewhere = other.clone();
        member_elsewhere.spec.members.push(Member {
            subject: "alice".into(),
            role: MemberRole::Owner,
        });
        let caller = from_workspace("alice", "demo");
        for action in Action::ALL {
            assert!(
                !decide(&caller, action, Target::Project(&member_elsewhere)).allowed(),
                "{action:?}"
            );
        }
        assert!(!decide(&caller, Action::CreateProject, Target::Platform).allowed());
    }

    #[test]
    fn a_workspace_credential_never_has_admin_powers() {
        let mut caller = from_workspace("alice", "demo");
        caller.roles.insert(PlatformRole::Admin);
        let p = project("demo");
        assert!(!decide(&caller, Action::CloseProject, Target::Project(&p)).allowed());
    }

    #[test]
    fn owners_see_all_workspaces_researchers_their_own() {
        let p = project("demo");
        assert_eq!(
            workspace_view(&person("olivia", &[]), &p),
            WorkspaceView::All
        );
        assert_eq!(
            workspace_view(&person("root", &[PlatformRole::Admin]), &p),
            WorkspaceView::All
        );
        assert_eq!(
            workspace_view(&person("alice", &[]), &p),
            WorkspaceView::Own
        );
    }

    #[test]
    fn a_removed_member_loses_their_workspace() {
        let mut p = project("demo");
        p.spec.members.retain(|m| m.subject != "alice");
        let w = workspace("alice");
        let alice = person("alice", &[]);
        assert!(!decide(&alice, Action::StartWorkspace, Target::Workspace(&p, &w)).allowed());
        assert!(!decide(&alice, Action::ReadProject, Target::Project(&p)).allowed());
    }

    #[test]
    fn airlock_access() {
        let p = project("demo");
        let alice = person("alice", &[]);
        let carol = person("carol", &[PlatformRole::OutputChecker]);
        let steward = person("steward", &[PlatformRole::DataSteward]);
        let eve = person("eve", &[]);
        let workspace = from_workspace("alice", "demo");
        assert!(airlock_create(&alice, &p, Direction::Egress).allowed());
        assert!(airlock_create(&workspace, &p, Direction::Egress).allowed());
        assert!(!airlock_create(&carol, &p, Direction::Egress).allowed());
        assert!(airlock_create(&steward, &p, Direction::Ingress).allowed());
        assert!(!airlock_create(&steward, &p, Direction::Egress).allowed());
        assert!(!airlock_create(&eve, &p, Direction::Ingress).allowed());
        assert!(
            !airlock_create(&from_workspace("alice", "other"), &p, Direction::Egress).allowed()
        );

        assert!(airlock_list(&alice, Some(&p), "demo").allowed());
        assert!(airlock_list(&workspace, Some(&p), "demo").allowed());
        assert!(airlock_list(&person("root", &[PlatformRole::Admin]), None, "demo").allowed());
        assert!(!airlock_list(&carol, Some(&p), "demo").allowed());
        assert!(!airlock_list(&from_workspace("alice", "other"), Some(&p), "demo").allowed());
        assert!(airlock_read(&carol, Some(&p), "demo", "alice", Direction::Egress).allowed());
        assert!(!airlock_read(&steward, Some(&p), "demo", "alice", Direction::Egress).allowed());
        assert!(!airlock_read(&eve, Some(&p), "demo", "alice", Direction::Egress).allowed());
        assert!(
            airlock_read(
                &person("bob", &[]),
                Some(&p),
                "demo",
                "alice",
                Direction::Egress
            )
            .allowed()
        );
        assert!(
            airlock_read(&alice, None, "demo", "alice", Direction::Egress).allowed(),
            "the author, after the project is gone"
        );

        use AirlockState::*;
        let download = |who: &Principal, direction, state| {
            airlock_download(who, Some(&p), "demo", "alice", direction, state).allowed()
        };
        assert!(!download(&carol, Direction::Egress, Draft));
        assert!(download(&carol, Direction::Egress, InReview));
        let mut author_checker = carol.clone();
        author_checker.subject = "alice".into();
        assert!(!download(&author_checker, Direction::Egress, InReview));
        for state in [Draft, InReview, Reviewed, Approved] {
            assert!(!download(&alice, Direction::Egress, state), "{state:?}");
        }
        assert!(download(&alice, Direction::Egress, Released));
        assert!(!download(&workspace, Direction::Egress, Released));
        assert!(!download(&eve, Direction::Egress, Released));
        assert!(
            !download(&alice, Direction::Ingress, Released),
            "ingress data stays inside"
        );
        assert!(
            download(&workspace, Direction::Ingress, Released),
            "inputs of the project's workspaces"
        );
        assert!(!download(
            &from_workspace("alice", "other"),
            Direction::Ingress,
            Released
        ));
        assert!(!download(&workspace, Direction::Ingress, InReview));
    }

    #[test]
    fn mismatched_targets_are_denied() {
        let admin = person("root", &[PlatformRole::Admin]);
        let p = project("demo");
        assert!(!decide(&admin, Action::CreateProject, Target::Project(&p)).allowed());
        assert!(!decide(&admin, Action::ReadWorkspace, Target::Project(&p)).allowed());
    }

    #[test]
    fn only_the_owner_opens_a_workspace_through_the_gateway() {
        use crate::resources::ProjectStatus;
        let mut p = project("demo");
        p.status = Some(ProjectStatus {
            phase: Some(ProjectPhase::Active),
            ..ProjectStatus::default()
        });
        let w = workspace("alice");
        assert_eq!(gateway(&person("alice", &[]), &p, &w), Decision::Allow);
        for (who, caller) in [
            ("another researcher", person("bob", &[])),
            ("the project's owner", person("olivia", &[])),
            ("an admin", person("root", &[PlatformRole::Admin])),
            (
                "an output checker",
                person("carol", &[PlatformRole::OutputChecker]),
            ),
            ("an outsider", person("eve", &[])),
            ("alice's workspace itself", from_workspace("alice", "demo")),
        ] {
            assert!(!gateway(&caller, &p, &w).allowed(), "{who}");
        }
        // The owner, once removed from the project, or in a project that is not Active.
        let mut removed = p.clone();
        removed.spec.members.retain(|m| m.subject != "alice");
        assert!(!gateway(&person("alice", &[]), &removed, &w).allowed());
        for phase in [
            None,
            Some(ProjectPhase::Pending),
            Some(ProjectPhase::Suspended),
            Some(ProjectPhase::Expired),
            Some(ProjectPhase::Closing),
            Some(ProjectPhase::Closed),
        ] {
            let mut inactive = p.clone();
            inactive.status = Some(ProjectStatus {
                phase,
                ..ProjectStatus::default()
            });
            let decision = gateway(&person("alice", &[]), &inactive, &w);
            assert!(!decision.allowed(), "{phase:?}");
        }
        // An owner with an admin role is still just the owner; an admin who owns nothing is not.
        assert!(gateway(&person("alice", &[PlatformRole::Admin]), &p, &w).allowed());
    }
}
