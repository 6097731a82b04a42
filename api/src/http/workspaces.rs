//! `/api/v1/projects/{project}/workspaces`: members request, start, stop and delete their own
//! workspaces; project owners and admins see them all.

use crate::problem::responses::{Forbidden, NotFound};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::StrictJson;
use super::projects::check_name;
use super::{ApiResult, Caller, SharedState, created};
use crate::identity::Principal;
use crate::policy::{Action, Target};
use crate::problem::Problem;
use crate::projects::cached as cached_project;
use crate::resources::{Project, ProjectPhase};
use crate::resources::{Workspace, WorkspaceResources, WorkspaceSpec};
use crate::workspaces::{self, WorkspaceView, view};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace, delete_workspace))
        .routes(routes!(start_workspace))
        .routes(routes!(stop_workspace))
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceResourcesBody {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    #[serde(default)]
    pub gpus: u32,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CreateWorkspaceBody {
    /// A DNS label of at most 52 characters.
    pub name: String,
    /// One of the project's allowed WorkspaceTemplates.
    pub template: String,
    pub resources: Option<WorkspaceResourcesBody>,
    /// Size of the home volume, e.g. `"20Gi"`.
    pub storage: Option<String>,
    /// Stop after this long without activity, e.g. `"2h"`.
    pub idle_timeout: Option<String>,
    /// Start at once (default) or create stopped.
    pub running: Option<bool>,
}

fn target(project: &str, workspace: &str) -> String {
    format!("workspace/{project}/{workspace}")
}

/// The project's phase must allow workspaces to run.
fn require_active(project: &Project) -> Result<(), Problem> {
    let phase = project.status.as_ref().and_then(|s| s.phase);
    if phase == Some(ProjectPhase::Active) {
        Ok(())
    } else {
        let shown = phase.map_or_else(
            || "not yet provisioned".to_string(),
            |p| p.as_str().to_owned(),
        );
        Err(Problem::conflict(format!(
            "the project is {shown}; workspaces run only while it is Active"
        )))
    }
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/workspaces", tag = "workspaces",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "All the project's workspaces for its owners and admins; the caller's own for researchers", body = [WorkspaceView]),
              Forbidden,
              NotFound))]
