//! The Project controller: observe → plan (`plan.rs`) → apply → status, for every Project.
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
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, ResourceQuota, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self};
use kube::{Client, Resource, ResourceExt};
use tracing::{info, instrument, warn};

use super::builders::{self, Guardrails};
use super::context::{CONTROLLER, Context, Error, Stores, stop_workspaces, write_status};
use super::lifecycle::{Lifecycle, lifecycle};
use super::plan::{
    NamespaceState, Observed, Plan, Requeue, guardrails_refused, plan, wake_on_time,
};
use super::teardown::tear_down;
use super::{datashield, datashield_apply};
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::reconcile::apply::apply_if_changed;
use crate::reconcile::cache::{WrittenStatuses, cached_or_live, reflect};
use crate::reconcile::finalizer;
use crate::resources::Project;
use crate::resources::names::{
    COMPONENT_LABEL, DATASHIELD_COMPONENT, FINALIZER, MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL,
    namespace_name,
};

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
    // Only the DataSHIELD servers' objects: workspaces' Services are the workspace controller's.
    let datashield = format!("{managed},{COMPONENT_LABEL}={DATASHIELD_COMPONENT}");
    let (deployments, deployment_events) = reflect(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default().labels(&datashield),
    );
    let (config_maps, config_map_events) = reflect(
        Api::<ConfigMap>::all(client.clone()),
        watcher::Config::default().labels(&datashield),
    );
    let (services, service_events) = reflect(
        Api::<Service>::all(client.clone()),
        watcher::Config::default().labels(&datashield),
    );
    let stores = Stores {
        namespaces,
        quotas,
        limits,
        policies,
        accounts,
        deployments,
        config_maps,
        services,
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
        // A server's readiness is in its Deployment's status.
        .owns_stream(deployment_events)
        .owns_stream(config_map_events)
        .owns_stream(service_events)
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
    if !deleting && !finalizer::has(project, FINALIZER) {
        let projects: Api<Project> = Api::all(context.client.clone());
        finalizer::add(&projects, project, FINALIZER).await?;
        context.count_write();
        // The patch is itself an event: the next reconcile sees the finalizer and carries on.
        return Ok(Action::await_change());
    }
    let now = Utc::now();
    let life = lifecycle(&project.spec, deleting, now.date_naive());
    if life == Lifecycle::TearDown {
        return tear_down(project, context).await;
    }
    let name = project.name_any();
    let wanted = builders::guardrails(project, life.allows_workloads(), &context.config);
    let namespace = if life.is_provisioned() {
        observe_namespace(project, context).await?
    } else {
        NamespaceState::Absent
    };
    let observed = Observed {
        name: &name,
        spec: &project.spec,
        lifecycle: &life,
        phase: project.status.as_ref().and_then(|status| status.phase),
        namespace,
        network_policies: wanted.network_policies.len(),
    };
    let requeue = match plan(&observed) {
        Plan::Hold { status, requeue } => {
            write_status(project, context, status).await?;
            requeue
        }
        Plan::Provision {
            stop_workspaces: stop,
            status,
        } => {
            let server =
                datashield::plan(project.spec.datashield.as_ref(), life.allows_workloads());
            let applied = match apply_guardrails(project, context, &wanted).await {
                Ok(()) => datashield_apply::apply(project, context, server)
                    .await
                    .map(|writes| (0..writes).for_each(|_| context.count_write())),
                Err(error) => Err(error),
            };
            match applied {
                Ok(()) => {}
                Err(Error::Kube(kube::Error::Api(refusal))) if refusal.code == 422 => {
                    let existed = namespace != NamespaceState::Absent;
                    let status = guardrails_refused(&name, &refusal.message, existed);
                    write_status(project, context, status).await?;
                    return Ok(action(wake_on_time(Requeue::OnChange, &project.spec, now)));
                }
                Err(error) => return Err(error),
            }
            if stop {
                stop_workspaces(project, context, &namespace_name(&name)).await?;
            }
            write_status(project, context, status).await?;
            Requeue::OnChange
        }
    };
    Ok(action(wake_on_time(requeue, &project.spec, now)))
}

/// The controller's answer for a requeue.
fn action(requeue: Requeue) -> Action {
    match requeue {
        Requeue::OnChange => Action::await_change(),
        Requeue::After(wait) => Action::requeue(wait),
    }
}

/// The project's namespace, from the cache (or the apiserver while the cache is filling).
async fn observe_namespace(project: &Project, context: &Context) -> Result<NamespaceState, Error> {
    let name = namespace_name(&project.name_any());
    let existing = match context.stores.namespaces.get(&ObjectRef::new(&name)) {
        Some(namespace) => Some(namespace),
        None => Api::<Namespace>::all(context.client.clone())
            .get_opt(&name)
            .await?
            .map(Arc::new),
    };
    Ok(NamespaceState::of(existing.as_deref(), project))
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
    let cached_quota = cached_or_live(
        &stores.quotas,
        &quotas,
        &in_namespace(&wanted.quota.name_any(), &namespace),
    )
    .await?;
    let limits: Api<LimitRange> = Api::namespaced(client.clone(), &namespace);
    let cached_limits = cached_or_live(
        &stores.limits,
        &limits,
        &in_namespace(&wanted.limits.name_any(), &namespace),
    )
    .await?;
    let (quota, limit_range) = builders::as_observed(
        wanted.quota.clone(),
        wanted.limits.clone(),
        cached_quota.as_deref(),
        cached_limits.as_deref(),
    );
    writes += u32::from(apply_if_changed(&quotas, cached_quota.as_deref(), &quota).await?);
    writes += u32::from(apply_if_changed(&limits, cached_limits.as_deref(), &limit_range).await?);
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
        match policies
            .delete(&orphan.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => writes += 1,
            // Already gone: the cache had not yet seen an earlier reconcile's deletion (e.g. the
            // second of a DataSHIELD server's two policies).
            Err(kube::Error::Api(response)) if response.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    for _ in 0..writes {
        context.count_write();
    }
    Ok(())
}
