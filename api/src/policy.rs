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
    /// Analysing the project's data through its DataSHIELD server (and holding a personal
    /// access token for it).
    UseDataShield,
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
            Action::UseDataShield => "datashield.use",
        }
    }

    pub const ALL: [Action; 15] = [
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
        Action::UseDataShield,
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

/// Whether the caller's role in `project` lets them work with files: workspaces and the airlock.
/// Owners and researchers do; analysts reach the project's data only through DataSHIELD.
fn works_with_files(principal: &Principal, project: &Project) -> bool {
    matches!(
        membership(principal, project),
        Some(MemberRole::Owner | MemberRole::Researcher)
    )
}

fn access_token(principal: &Principal) -> bool {
    matches!(principal.credential, Credential::AccessToken { .. })
}

const ACCESS_TOKEN_ONLY_DATASHIELD: &str =
    "a personal access token is used only for DataSHIELD analysis";

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
    principal.project_scope().is_none()
        && !access_token(principal)
        && principal.has(PlatformRole::Admin)
}

fn project_name(project: &Project) -> &str {
    project.metadata.name.as_deref().unwrap_or_default()
}

pub fn decide(principal: &Principal, action: Action, target: Target<'_>) -> Decision {
    let deny = |why: &str| Decision::Deny(why.to_string());
    // A personal access token is good for DataSHIELD and nothing else.
    if access_token(principal) && action != Action::UseDataShield {
        return deny(ACCESS_TOKEN_ONLY_DATASHIELD);
    }
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
            if works_with_files(principal, p) {
                Decision::Allow
            } else if membership(principal, p) == Some(MemberRole::Analyst) {
                deny("analysts use the project's data through DataSHIELD, not in workspaces")
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
            if w.spec.owner == principal.subject && works_with_files(principal, p) {
                Decision::Allow
            } else {
                deny(
                    "only the workspace's owner, while an owner or researcher of the project, starts it",
                )
            }
        }
        (Action::StopWorkspace | Action::DeleteWorkspace, Target::Workspace(p, w)) => {
            if (w.spec.owner == principal.subject && membership(principal, p).is_some()) || admin {
                Decision::Allow
            } else {
                deny("only the workspace's owner and platform admins stop or delete it")
            }
        }
        (Action::UseDataShield, Target::Project(p)) => use_datashield(principal, p),
        _ => deny("this action does not apply to this kind of target"),
    }
}

/// DataSHIELD is for the project's members (owners, researchers and analysts), signed in as
/// themselves or with their personal access token, while the project is Active. Data access is
/// by membership: platform admins who are not members are refused like anyone else.
fn use_datashield(principal: &Principal, project: &Project) -> Decision {
    if principal.project_scope().is_some() {
        return Decision::Deny(
            "DataSHIELD is used with a personal access token, not from a workspace".into(),
        );
    }
    match membership(principal, project) {
        Some(MemberRole::Owner | MemberRole::Researcher | MemberRole::Analyst) => {}
        None => {
            return Decision::Deny(format!(
                "`{}` is not a member of project `{}`; only its members use its DataSHIELD server",
                principal.subject,
                project_name(project)
            ));
        }
    }
    let phase = project.status.as_ref().and_then(|s| s.phase);
    if phase != Some(ProjectPhase::Active) {
        let shown = phase.map_or("not yet provisioned", |p| p.as_str());
        return Decision::Deny(format!(
            "project `{}` is {shown}; DataSHIELD is open only while it is Active",
            project_name(project)
        ));
    }
    Decision::Allow
}

/// Whether a project offers DataSHIELD at all (`spec.datashield.enabled`). Separate from
/// [`Action::UseDataShield`]: a member may hold a token for a project before its server is
/// enabled; calls are refused until it is.
pub fn datashield_offered(project: &Project) -> Decision {
    if project.spec.datashield_enabled().is_some() {
        Decision::Allow
    } else {
        Decision::Deny(format!(
            "project `{}` does not run a DataSHIELD server",
            project_name(project)
        ))
    }
}

/// Whether the caller holds the reviewing role for a direction: output checkers review egress,
/// data stewards ingress. A workspace credential never reviews.
pub fn reviewer_role(principal: &Principal, direction: Direction) -> bool {
    principal.project_scope().is_none()
        && !access_token(principal)
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
    if access_token(principal) {
        return Decision::Deny(ACCESS_TOKEN_ONLY_DATASHIELD.into());
    }
    if !in_scope(principal, project_name(project)) {
        return Decision::Deny("a workspace credential cannot act outside its project".into());
    }
    let member = works_with_files(principal, project);
    match direction {
        Direction::Egress if member => Decision::Allow,
        Direction::Ingress if member || reviewer_role(principal, direction) => Decision::Allow,
        Direction::Egress => Decision::Deny(
            "only the project's owners and researchers request egress (not analysts)".into(),
        ),
        Direction::Ingress => Decision::Deny(
            "only the project's owners, researchers and data stewards request ingress (not analysts)"
                .into(),
        ),
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
    if access_token(principal) {
        return Decision::Deny(ACCESS_TOKEN_ONLY_DATASHIELD.into());
    }
    if !in_scope(principal, project_name) {
        return Decision::Deny("a workspace credential cannot act outside its project".into());
    }
    let member = project.is_some_and(|p| works_with_files(principal, p));
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
            "only the author, the project's owners and researchers, reviewers and admins see a request"
                .into(),
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
    let member = project.is_some_and(|p| works_with_files(principal, p));
    if !access_token(principal)
        && in_scope(principal, project_name)
        && (member || is_admin(principal))
    {
        Decision::Allow
    } else {
        Decision::Deny("only the project's owners, researchers and admins list its requests".into())
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
    // Analysts never fetch files; a personal access token is not a person's sign-in.
    let member =
        !access_token(principal) && project.is_some_and(|p| works_with_files(principal, p));
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
        "files are fetched by reviewers during review, and by the project's owners and researchers once released"
            .into(),
    )
}

/// Who may create personal access tokens: a person signed in as themselves (a browser session
/// or the identity provider's bearer token), never a workspace credential or another access
/// token. Which projects a token may name is [`Action::UseDataShield`] on each.
pub fn access_token_create(principal: &Principal) -> Decision {
    match principal.credential {
        Credential::Session | Credential::Bearer => Decision::Allow,
        Credential::Workspace { .. } | Credential::DataShield { .. } => Decision::Deny(
            "personal access tokens are created by a person signed in, not from a pod".into(),
        ),
        Credential::AccessToken { .. } => Decision::Deny(
            "a personal access token cannot create another; sign in to create one".into(),
        ),
    }
}

/// Who may see and revoke a personal access token: its owner, signed in as themselves. Nobody
/// else, admins included: an admin cuts a person off by removing their membership, which every
/// token of theirs obeys at its next use.
pub fn access_token_manage(principal: &Principal, owner: &str) -> Decision {
    if let Decision::Deny(why) = access_token_create(principal) {
        return Decision::Deny(why);
    }
    if principal.subject == owner {
        Decision::Allow
    } else {
        Decision::Deny("a personal access token is seen and revoked by its owner only".into())
    }
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
    if access_token(principal) {
        return deny(ACCESS_TOKEN_ONLY_DATASHIELD);
    }
    if workspace.spec.owner != principal.subject {
        return deny("only the workspace's owner opens it");
    }
    match membership(principal, project) {
        None => return deny("the workspace's owner is no longer a member of the project"),
        Some(MemberRole::Analyst) => {
            return deny("analysts use the project's data through DataSHIELD, not in workspaces");
        }
        Some(MemberRole::Owner | MemberRole::Researcher) => {}
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
