//! Whether a Workspace may exist as asked, decided from the Workspace, its Project, its template
//! and its siblings. A refusal carries a reason a person can act on.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube_quantity::ParsedQuantity;

use crate::resources::{Project, Workspace, WorkspaceTemplate};

/// What the workspace gets once validated: the template's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub cpu: Quantity,
    pub memory: Quantity,
    pub storage: Quantity,
    pub gpus: u32,
}

/// A workspace that may run: its project, its template and its resolved resources.
#[derive(Clone, Debug)]
pub struct Valid<'a> {
    pub project: &'a Project,
    pub template: &'a WorkspaceTemplate,
    pub resolved: Resolved,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// A CamelCase reason for the condition.
    pub reason: &'static str,
    /// What is wrong and what to do about it.
    pub message: String,
}

fn refuse<T>(reason: &'static str, message: String) -> Result<T, Refusal> {
    Err(Refusal { reason, message })
}

fn parse(quantity: &Quantity) -> Option<ParsedQuantity> {
    ParsedQuantity::try_from(quantity).ok()
}

/// `Some(true)` when `wanted` fits within `limit`; `None` when either cannot be parsed.
fn fits(wanted: &Quantity, limit: &Quantity) -> Option<bool> {
    Some(parse(wanted)? <= parse(limit)?)
}

