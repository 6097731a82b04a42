//! Projects as the API and the pages show them: which a caller may see, one project after the
//! policy's check, and the read model (`ProjectView`) both edges serve.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::identity::Principal;
use crate::policy::{self, Action, Target};
use crate::problem::Problem;
use crate::resources::{MemberRole, Project};

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberBody {
    /// The member's identity (the provider's subject claim, e.g. a username).
    pub subject: String,
    /// `owner`, `researcher` or `analyst` (DataSHIELD only: no workspaces, no airlock).
    #[schema(value_type = String, example = "researcher")]
    pub role: MemberRole,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct DatasetBody {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesBody {
    /// Kubernetes quantities, e.g. `"4"`, `"16Gi"`.
    pub cpu: String,
    pub memory: String,
    pub storage: String,
    #[serde(default)]
    pub gpus: u32,
    pub max_workspaces: u32,
}

#[derive(Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    pub reference: String,
    pub approved_by: String,
    pub approved_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    pub name: String,
    pub title: String,
    pub purpose: String,
    pub approval: Option<ApprovalView>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub members: Vec<MemberBody>,
    pub datasets: Vec<DatasetBody>,
    pub resources: ResourcesBody,
    pub templates: Vec<String>,
    pub reviews_required: u32,
    pub suspended: bool,
    pub closed: bool,
    /// `Pending`, `Active`, `Suspended`, `Expired`, `Closing`, `Closed` or `Failed`; absent
    /// until the operator has seen the project.
    pub phase: Option<String>,
    pub namespace: Option<String>,
    pub conditions: Vec<ConditionView>,
}

pub fn conditions_view(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Vec<ConditionView> {
    conditions
        .iter()
        .map(|c| ConditionView {
            kind: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .collect()
}

pub fn view(project: &Project) -> ProjectView {
    let spec = &project.spec;
    let status = project.status.clone().unwrap_or_default();
    ProjectView {
        name: project.metadata.name.clone().unwrap_or_default(),
        title: spec.title.clone(),
        purpose: spec.purpose.clone(),
        approval: spec.approval.as_ref().map(|a| ApprovalView {
            reference: a.reference.clone(),
            approved_by: a.approved_by.clone(),
            approved_at: a.approved_at,
        }),
        start_date: spec.start_date,
        end_date: spec.end_date,
        members: spec
            .members
            .iter()
            .map(|m| MemberBody {
                subject: m.subject.clone(),
                role: m.role,
            })
            .collect(),
        datasets: spec
            .datasets
            .iter()
            .map(|d| DatasetBody {
                name: d.name.clone(),
                description: d.description.clone(),
            })
            .collect(),
        resources: ResourcesBody {
            cpu: spec.resources.cpu.0.clone(),
            memory: spec.resources.memory.0.clone(),
            storage: spec.resources.storage.0.clone(),
            gpus: spec.resources.gpus,
            max_workspaces: spec.resources.max_workspaces,
        },
        templates: spec.templates.iter().map(|t| t.0.clone()).collect(),
        reviews_required: spec.egress.reviews_required,
        suspended: spec.suspended,
        closed: spec.closed,
        phase: status.phase.map(|p| p.as_str().to_owned()),
        namespace: status.namespace.clone(),
        conditions: conditions_view(&status.conditions),
    }
}

/// The project in the cache, or 404.
pub fn cached(state: &AppState, name: &str) -> Result<Arc<Project>, Problem> {
    state
        .cluster
        .project(name)
        .ok_or_else(|| Problem::not_found(format!("there is no project named `{name}`")))
}

/// The projects `who` may see: all for admins, their own for members.
pub async fn visible(state: &AppState, who: &Principal) -> Result<Vec<Arc<Project>>, Problem> {
    state
        .authorize(
            who,
            Action::ListProjects,
            Target::Platform,
            "projects",
            None,
        )
        .await?;
    Ok(state
        .cluster
        .projects()
        .into_iter()
        .filter(|p| policy::can_see_project(who, p))
        .collect())
}

/// One project, if `who` may read it.
pub async fn get(state: &AppState, who: &Principal, name: &str) -> Result<Arc<Project>, Problem> {
    let project = cached(state, name)?;
    state
        .authorize(
            who,
            Action::ReadProject,
            Target::Project(&project),
            &format!("project/{name}"),
            Some(name),
        )
        .await?;
    Ok(project)
}
