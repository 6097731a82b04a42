//! What every step of a Project reconcile shares: the context (client, caches, Event recorder,
//! metrics), the error, and the writes that both provisioning and teardown make (the status,
//! stopping workspaces).

use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, ResourceQuota, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use thiserror::Error;
use tracing::info;

use super::datashield;
use super::plan::{ConditionType, StatusPlan};
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::reconcile::apply::stop_workspace;
use crate::reconcile::cache::{WrittenStatuses, cached_or_live};
use crate::reconcile::conditions::{condition, settle};
use crate::reconcile::events::publish;
use crate::reconcile::status;
use crate::resources::names::{DATASHIELD_NAME, namespace_name};
use crate::resources::{Project, ProjectPhase, ProjectStatus, Workspace};

pub(super) const CONTROLLER: &str = "project";

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
}

/// The operator's caches of what it owns, filled by watches on the managed-by label.
#[derive(Clone)]
pub struct Stores {
    pub namespaces: Store<Namespace>,
    pub quotas: Store<ResourceQuota>,
    pub limits: Store<LimitRange>,
    pub policies: Store<NetworkPolicy>,
    pub accounts: Store<ServiceAccount>,
    /// Only the DataSHIELD servers' (selected by their component label).
    pub deployments: Store<Deployment>,
    pub config_maps: Store<ConfigMap>,
    pub services: Store<Service>,
}

pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub stores: Stores,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Statuses already written, so a lagging cache does not cause the same write twice.
    pub(super) written: WrittenStatuses<ProjectStatus>,
}

impl Context {
    pub(super) fn count_write(&self) {
        self.metrics.wrote(CONTROLLER);
    }
}

/// Stops every running workspace of the project by turning `spec.running` off; the workspace
/// controller scales it down, and the quota already refuses new pods.
pub(super) async fn stop_workspaces(
    project: &Project,
    context: &Context,
    namespace: &str,
) -> Result<u32, Error> {
    let workspaces: Api<Workspace> = Api::namespaced(context.client.clone(), namespace);
    let mut stopped = 0;
    for workspace in workspaces.list(&ListParams::default()).await? {
        if workspace.spec.running {
            stop_workspace(&workspaces, &workspace.name_any()).await?;
            context.count_write();
            stopped += 1;
        }
    }
    if stopped > 0 {
        publish(
            &context.recorder,
            project,
            EventType::Normal,
            "WorkspacesStopped",
            "Stop",
            format!("stopped {stopped} workspace(s): the project is not active"),
        )
        .await;
    }
    Ok(stopped)
}

/// Writes the status the plan asks for, when it differs from what is there, and announces a
/// phase change.
pub(super) async fn write_status(
    project: &Project,
    context: &Context,
    plan: StatusPlan,
) -> Result<(), Error> {
    let generation = project.metadata.generation;
    let previous = project.status.clone().unwrap_or_default();
    let phase = plan.phase;
    // The DataSHIELD server's readiness, from its Deployment as last watched: its changes
    // trigger a reconcile, so the status follows it.
    let deployment = match project.spec.datashield_enabled() {
        Some(_) => {
            let namespace = namespace_name(&project.name_any());
            let deployments: Api<Deployment> = Api::namespaced(context.client.clone(), &namespace);
            let reference = ObjectRef::new(DATASHIELD_NAME).within(&namespace);
            cached_or_live(&context.stores.deployments, &deployments, &reference).await?
        }
        None => None,
    };
    let datashield = datashield::status(
        project.spec.datashield.as_ref(),
        phase,
        deployment.as_deref(),
    );
    let mut conditions = plan.conditions.into_conditions(generation);
    if let Some((_, check)) = &datashield {
        conditions.push(condition(
            ConditionType::DataShieldReady.as_str(),
            check.ok,
            &check.reason,
            check.message.clone(),
            generation,
        ));
    }
    let next = ProjectStatus {
        phase: Some(phase),
        namespace: plan.namespace,
        conditions: settle(&previous.conditions, conditions, Utc::now()),
        observed_generation: generation,
        teardown: plan.teardown.or(previous.teardown.clone()),
        datashield: datashield.map(|(status, _)| status),
    };
    let projects: Api<Project> = Api::all(context.client.clone());
    if !status::write_status(&projects, project, &context.written, &previous, &next).await? {
        return Ok(());
    }
    context.count_write();
    if previous.phase != Some(phase) {
        let from = previous.phase.map_or("new", ProjectPhase::as_str);
        let ready = next
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Ready.as_str())
            .map(|c| c.message.clone())
            .unwrap_or_default();
        info!(from = %from, to = ?phase, "project phase changed");
        let kind = if phase == ProjectPhase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(
            &context.recorder,
            project,
            kind,
            phase.as_str(),
            "PhaseChanged",
            format!("{from} → {phase}: {ready}"),
        )
        .await;
    }
    Ok(())
}
