//! `/api/v1/projects`: admins create and govern projects; members see their own.

use crate::problem::responses::{Conflict, Forbidden, NotFound, Unprocessable};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::StrictJson;
use super::{ApiResult, Caller, SharedState, created};
use crate::identity::valid_subject;
use crate::policy::{Action, Target};
use crate::problem::Problem;
use crate::projects::{self, DatasetBody, MemberBody, ProjectView, ResourcesBody, view};
use crate::resources::{
    Approval, Dataset, EgressSettings, Member, Project, ProjectResources, ProjectSpec, TemplateName,
};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project))
        .routes(routes!(approve_project))
        .routes(routes!(set_members))
        .routes(routes!(suspend_project))
        .routes(routes!(resume_project))
        .routes(routes!(close_project))
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CreateProjectBody {
    /// The project id: a DNS label of at most 54 characters.
    pub name: String,
    pub title: String,
    /// Public: shown on the transparency register.
    pub purpose: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    #[serde(default)]
    pub members: Vec<MemberBody>,
    #[serde(default)]
    pub datasets: Vec<DatasetBody>,
    pub resources: ResourcesBody,
    /// WorkspaceTemplates the project may use.
    #[serde(default)]
    pub templates: Vec<String>,
    /// Distinct output checkers needed per egress request (default 2).
    #[serde(default)]
    pub reviews_required: Option<u32>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ApproveBody {
    /// The approval's reference (e.g. the data access committee's decision).
    pub reference: String,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct MembersBody {
    pub members: Vec<MemberBody>,
}

fn members_of(body: &[MemberBody]) -> Result<Vec<Member>, Problem> {
    let mut seen = std::collections::BTreeSet::new();
    body.iter()
        .map(|m| {
            if !valid_subject(&m.subject) {
                return Err(Problem::unprocessable(format!(
                    "member `{}` is not a valid subject (no spaces, 1–255 characters)",
                    m.subject
                )));
            }
            if !seen.insert(m.subject.clone()) {
                return Err(Problem::unprocessable(format!(
                    "member `{}` is listed twice",
                    m.subject
                )));
            }
            Ok(Member {
                subject: m.subject.clone(),
                role: m.role,
            })
        })
        .collect()
}

/// A DNS label of at most `max` characters: the shape of project and workspace names.
pub fn check_name(kind: &str, name: &str, max: usize) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Problem::unprocessable(format!(
            "a {kind} name is 1–{max} lowercase letters, digits and '-', starting and ending with a letter or digit"
        )))
    }
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, description = "Projects the caller may see: all for admins, their own for members", body = [ProjectView]),
              (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json")))]
async fn list_projects(
    State(state): State<SharedState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<ProjectView>>> {
    let projects = projects::visible(&state, &who).await?;
    Ok(Json(projects.iter().map(|p| view(p)).collect()))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProjectBody,
    responses((status = 201, description = "Created; the operator provisions it once approved", body = ProjectView),
              (status = 400, description = "Malformed body or unknown fields", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a platform admin", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "A project with that name exists", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "The project is not valid", body = Problem, content_type = "application/problem+json")))]
async fn create_project(
    State(state): State<SharedState>,
    Caller(who): Caller,
    StrictJson(body): StrictJson<CreateProjectBody>,
) -> ApiResult<Response> {
    state
        .authorize(
            &who,
            Action::CreateProject,
            Target::Platform,
            &format!("project/{}", body.name),
            Some(&body.name),
        )
        .await?;
    check_name("project", &body.name, 54)?;
    let spec = ProjectSpec {
        title: body.title,
        purpose: body.purpose,
        approval: None,
        start_date: body.start_date,
        end_date: body.end_date,
        members: members_of(&body.members)?,
        datasets: body
            .datasets
            .into_iter()
            .map(|d| Dataset {
                name: d.name,
                description: d.description,
            })
            .collect(),
        resources: ProjectResources {
            cpu: k8s_openapi::apimachinery::pkg::api::resource::Quantity(body.resources.cpu),
            memory: k8s_openapi::apimachinery::pkg::api::resource::Quantity(body.resources.memory),
            storage: k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                body.resources.storage,
            ),
            gpus: body.resources.gpus,
            max_workspaces: body.resources.max_workspaces,
        },
        templates: body.templates.into_iter().map(TemplateName).collect(),
        egress: EgressSettings {
            reviews_required: body
                .reviews_required
                .unwrap_or(EgressSettings::default().reviews_required),
            ..EgressSettings::default()
        },
        datashield: None,
        suspended: false,
        closed: false,
    };
    let project = Project::new(&body.name, spec);
    let target = format!("project/{}", body.name);
    let detail = json!({ "spec": project.spec });
    let created_project = state
        .audited(
            &who,
            Action::CreateProject,
            &target,
            Some(&body.name),
            detail,
            state.cluster.create_project(&project),
        )
        .await?;
    Ok(created(view(&created_project)))
}

#[utoipa::path(get, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, body = ProjectView),
              (status = 403, description = "Not a member", body = Problem, content_type = "application/problem+json"),
              NotFound))]
async fn get_project(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ProjectView>> {
    let project = projects::get(&state, &who, &name).await?;
    Ok(Json(view(&project)))
}

/// Checks, audits and applies one change to a project's spec.
async fn change_project(
    state: &SharedState,
    who: &crate::identity::Principal,
    name: &str,
    action: Action,
    spec: serde_json::Value,
    precondition: impl FnOnce(&Project) -> Result<(), Problem>,
) -> ApiResult<Json<ProjectView>> {
    let project = projects::cached(state, name)?;
    let target = format!("project/{name}");
    state
        .authorize(who, action, Target::Project(&project), &target, Some(name))
        .await?;
    precondition(&project)?;
    let patched = state
        .audited(
            who,
            action,
            &target,
            Some(name),
            spec.clone(),
            state.cluster.patch_project(name, spec),
        )
        .await?;
    Ok(Json(view(&patched)))
}

fn not_closed(project: &Project) -> Result<(), Problem> {
    if project.spec.closed {
        Err(Problem::conflict(
            "the project is closed; it cannot change any more",
        ))
    } else {
        Ok(())
    }
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/approve", tag = "projects", request_body = ApproveBody,
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "Approved; the operator activates it on its start date", body = ProjectView),
              Forbidden,
              NotFound,
              (status = 409, description = "Already approved, or closed", body = Problem, content_type = "application/problem+json")))]
