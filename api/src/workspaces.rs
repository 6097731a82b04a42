//! Workspaces as the API and the pages show them: a project's workspaces that a caller may see,
//! and the read model (`WorkspaceView`) both edges serve.

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::identity::Principal;
use crate::policy::{self, Action, Target};
use crate::problem::Problem;
use crate::projects::{ConditionView, conditions_view};
use crate::resources::Workspace;

#[derive(Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    pub project: String,
    pub name: String,
    pub owner: String,
    pub template: String,
    pub running: bool,
    /// `Pending`, `Starting`, `Running`, `Stopping`, `Stopped` or `Failed`.
    pub phase: Option<String>,
    pub url: Option<String>,
    pub last_activity: Option<chrono::DateTime<chrono::Utc>>,
    pub conditions: Vec<ConditionView>,
}

pub fn view(project: &str, workspace: &Workspace) -> WorkspaceView {
    let status = workspace.status.clone().unwrap_or_default();
    WorkspaceView {
        project: project.to_string(),
        name: workspace.metadata.name.clone().unwrap_or_default(),
        owner: workspace.spec.owner.clone(),
        template: workspace.spec.template.clone(),
        running: workspace.spec.running,
        phase: status.phase.map(|p| p.as_str().to_owned()),
        url: status.url.clone(),
        last_activity: status.last_activity,
        conditions: conditions_view(&status.conditions),
    }
}

/// The project's workspaces `who` may see: all of them for its owners and admins, their own for
/// researchers.
pub async fn list(
    state: &AppState,
    who: &Principal,
    project_name: &str,
) -> Result<Vec<WorkspaceView>, Problem> {
    let project = crate::projects::cached(state, project_name)?;
    state
        .authorize(
            who,
            Action::ListWorkspaces,
            Target::Project(&project),
            &format!("project/{project_name}"),
            Some(project_name),
        )
        .await?;
    let all = policy::workspace_view(who, &project) == policy::WorkspaceView::All;
    Ok(state
        .cluster
        .workspaces(project_name)
        .iter()
        .filter(|w| all || w.spec.owner == who.subject)
        .map(|w| view(project_name, w))
        .collect())
}