pub fn validate<'a>(
    workspace: &Workspace,
    project: Option<&'a Project>,
    template: Option<&'a WorkspaceTemplate>,
    siblings: &[&Workspace],
) -> Result<Valid<'a>, Refusal> {
    let Some(project) = project else {
        return refuse(
            "NoProject",
            format!(
                "namespace {} does not belong to a Trellis project; create workspaces in trellis-<project>",
                workspace.namespace().unwrap_or_default()
            ),
        );
    };
    let spec = &workspace.spec;
    if !project
        .spec
        .members
        .iter()
        .any(|member| member.subject == spec.owner)
    {
        return refuse(
            "OwnerNotMember",
            format!(
                "{} is not a member of project {}; ask a project owner or admin to add them",
                spec.owner,
                project.name_any()
            ),
        );
    }
    if !project
        .spec
        .templates
        .iter()
        .any(|allowed| allowed.0 == spec.template)
    {
        let allowed: Vec<_> = project
            .spec
            .templates
            .iter()
            .map(|t| t.0.as_str())
            .collect();
        return refuse(
            "TemplateNotAllowed",
            format!(
                "template {} is not allowed in project {} (allowed: {})",
                spec.template,
                project.name_any(),
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                }
            ),
        );
    }
    let Some(template) = template else {
        return refuse(
            "TemplateNotFound",
            format!("WorkspaceTemplate {} does not exist", spec.template),
        );
    };

    let asked = spec.resources.clone().unwrap_or_default();
    let defaults = &template.spec.resources.default;
    let max = &template.spec.resources.max;
    let resolved = Resolved {
        cpu: asked.cpu.unwrap_or_else(|| defaults.cpu.clone()),
        memory: asked.memory.unwrap_or_else(|| defaults.memory.clone()),
        storage: spec
            .storage
            .clone()
            .unwrap_or_else(|| template.spec.default_storage.clone()),
        gpus: asked.gpus,
    };
    let totals = &project.spec.resources;
    for (what, wanted, template_max, project_max) in [
        ("cpu", &resolved.cpu, Some(&max.cpu), &totals.cpu),
        (
            "memory",
            &resolved.memory,
            Some(&max.memory),
            &totals.memory,
        ),
        ("storage", &resolved.storage, None, &totals.storage),
    ] {
        if let Some(template_max) = template_max {
            match fits(wanted, template_max) {
                Some(true) => {}
                Some(false) => {
                    return refuse(
                        "ResourcesOverMaximum",
                        format!(
                            "{what} {} is more than template {} allows ({}); ask for at most that",
                            wanted.0,
                            template.name_any(),
                            template_max.0
                        ),
                    );
                }
                None => {
                    return refuse(
                        "InvalidResources",
                        format!("{what} {} is not a quantity", wanted.0),
                    );
                }
            }
        }
        match fits(wanted, project_max) {
            Some(true) => {}
            Some(false) => {
                return refuse(
                    "ResourcesOverQuota",
                    format!(
                        "{what} {} is more than project {} may use in total ({})",
                        wanted.0,
                        project.name_any(),
                        project_max.0
                    ),
                );
            }
            None => {
                return refuse(
                    "InvalidResources",
                    format!("{what} {} is not a quantity", wanted.0),
                );
            }
        }
    }
    if resolved.gpus > totals.gpus {
        return refuse(
            "ResourcesOverQuota",
            format!(
                "{} GPU(s) is more than project {} may use ({})",
                resolved.gpus,
                project.name_any(),
                totals.gpus
            ),
        );
    }

    // The oldest workspaces keep their places; a newer one beyond the limit is refused.
    let key = |w: &Workspace| {
        (
            w.metadata.creation_timestamp.clone().map(|t| t.0),
            w.name_any(),
        )
    };
    let older = siblings
        .iter()
        .filter(|other| other.name_any() != workspace.name_any() && key(other) < key(workspace))
        .count();
    let limit = usize::try_from(totals.max_workspaces).unwrap_or(usize::MAX);
    if older >= limit {
        return refuse(
            "TooManyWorkspaces",
            format!(
                "project {} may have at most {} workspace(s) and already has {older}; delete one first",
                project.name_any(),
                totals.max_workspaces
            ),
        );
    }
    Ok(Valid {
        project,
        template,
        resolved,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    use super::*;
    use crate::project::tests::spec;

    fn project() -> Project {
        Project::new("hip-fracture", spec())
    }

    fn template() -> WorkspaceTemplate {
        serde_json::from_value(json!({
            "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate", "metadata": {"name": "jupyter"},
            "spec": {
                "displayName": "JupyterLab", "image": "quay.io/jupyter/scipy-notebook:2026-10-20", "port": 8888,
                "resources": {"default": {"cpu": "1", "memory": "4Gi"}, "max": {"cpu": "4", "memory": "16Gi"}},
                "defaultStorage": "10Gi",
            },
        }))
        .unwrap()
    }

    fn workspace(name: &str, spec: serde_json::Value, created_second: i64) -> Workspace {
        let mut workspace: Workspace = serde_json::from_value(json!({
            "apiVersion": "trellis.dev/v1alpha1", "kind": "Workspace",
            "metadata": {"name": name, "namespace": "trellis-hip-fracture"}, "spec": spec,
        }))
        .unwrap();
        workspace.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + created_second).unwrap(),
        ));
        workspace
    }

    fn check(spec: serde_json::Value) -> Result<Resolved, Refusal> {
        let workspace = workspace("analysis", spec, 0);
        let (project, template) = (project(), template());
        validate(&workspace, Some(&project), Some(&template), &[&workspace])
            .map(|valid| valid.resolved)
    }

    #[test]
    fn the_template_defaults_fill_in_what_is_not_asked() {
        assert_eq!(
            check(json!({"owner": "alice", "template": "jupyter"})),
            Ok(Resolved {
                cpu: Quantity("1".into()),
                memory: Quantity("4Gi".into()),
                storage: Quantity("10Gi".into()),
                gpus: 0
            })
        );
        let asked = check(
            json!({"owner": "bob", "template": "jupyter", "resources": {"cpu": "2500m"}, "storage": "20Gi"}),
        );
        assert_eq!(
            asked.map(|r| (r.cpu.0, r.memory.0, r.storage.0)),
            Ok(("2500m".into(), "4Gi".into(), "20Gi".into()))
        );
    }

    fn reason<T: std::fmt::Debug>(result: Result<T, Refusal>) -> (&'static str, String) {
        let refusal = result.expect_err("refused");
        (refusal.reason, refusal.message)
    }

    #[test]
    fn each_refusal_names_the_problem() {
        let cases = [
            (
                json!({"owner": "mallory", "template": "jupyter"}),
                "OwnerNotMember",
                "mallory is not a member of project hip-fracture",
            ),
            (
                json!({"owner": "alice", "template": "rstudio"}),
                "TemplateNotAllowed",
                "template rstudio is not allowed in project hip-fracture (allowed: jupyter)",
            ),
            (
                json!({"owner": "alice", "template": "jupyter", "resources": {"cpu": "5"}}),
                "ResourcesOverMaximum",
                "cpu 5 is more than template jupyter allows (4)",
            ),
            (
                json!({"owner": "alice", "template": "jupyter", "resources": {"memory": "17Gi"}}),
                "ResourcesOverMaximum",
                "memory 17Gi is more than template jupyter allows (16Gi)",
            ),
            (
                json!({"owner": "alice", "template": "jupyter", "storage": "101Gi"}),
                "ResourcesOverQuota",
                "storage 101Gi is more than project hip-fracture may use in total (100Gi)",
            ),
            (
                json!({"owner": "alice", "template": "jupyter", "resources": {"gpus": 1}}),
                "ResourcesOverQuota",
                "1 GPU(s) is more than project hip-fracture may use (0)",
            ),
        ];
        for (spec, expected_reason, expected_message) in cases {
            let (reason, message) = reason(check(spec.clone()));
            assert_eq!(reason, expected_reason, "{spec}");
            assert!(message.contains(expected_message), "{spec}: {message}");
        }
    }

    #[test]
    fn a_missing_project_or_template_is_refused() {
        let workspace = workspace(
            "analysis",
            json!({"owner": "alice", "template": "jupyter"}),
            0,
        );
        let (project, template) = (project(), template());
        assert_eq!(
            reason(validate(&workspace, None, Some(&template), &[])).0,
            "NoProject"
        );
        assert_eq!(
            reason(validate(&workspace, Some(&project), None, &[])).0,
            "TemplateNotFound"
        );
    }

    #[test]
    fn the_oldest_workspaces_keep_their_places_within_max_workspaces() {
        let all: Vec<Workspace> = (0..5)
            .map(|i| {
                workspace(
                    &format!("ws-{i}"),
                    json!({"owner": "alice", "template": "jupyter"}),
                    i,
                )
            })
            .collect();
        let siblings: Vec<&Workspace> = all.iter().collect();
        let (project, template) = (project(), template());
        for (i, workspace) in all.iter().enumerate() {
            let result = validate(workspace, Some(&project), Some(&template), &siblings);
            if i < 4 {
                assert!(result.is_ok(), "ws-{i}: {result:?}");
            } else {
                let (reason, message) = reason(result);
                assert_eq!(reason, "TooManyWorkspaces");
                assert!(
                    message.contains("at most 4 workspace(s) and already has 4"),
                    "{message}"
                );
            }
        }
    }
}
