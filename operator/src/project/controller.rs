//! The Project controller: dereference → decide → build → apply → status, for every Project.
//!
//! Provisioned projects get their guardrails applied (only when they drift from what is wanted);
//! closed or deleted projects are torn down until their namespace and volumes are confirmed gone,
//! and a teardown record is written. Every step is idempotent, so a restart at any instant
//! converges.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota,
    Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use thiserror::Error;
use tracing::{info, instrument, warn};

use super::builders::{self, Guardrails};
use super::lifecycle::{Lifecycle, lifecycle, next_boundary};
use crate::apply::apply_if_changed;
use crate::cache::{WrittenStatuses, cached_or_live, reflect};
use crate::conditions::{condition, settle};
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::resources::names::{
    FIELD_MANAGER, FINALIZER, MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, namespace_name,
};
use crate::resources::{Project, ProjectPhase, ProjectStatus, TeardownRecord, Workspace};

const CONTROLLER: &str = "project";

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("serialising a status: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The operator's caches of what it owns, filled by watches on the managed-by label.
#[derive(Clone)]
pub struct Stores {
    pub namespaces: Store<Namespace>,
    pub quotas: Store<ResourceQuota>,
    pub limits: Store<LimitRange>,
    pub policies: Store<NetworkPolicy>,
    pub accounts: Store<ServiceAccount>,
}

pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub stores: Stores,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Statuses already written, so a lagging cache does not cause the same write twice.
    written: WrittenStatuses<ProjectStatus>,
}

impl Context {
    fn wrote(&self) {
        self.metrics.wrote(CONTROLLER);
    }
}

/// Runs the Project controller until `shutdown` completes.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let managed = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    let (namespaces, namespace_events) = reflect(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default().labels(&managed),
    );
    let (quotas, quota_events) = reflect(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default().labels(&managed),
    );
    let (limits, limit_events) = reflect(
        Api::<LimitRange>::all(client.clone()),
        watcher::Config::default().labels(&managed),
    );
    let (policies, policy_events) = reflect(
        Api::<NetworkPolicy>::all(client.clone()),
        watcher::Config::default().labels(&managed),
    );
    let (accounts, account_events) = reflect(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default().labels(&managed),
    );
    let stores = Stores {
        namespaces,
        quotas,
        limits,
        policies,
        accounts,
    };

    let mut project_watch = watcher::Config::default();
    if let Some(selector) = &config.project_selector {
        project_watch = project_watch.labels(selector);
    }
    let (projects, project_events) = reflect(Api::<Project>::all(client.clone()), project_watch);
    let context = Arc::new(Context {
        client,
        config,
        stores,
        recorder,
        metrics: metrics.clone(),
        written: WrittenStatuses::default(),
    });
    metrics.count_projects_in(Some(projects.clone()));
    // Bounded concurrency keeps a cold start with thousands of projects within a small,
    // predictable amount of memory and apiserver load.
    let controller = Controller::for_stream(project_events, projects)
        .with_config(controller::Config::default().concurrency(16))
        .owns_stream(namespace_events)
        .owns_stream(quota_events)
        .owns_stream(limit_events)
        .owns_stream(policy_events)
        .owns_stream(account_events)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| futures::future::ready(()));
    controller.await;
}