async fn approve_project(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    StrictJson(body): StrictJson<ApproveBody>,
) -> ApiResult<Json<ProjectView>> {
    if body.reference.trim().is_empty() || body.reference.len() > 200 {
        return Err(Problem::unprocessable(
            "the approval reference is 1–200 characters",
        ));
    }
    let approval = Approval {
        reference: body.reference,
        approved_by: who.subject.clone(),
        approved_at: chrono::Utc::now(),
    };
    change_project(
        &state,
        &who,
        &name,
        Action::ApproveProject,
        json!({ "approval": approval }),
        |p| {
            not_closed(p)?;
            if p.spec.approval.is_some() {
                return Err(Problem::conflict("the project is already approved"));
            }
            Ok(())
        },
    )
    .await
}

#[utoipa::path(put, path = "/api/v1/projects/{project}/members", tag = "projects", request_body = MembersBody,
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "The member list was replaced", body = ProjectView),
              Forbidden,
              NotFound,
              Unprocessable))]
async fn set_members(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    StrictJson(body): StrictJson<MembersBody>,
) -> ApiResult<Json<ProjectView>> {
    let members = members_of(&body.members)?;
    change_project(
        &state,
        &who,
        &name,
        Action::EditMembers,
        json!({ "members": members }),
        not_closed,
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/suspend", tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "Suspended: workspaces stop", body = ProjectView),
              Forbidden,
              NotFound))]
async fn suspend_project(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ProjectView>> {
    change_project(
        &state,
        &who,
        &name,
        Action::SuspendProject,
        json!({ "suspended": true }),
        not_closed,
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/resume", tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, body = ProjectView),
              Forbidden,
              NotFound))]
async fn resume_project(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ProjectView>> {
    change_project(
        &state,
        &who,
        &name,
        Action::ResumeProject,
        json!({ "suspended": false }),
        not_closed,
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/close", tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "Closing: workspaces stop and the namespace and its volumes are deleted", body = ProjectView),
              Forbidden,
              NotFound,
              Conflict))]
async fn close_project(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ProjectView>> {
    change_project(
        &state,
        &who,
        &name,
        Action::CloseProject,
        json!({ "closed": true }),
        not_closed,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::MemberRole;

    #[test]
    fn names_are_dns_labels() {
        assert!(check_name("project", "demo-1", 54).is_ok());
        for bad in ["", "Demo", "-a", "a-", "a_b", "a.b", &"a".repeat(55)] {
            assert!(check_name("project", bad, 54).is_err(), "{bad}");
        }
    }

    #[test]
    fn members_are_valid_and_distinct() {
        let m = |s: &str| MemberBody {
            subject: s.into(),
            role: MemberRole::Researcher,
        };
        assert_eq!(members_of(&[m("alice"), m("bob")]).unwrap().len(), 2);
        assert!(
            members_of(&[m("alice"), m("alice")])
                .unwrap_err()
                .detail
                .contains("twice")
        );
        assert!(members_of(&[m("a b")]).is_err());
    }

    #[test]
    fn members_body_takes_every_role_by_name() {
        let body: MembersBody = super::super::json::parse(
            br#"{"members": [{"subject": "olivia", "role": "owner"},
                {"subject": "alice", "role": "researcher"}, {"subject": "ann", "role": "analyst"}]}"#,
        )
        .unwrap();
        let members = members_of(&body.members).unwrap();
        assert_eq!(
            members.iter().map(|m| m.role).collect::<Vec<_>>(),
            [
                MemberRole::Owner,
                MemberRole::Researcher,
                MemberRole::Analyst
            ]
        );
        let wrong = super::super::json::parse::<MembersBody>(
            br#"{"members": [{"subject": "ann", "role": "viewer"}]}"#,
        )
        .unwrap_err();
        assert_eq!(wrong.status, 422, "{wrong:?}");
    }
}