async fn list_workspaces(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(project_name): Path<String>,
) -> ApiResult<Json<Vec<WorkspaceView>>> {
    Ok(Json(workspaces::list(&state, &who, &project_name).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/workspaces", tag = "workspaces", request_body = CreateWorkspaceBody,
    params(("project" = String, Path, description = "Project name")),
    responses((status = 201, description = "Requested; it starts unless `running` is false", body = WorkspaceView),
              Forbidden,
              NotFound,
              (status = 409, description = "The project is not Active, is full, or the name is taken", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Template not allowed, or invalid values", body = Problem, content_type = "application/problem+json")))]
async fn create_workspace(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(project_name): Path<String>,
    StrictJson(body): StrictJson<CreateWorkspaceBody>,
) -> ApiResult<Response> {
    let project = cached_project(&state, &project_name)?;
    let target_name = target(&project_name, &body.name);
    state
        .authorize(
            &who,
            Action::CreateWorkspace,
            Target::Project(&project),
            &target_name,
            Some(&project_name),
        )
        .await?;
    check_name("workspace", &body.name, 52)?;
    require_active(&project)?;
    if !project.spec.templates.iter().any(|t| t.0 == body.template) {
        return Err(Problem::unprocessable(format!(
            "template `{}` is not allowed in this project (allowed: {})",
            body.template,
            project
                .spec
                .templates
                .iter()
                .map(|t| t.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let existing = state.cluster.workspaces(&project_name).len();
    if existing >= project.spec.resources.max_workspaces as usize {
        return Err(Problem::conflict(format!(
            "the project already has its maximum of {} workspaces",
            project.spec.resources.max_workspaces
        )));
    }
    let spec = WorkspaceSpec {
        owner: who.subject.clone(),
        template: body.template,
        resources: body.resources.map(|r| WorkspaceResources {
            cpu: r.cpu.map(Quantity),
            memory: r.memory.map(Quantity),
            gpus: r.gpus,
        }),
        storage: body.storage.map(Quantity),
        running: body.running.unwrap_or(true),
        idle_timeout: body.idle_timeout,
    };
    let workspace = Workspace::new(&body.name, spec);
    let detail = json!({ "spec": workspace.spec });
    let made = state
        .audited(
            &who,
            Action::CreateWorkspace,
            &target_name,
            Some(&project_name),
            detail,
            state.cluster.create_workspace(&project_name, &workspace),
        )
        .await?;
    Ok(created(view(&project_name, &made)))
}

/// The workspace from the cache after the policy allowed `action` on it.
async fn authorized_workspace(
    state: &SharedState,
    who: &Principal,
    project_name: &str,
    name: &str,
    action: Action,
) -> Result<(std::sync::Arc<Project>, std::sync::Arc<Workspace>), Problem> {
    let project = cached_project(state, project_name)?;
    let workspace = state.cluster.workspace(project_name, name).ok_or_else(|| {
        Problem::not_found(format!(
            "there is no workspace `{name}` in project `{project_name}`"
        ))
    })?;
    state
        .authorize(
            who,
            action,
            Target::Workspace(&project, &workspace),
            &target(project_name, name),
            Some(project_name),
        )
        .await?;
    Ok((project, workspace))
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/workspaces/{workspace}", tag = "workspaces",
    params(("project" = String, Path, description = "Project name"), ("workspace" = String, Path, description = "Workspace name")),
    responses((status = 200, body = WorkspaceView),
              Forbidden,
              NotFound))]
async fn get_workspace(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project_name, name)): Path<(String, String)>,
) -> ApiResult<Json<WorkspaceView>> {
    let (_, workspace) =
        authorized_workspace(&state, &who, &project_name, &name, Action::ReadWorkspace).await?;
    Ok(Json(view(&project_name, &workspace)))
}

async fn set_running(
    state: SharedState,
    who: Principal,
    project_name: String,
    name: String,
    running: bool,
) -> ApiResult<Json<WorkspaceView>> {
    let action = if running {
        Action::StartWorkspace
    } else {
        Action::StopWorkspace
    };
    let (project, _) = authorized_workspace(&state, &who, &project_name, &name, action).await?;
    if running {
        require_active(&project)?;
    }
    let patched = state
        .audited(
            &who,
            action,
            &target(&project_name, &name),
            Some(&project_name),
            json!({ "running": running }),
            state
                .cluster
                .set_workspace_running(&project_name, &name, running),
        )
        .await?;
    Ok(Json(view(&project_name, &patched)))
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/workspaces/{workspace}/start", tag = "workspaces",
    params(("project" = String, Path, description = "Project name"), ("workspace" = String, Path, description = "Workspace name")),
    responses((status = 200, body = WorkspaceView),
              Forbidden,
              NotFound,
              (status = 409, description = "The project is not Active", body = Problem, content_type = "application/problem+json")))]
async fn start_workspace(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project_name, name)): Path<(String, String)>,
) -> ApiResult<Json<WorkspaceView>> {
    set_running(state, who, project_name, name, true).await
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/workspaces/{workspace}/stop", tag = "workspaces",
    params(("project" = String, Path, description = "Project name"), ("workspace" = String, Path, description = "Workspace name")),
    responses((status = 200, body = WorkspaceView),
              Forbidden,
              NotFound))]
async fn stop_workspace(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project_name, name)): Path<(String, String)>,
) -> ApiResult<Json<WorkspaceView>> {
    set_running(state, who, project_name, name, false).await
}

#[utoipa::path(delete, path = "/api/v1/projects/{project}/workspaces/{workspace}", tag = "workspaces",
    params(("project" = String, Path, description = "Project name"), ("workspace" = String, Path, description = "Workspace name")),
    responses((status = 204, description = "Deleting: the workspace and its home volume go"),
              Forbidden,
              NotFound))]
async fn delete_workspace(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project_name, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    authorized_workspace(&state, &who, &project_name, &name, Action::DeleteWorkspace).await?;
    state
        .audited(
            &who,
            Action::DeleteWorkspace,
            &target(&project_name, &name),
            Some(&project_name),
            json!({}),
            state.cluster.delete_workspace(&project_name, &name),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
