//! Projects: the lifecycle, the guardrails built for them and the plan of each reconcile (all
//! pure), the controller that carries the plan out, and the teardown.

pub mod builders;
mod context;
pub mod controller;
pub mod datashield;
mod datashield_apply;
pub mod lifecycle;
pub mod plan;
mod teardown;

#[cfg(test)]
pub(crate) mod tests {
    use crate::resources::{
        Approval, EgressSettings, Member, MemberRole, ProjectResources, ProjectSpec, TemplateName,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    /// A typical approved project, running from 2026-10-01 to 2027-09-30.
    pub fn spec() -> ProjectSpec {
        ProjectSpec {
            title: "Readmissions after hip fracture".into(),
            purpose: "Estimate 30-day readmission rates.".into(),
            approval: Some(Approval {
                reference: "IGARD-2026-0042".into(),
                approved_by: "Data Access Committee".into(),
                approved_at: "2026-09-01T09:00:00Z".parse().unwrap(),
            }),
            start_date: "2026-10-01".parse().unwrap(),
            end_date: "2027-09-30".parse().unwrap(),
            members: vec![
                Member {
                    subject: "alice".into(),
                    role: MemberRole::Owner,
                },
                Member {
                    subject: "bob".into(),
                    role: MemberRole::Researcher,
                },
            ],
            datasets: vec![],
            resources: ProjectResources {
                cpu: Quantity("8".into()),
                memory: Quantity("32Gi".into()),
                storage: Quantity("100Gi".into()),
                gpus: 0,
                max_workspaces: 4,
            },
            templates: vec![TemplateName("jupyter".into())],
            egress: EgressSettings::default(),
            datashield: None,
            suspended: false,
            closed: false,
        }
    }
}