fn error_policy(project: Arc<Project>, error: &Error, _: Arc<Context>) -> Action {
    warn!(project = %project.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

#[instrument(skip_all, fields(project = %project.name_any()))]
async fn reconcile(project: Arc<Project>, context: Arc<Context>) -> Result<Action, Error> {
    context
        .metrics
        .observe(CONTROLLER, reconcile_project(&project, &context))
        .await
}

async fn reconcile_project(project: &Project, context: &Context) -> Result<Action, Error> {
    let deleting = project.metadata.deletion_timestamp.is_some();
    if !deleting && !project.finalizers().iter().any(|f| f == FINALIZER) {
        add_finalizer(project, context).await?;
        // The patch is itself an event: the next reconcile sees the finalizer and carries on.
        return Ok(Action::await_change());
    }
    let now = Utc::now();
    let life = lifecycle(&project.spec, deleting, now.date_naive());
    let action = match &life {
        Lifecycle::TearDown => return tear_down(project, context).await,
        Lifecycle::Pending(reason) => {
            let message = match reason {
                super::lifecycle::PendingReason::NotApproved => {
                    "the project has no approval yet".to_owned()
                }
                super::lifecycle::PendingReason::NotStarted => {
                    format!("the project starts on {}", project.spec.start_date)
                }
            };
            let generation = project.metadata.generation;
            let conditions = unprovisioned(reason.reason(), "NotProvisioned", &message, generation);
            write_status(
                project,
                context,
                ProjectPhase::Pending,
                None,
                conditions,
                None,
            )
            .await?;
            Action::await_change()
        }
        _ => provision(project, context, &life).await?,
    };
    // Time-driven transitions happen on time: wake at the next date boundary.
    Ok(match next_boundary(&project.spec, now) {
        Some(boundary) => {
            let wait = (boundary - now).to_std().unwrap_or_default() + Duration::from_secs(1);
            if action == Action::await_change() {
                Action::requeue(wait)
            } else {
                action
            }
        }
        None => action,
    })
}

async fn provision(
    project: &Project,
    context: &Context,
    life: &Lifecycle,
) -> Result<Action, Error> {
    let name = project.name_any();
    let wanted = builders::guardrails(project, life.allows_workloads(), &context.config);
    let namespace_name = namespace_name(&name);
    let generation = project.metadata.generation;

    // Validate: the namespace must be ours, or not exist yet, and not be on its way out.
    let cached = context
        .stores
        .namespaces
        .get(&ObjectRef::new(&namespace_name));
    let existing = match cached {
        Some(namespace) => Some(namespace),
        None => Api::<Namespace>::all(context.client.clone())
            .get_opt(&namespace_name)
            .await?
            .map(Arc::new),
    };
    if let Some(existing) = &existing {
        let ours = existing
            .owner_references()
            .iter()
            .any(|owner| Some(&owner.uid) == project.uid().as_ref());
        if !ours {
            let message = format!(
                "namespace {namespace_name} already exists and does not belong to this project; \
                 rename the project or remove the namespace"
            );
            let conditions = unprovisioned(
                "NamespaceConflict",
                "NamespaceConflict",
                &message,
                generation,
            );
            write_status(
                project,
                context,
                ProjectPhase::Failed,
                None,
                conditions,
                None,
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
        if existing.metadata.deletion_timestamp.is_some() {
            let message = format!("namespace {namespace_name} is still being deleted");
            let conditions = unprovisioned(
                "NamespaceTerminating",
                "NamespaceTerminating",
                &message,
                generation,
            );
            write_status(
                project,
                context,
                ProjectPhase::Pending,
                None,
                conditions,
                None,
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
    }

    match apply_guardrails(project, context, &wanted).await {
        Ok(()) => {}
        Err(Error::Kube(kube::Error::Api(status))) if status.code == 422 => {
            // The apiserver refused what the spec asks for: a spec the CRD could not catch.
            let message = format!(
                "the cluster refused the project's guardrails: {}",
                status.message
            );
            let conditions = vec![
                condition("Ready", false, "InvalidSpec", &message, generation),
                condition(
                    "NamespaceReady",
                    existing.is_some(),
                    "Applied",
                    "",
                    generation,
                ),
                condition("IsolationReady", false, "InvalidSpec", &message, generation),
                condition("QuotaReady", false, "InvalidSpec", &message, generation),
            ];
            write_status(
                project,
                context,
                ProjectPhase::Failed,
                Some(namespace_name),
                conditions,
                None,
            )
            .await?;
            return Ok(Action::await_change());
        }
        Err(error) => return Err(error),
    }

    // On entering Suspended or Expired, stop what runs. Only then: a start asked for later is
    // refused by the workspace controller, with the reason, rather than silently undone.
    let entering = project.status.as_ref().and_then(|status| status.phase) != Some(life.phase());
    if !life.allows_workloads() && entering {
        stop_workspaces(project, context, &namespace_name).await?;
    }

    let phase = life.phase();
    let (ready_reason, ready_message) = match phase {
        ProjectPhase::Active => ("Active", "every guardrail is in place".to_owned()),
        ProjectPhase::Suspended => (
            "Suspended",
            "the project is suspended: workspaces are stopped".to_owned(),
        ),
        _ => (
            "Expired",
            format!(
                "the project ended on {}: workspaces are stopped",
                project.spec.end_date
            ),
        ),
    };
    let policies = wanted.network_policies.len();
    let conditions = vec![
        condition(
            "Ready",
            phase == ProjectPhase::Active,
            ready_reason,
            ready_message,
            generation,
        ),
        condition(
            "NamespaceReady",
            true,
            "Provisioned",
            format!("namespace {namespace_name}"),
            generation,
        ),
        condition(
            "IsolationReady",
            true,
            "Applied",
            format!(
                "{policies} NetworkPolicies (default deny), restricted pod security, workspace ServiceAccount without token"
            ),
            generation,
        ),
        condition(
            "QuotaReady",
            true,
            "Applied",
            if life.allows_workloads() {
                "ResourceQuota and LimitRange from spec.resources".to_owned()
            } else {
                "ResourceQuota admits no pods while the project is not active".to_owned()
            },
            generation,
        ),
    ];
    write_status(
        project,
        context,
        phase,
        Some(namespace_name),
        conditions,
        None,
    )
    .await?;
    Ok(Action::await_change())
}

/// The conditions of a project with nothing provisioned: `Ready` and `NamespaceReady` give the
/// reasons, the guardrails are simply not there.
fn unprovisioned(
    ready_reason: &str,
    namespace_reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    vec![
        condition("Ready", false, ready_reason, message, generation),
        condition(
            "NamespaceReady",
            false,
            namespace_reason,
            message,
            generation,
        ),
        condition(
            "IsolationReady",
            false,
            "NotProvisioned",
            message,
            generation,
        ),
        condition("QuotaReady", false, "NotProvisioned", message, generation),
    ]
}

/// Applies each guardrail that drifted, then removes managed objects no longer wanted.
async fn apply_guardrails(
    project: &Project,
    context: &Context,
    wanted: &Guardrails,
) -> Result<(), Error> {
    let client = &context.client;
    let namespace = wanted.namespace.name_any();
    let stores = &context.stores;
    fn in_namespace<K: Resource<DynamicType = ()>>(name: &str, namespace: &str) -> ObjectRef<K> {
        ObjectRef::new(name).within(namespace)
    }
    let mut writes = 0;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let cached =
        cached_or_live(&stores.namespaces, &namespaces, &ObjectRef::new(&namespace)).await?;
    writes += u32::from(apply_if_changed(&namespaces, cached.as_deref(), &wanted.namespace).await?);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let account = &wanted.service_account;
    let cached = cached_or_live(
        &stores.accounts,
        &accounts,
        &in_namespace(&account.name_any(), &namespace),
    )
    .await?;
    writes += u32::from(apply_if_changed(&accounts, cached.as_deref(), account).await?);
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &namespace);
    let cached = cached_or_live(
        &stores.quotas,
        &quotas,
        &in_namespace(&wanted.quota.name_any(), &namespace),
    )
    .await?;
    writes += u32::from(apply_if_changed(&quotas, cached.as_deref(), &wanted.quota).await?);
    let limits: Api<LimitRange> = Api::namespaced(client.clone(), &namespace);
    let cached = cached_or_live(
        &stores.limits,
        &limits,
        &in_namespace(&wanted.limits.name_any(), &namespace),
    )
    .await?;
    writes += u32::from(apply_if_changed(&limits, cached.as_deref(), &wanted.limits).await?);
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &namespace);
    for policy in &wanted.network_policies {
        let cached = cached_or_live(
            &stores.policies,
            &policies,
            &in_namespace(&policy.name_any(), &namespace),
        )
        .await?;
        writes += u32::from(apply_if_changed(&policies, cached.as_deref(), policy).await?);
    }
    // Orphans: NetworkPolicies this operator made for the project but no longer builds.
    let wanted_policies: BTreeSet<String> = wanted
        .network_policies
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    let project_name = project.name_any();
    for orphan in stores.policies.state_filter(|policy| {
        policy.namespace().as_deref() == Some(namespace.as_str())
            && policy.labels().get(PROJECT_LABEL) == Some(&project_name)
            && !wanted_policies.contains(&policy.name_any())
    }) {
        info!(policy = %orphan.name_any(), "removing a NetworkPolicy that is no longer wanted");
        policies
            .delete(&orphan.name_any(), &DeleteParams::default())
            .await?;
        writes += 1;
    }
    for _ in 0..writes {
        context.wrote();
    }
    Ok(())
}

/// Stops every running workspace of the project by turning `spec.running` off; the workspace
/// controller scales it down, and the quota already refuses new pods.
async fn stop_workspaces(
    project: &Project,
    context: &Context,
    namespace: &str,
) -> Result<u32, Error> {
    let workspaces: Api<Workspace> = Api::namespaced(context.client.clone(), namespace);
    let mut stopped = 0;
    for workspace in workspaces.list(&ListParams::default()).await? {
        if workspace.spec.running {
            let stop = json!({"spec": {"running": false}});
            workspaces
                .patch(
                    &workspace.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&stop),
                )
                .await?;
            context.wrote();
            stopped += 1;
        }
    }
    if stopped > 0 {
        publish(
            context,
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

/// Tears a closed or deleted project down: stop workspaces, record what is there, delete the
/// namespace, wait until it and the volumes bound to it are gone, then write the record.
async fn tear_down(project: &Project, context: &Context) -> Result<Action, Error> {
    let deleting = project.metadata.deletion_timestamp.is_some();
    let status = project.status.clone().unwrap_or_default();
    let namespace_name = namespace_name(&project.name_any());
    let generation = project.metadata.generation;
    let now = Utc::now();

    if let Some(record) = status
        .teardown
        .as_ref()
        .filter(|record| record.completed_at.is_some())
        && status.phase == Some(ProjectPhase::Closed)
    {
        if deleting {
            release_finalizer(project, context, record).await?;
        }
        return Ok(Action::await_change());
    }

    let mut record = status.teardown.clone().unwrap_or_else(|| TeardownRecord {
        started_at: now,
        completed_at: None,
        namespace: namespace_name.clone(),
        deleted: Vec::new(),
    });
    let namespaces: Api<Namespace> = Api::all(context.client.clone());
    let closing = |reason: &str, message: String| {
        vec![
            condition("Ready", false, reason, &message, generation),
            condition("NamespaceReady", false, reason, &message, generation),
            condition("IsolationReady", false, reason, &message, generation),
            condition("QuotaReady", false, reason, &message, generation),
        ]
    };

    match namespaces.get_opt(&namespace_name).await? {
        Some(namespace)
            if namespace
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == project.uid().as_ref()) =>
        {
            if namespace.metadata.deletion_timestamp.is_none() {
                let first = status.teardown.is_none();
                stop_workspaces(project, context, &namespace_name).await?;
                let inventory = inventory(&context.client, &namespace_name).await?;
                let mut deleted: BTreeSet<String> = record.deleted.iter().cloned().collect();
                deleted.insert(format!("Namespace/{namespace_name}"));
                deleted.extend(inventory);
                record.deleted = deleted.into_iter().collect();
                write_status(
                    project,
                    context,
                    ProjectPhase::Closing,
                    Some(namespace_name.clone()),
                    closing(
                        "TearingDown",
                        format!("deleting namespace {namespace_name}"),
                    ),
                    Some(record),
                )
                .await?;
                if first {
                    publish(
                        context,
                        project,
                        EventType::Normal,
                        "TeardownStarted",
                        "Teardown",
                        format!("deleting namespace {namespace_name} and everything in it"),
                    )
                    .await;
                }
                namespaces
                    .delete(&namespace_name, &DeleteParams::background())
                    .await?;
                context.wrote();
            } else {
                write_status(
                    project,
                    context,
                    ProjectPhase::Closing,
                    Some(namespace_name.clone()),
                    closing(
                        "TearingDown",
                        format!("waiting for namespace {namespace_name} to be gone"),
                    ),
                    Some(record),
                )
                .await?;
            }
            // The namespace watch wakes us when it goes; the requeue is only a safety net.
            Ok(Action::requeue(Duration::from_secs(5)))
        }
        _ => {
            // The namespace is gone (or never was ours). Volumes that were bound to it must be gone too.
            let volumes: Api<PersistentVolume> = Api::all(context.client.clone());
            let mut remaining = Vec::new();
            for volume in record
                .deleted
                .iter()
                .filter_map(|entry| entry.strip_prefix("PersistentVolume/"))
            {
                if volumes.get_opt(volume).await?.is_some() {
                    remaining.push(volume.to_owned());
                }
            }
            if !remaining.is_empty() {
                let message = format!(
                    "waiting for volumes to be deleted: {}",
                    remaining.join(", ")
                );
                write_status(
                    project,
                    context,
                    ProjectPhase::Closing,
                    Some(namespace_name),
                    closing("WaitingForVolumes", message),
                    Some(record),
                )
                .await?;
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
            record.completed_at = Some(now);
            let message = format!(
                "namespace {namespace_name} and {} object(s) in it confirmed deleted",
                record.deleted.len().saturating_sub(1)
            );
            write_status(
                project,
                context,
                ProjectPhase::Closed,
                None,
                closing("Closed", message.clone()),
                Some(record.clone()),
            )
            .await?;
            publish(
                context,
                project,
                EventType::Normal,
                "TeardownCompleted",
                "Teardown",
                message,
            )
            .await;
            if deleting {
                release_finalizer(project, context, &record).await?;
            }
            Ok(Action::await_change())
        }
    }
}

/// Every object in the namespace as `Kind/name`, and the volumes bound to its claims as
/// `PersistentVolume/name`: what the teardown record says was deleted. Secrets are not listed:
/// listing them needs the right to read every Secret in the cluster, which the operator must not
/// have; the namespace's confirmed deletion covers them.
async fn inventory(client: &Client, namespace: &str) -> Result<Vec<String>, Error> {
    async fn names<K>(client: &Client, namespace: &str) -> Result<Vec<String>, Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        let kind = K::kind(&());
        Ok(api
            .list_metadata(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|o| format!("{kind}/{}", o.name_any()))
            .collect())
    }
    let mut out = Vec::new();
    out.extend(names::<Workspace>(client, namespace).await?);
    out.extend(names::<StatefulSet>(client, namespace).await?);
    out.extend(names::<Pod>(client, namespace).await?);
    out.extend(names::<Service>(client, namespace).await?);
    out.extend(names::<ConfigMap>(client, namespace).await?);
    out.extend(names::<ServiceAccount>(client, namespace).await?);
    out.extend(names::<Role>(client, namespace).await?);
    out.extend(names::<RoleBinding>(client, namespace).await?);
    out.extend(names::<NetworkPolicy>(client, namespace).await?);
    out.extend(names::<ResourceQuota>(client, namespace).await?);
    out.extend(names::<LimitRange>(client, namespace).await?);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    for claim in claims.list(&ListParams::default()).await? {
        out.push(format!("PersistentVolumeClaim/{}", claim.name_any()));
        if let Some(volume) = claim
            .spec
            .and_then(|spec| spec.volume_name)
            .filter(|v| !v.is_empty())
        {
            out.push(format!("PersistentVolume/{volume}"));
        }
    }
    Ok(out)
}

/// Writes the status only when it differs from what is there, and records phase transitions.
async fn write_status(
    project: &Project,
    context: &Context,
    phase: ProjectPhase,
    namespace: Option<String>,
    conditions: Vec<Condition>,
    teardown: Option<TeardownRecord>,
) -> Result<(), Error> {
    let previous = project.status.clone().unwrap_or_default();
    let next = ProjectStatus {
        phase: Some(phase),
        namespace,
        conditions: settle(&previous.conditions, conditions, Utc::now()),
        observed_generation: project.metadata.generation,
        teardown: teardown.or(previous.teardown.clone()),
    };
    if next == previous {
        return Ok(());
    }
    let name = project.name_any();
    if context
        .written
        .already(&name, project.resource_version().as_deref(), &next)
    {
        return Ok(());
    }
    let projects: Api<Project> = Api::all(context.client.clone());
    let patch = json!({"apiVersion": "trellis.dev/v1alpha1", "kind": "Project", "status": next});
    projects
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    context.wrote();
    context
        .written
        .record(name, project.resource_version(), next.clone());
    if previous.phase != Some(phase) {
        let from = previous
            .phase
            .map_or("new".to_owned(), |p| format!("{p:?}"));
        let ready = next
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        info!(from = %from, to = ?phase, "project phase changed");
        let kind = if phase == ProjectPhase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(
            context,
            project,
            kind,
            &format!("{phase:?}"),
            "PhaseChanged",
            format!("{from} → {phase:?}: {ready}"),
        )
        .await;
    }
    Ok(())
}

async fn publish(
    context: &Context,
    project: &Project,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = context
        .recorder
        .publish(&event, &project.object_ref(&()))
        .await
    {
        // Events are for people; failing to record one must not stop the reconcile.
        warn!(%error, reason, "could not publish an event");
    }
}

async fn add_finalizer(project: &Project, context: &Context) -> Result<(), Error> {
    let mut finalizers = project.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    patch_finalizers(project, context, finalizers).await
}

async fn release_finalizer(
    project: &Project,
    context: &Context,
    record: &TeardownRecord,
) -> Result<(), Error> {
    if !project.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    info!(namespace = %record.namespace, "teardown complete; releasing the finalizer");
    context.written.forget(&project.name_any());
    let finalizers = project
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(project, context, finalizers).await
}

/// Sets the finalizers with an optimistic-concurrency check, so another writer's finalizer is
/// never lost: on conflict the reconcile is retried with fresh data.
async fn patch_finalizers(
    project: &Project,
    context: &Context,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let projects: Api<Project> = Api::all(context.client.clone());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": project.resource_version()}});
    projects
        .patch(
            &project.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    context.wrote();
    Ok(())
}

/// Who publishes Events: this controller, on this replica.
pub fn reporter(instance: &str) -> Reporter {
    Reporter {
        controller: "trellis-operator".into(),
        instance: Some(instance.to_owned()),
    }
}
