//! Who may do what: the one place that decides. Handlers describe the call (an [`Action`] on a
//! [`Target`] read from the watch cache) and obey the [`Decision`]; they never decide alone.

use crate::airlock::state::{Direction, State as AirlockState};
use crate::identity::{Credential, PlatformRole, Principal};
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

/// Whether `who` may review a request by `author` in `direction` in `project`: the state
/// machine's rule ([`crate::airlock::state::may_review`]), for the review queue and the pages.
pub fn may_review(
    who: &Principal,
    direction: Direction,
    author: &str,
    project: Option<&Project>,
    members_may_review: bool,
) -> bool {
    let actor = crate::airlock::state::Actor {
        subject: who.subject.clone(),
        reviewer_role: reviewer_role(who, direction),
        project_member: project.is_some_and(|p| membership(who, p).is_some()),
        admin: false,
    };
    crate::airlock::state::may_review(author, direction, &actor, members_may_review).is_ok()
}

/// Whether the caller is the DataSHIELD server of `project` (its init container, fetching the
/// tables it holds): it may read the project's ingress requests and fetch their released files,
/// nothing else (not even list the project's requests).
fn datashield_server_of(principal: &Principal, project: &str) -> bool {
    matches!(&principal.credential, Credential::DataShield { project: own } if own == project)
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
    if datashield_server_of(principal, project_name) {
        return if direction == Direction::Ingress {
            Decision::Allow
        } else {
            Decision::Deny("a DataSHIELD server reads only ingress requests".into())
        };
    }
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
        && ((member && principal.project_scope() == Some(project_name))
            || datashield_server_of(principal, project_name))
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
        let shown = phase.map_or("not yet provisioned", |p| p.as_str());
        return Decision::Deny(format!(
            "the project is {shown}; workspaces are open only while it is Active"
        ));
    }
    Decision::Allow
}

#[cfg(test)]
mod tests;
