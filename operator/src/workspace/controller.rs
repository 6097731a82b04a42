//! The Workspace controller: observe (project, template, siblings) → validate → build → apply →
//! plan the status (`plan.rs`) → write it. Invalid workspaces are `Failed` with a reason and never run; valid ones get a
//! home volume, a one-replica StatefulSet (zero when stopped) and a Service.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use thiserror::Error;
use tracing::{info, instrument, warn};

use super::builders;
use super::plan::{self, Requeue, idle_deadline};
use super::validate::validate;
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::reconcile::apply::{apply_if_changed, stop_workspace};
use crate::reconcile::cache::{WrittenStatuses, cached_or_live, reflect};
use crate::reconcile::conditions::settle;
use crate::reconcile::events::publish;
use crate::reconcile::status;
use crate::resources::names::{
    COMPONENT_LABEL, LAST_ACTIVITY_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL, WORKSPACE_COMPONENT,
    namespace_name, project_of_namespace,
};
use crate::resources::{
    Project, ProjectPhase, Workspace, WorkspacePhase, WorkspaceStatus, WorkspaceTemplate,
};

const CONTROLLER: &str = "workspace";

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
}

pub struct Context {
    client: Client,
    config: OperatorConfig,
    projects: Store<Project>,
    templates: Store<WorkspaceTemplate>,
    workspaces: Store<Workspace>,
    statefulsets: Store<StatefulSet>,
    services: Store<Service>,
    claims: Store<PersistentVolumeClaim>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// Statuses already written, so a lagging cache does not cause the same write twice.
    written: WrittenStatuses<WorkspaceStatus>,
}

impl Context {
    fn count_write(&self) {
        self.metrics.wrote(CONTROLLER);
    }
}

pub async fn run(
    client: Client,
    config: OperatorConfig,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let owned = watcher::Config::default().labels(&format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={WORKSPACE_COMPONENT}"
    ));
    let mut project_watch = watcher::Config::default();
    if let Some(selector) = &config.project_selector {
        project_watch = project_watch.labels(selector);
    }
    let (projects, project_events) = reflect(Api::<Project>::all(client.clone()), project_watch);
    let (templates, template_events) = reflect(
        Api::<WorkspaceTemplate>::all(client.clone()),
        watcher::Config::default(),
    );
    let (statefulsets, statefulset_events) =
        reflect(Api::<StatefulSet>::all(client.clone()), owned.clone());
    let (services, service_events) = reflect(Api::<Service>::all(client.clone()), owned.clone());
    let (claims, claim_events) = reflect(Api::<PersistentVolumeClaim>::all(client.clone()), owned);
    let (workspaces, workspace_events) = reflect(
        Api::<Workspace>::all(client.clone()),
        watcher::Config::default(),
    );

    // Any workspace that comes or goes can free (or take) a place under maxWorkspaces.
    let sibling_events = watcher(
        Api::<Workspace>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .touched_objects()
    .default_backoff();
    let context = Arc::new(Context {
        client,
        config,
        projects,
        templates,
        workspaces: workspaces.clone(),
        statefulsets,
        services,
        claims,
        recorder,
        metrics,
        written: WrittenStatuses::default(),
    });
    // A change to a Project or a template can make its workspaces valid or invalid.
    let by_project = workspaces.clone();
    let by_template = workspaces.clone();
    let by_sibling = workspaces.clone();
    Controller::for_stream(workspace_events, workspaces)
        // The debounce lets the workspace cache catch up with an event seen first by another watch
        // (a sibling's deletion), so the reconcile it triggers counts the right siblings.
        .with_config(
            controller::Config::default()
                .concurrency(16)
                .debounce(Duration::from_millis(250)),
        )
        .owns_stream(statefulset_events)
        .owns_stream(service_events)
        .owns_stream(claim_events)
        .watches_stream(project_events, move |project: Project| {
            let namespace = namespace_name(&project.name_any());
            by_project
                .state()
                .into_iter()
                .filter(|workspace| workspace.namespace().as_deref() == Some(namespace.as_str()))
                .map(|workspace| ObjectRef::from_obj(&*workspace))
                .collect::<Vec<_>>()
        })
        .watches_stream(template_events, move |template: WorkspaceTemplate| {
            by_template
                .state()
                .into_iter()
                .filter(|workspace| workspace.spec.template == template.name_any())
                .map(|workspace| ObjectRef::from_obj(&*workspace))
                .collect::<Vec<_>>()
        })
        .watches_stream(sibling_events, move |changed: Workspace| {
            by_sibling
                .state()
                .into_iter()
                .filter(|workspace| {
                    workspace.namespace() == changed.namespace()
                        && workspace.name_any() != changed.name_any()
                        && workspace.status.as_ref().and_then(|s| s.phase)
                            == Some(WorkspacePhase::Failed)
                })
                .map(|workspace| ObjectRef::from_obj(&*workspace))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy(workspace: Arc<Workspace>, error: &Error, _: Arc<Context>) -> Action {
    warn!(workspace = %workspace.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

#[instrument(skip_all, fields(namespace = %workspace.namespace().unwrap_or_default(), workspace = %workspace.name_any()))]
async fn reconcile(workspace: Arc<Workspace>, context: Arc<Context>) -> Result<Action, Error> {
    context
        .metrics
        .observe(CONTROLLER, reconcile_workspace(&workspace, &context))
        .await
}

/// Whose workspace this is: its Project (namespace `trellis-<project>`), or that it belongs to
/// no project, or that its project is managed by another operator (outside `--project-selector`).
enum Owner {
    Project(Arc<Project>),
    NoProject,
    OtherOperator,
}

async fn owner_of(workspace: &Workspace, context: &Context) -> Result<Owner, Error> {
    let Some(name) = workspace
        .namespace()
        .and_then(|ns| project_of_namespace(&ns).map(str::to_owned))
    else {
        return Ok(Owner::NoProject);
    };
    if let Some(project) = context.projects.get(&ObjectRef::new(&name)) {
        return Ok(Owner::Project(project));
    }
    // Not cached: the cache may still be filling, or the project is outside our selector.
    let live = Api::<Project>::all(context.client.clone())
        .get_opt(&name)
        .await?;
    let cache_filled = context.projects.wait_until_ready().now_or_never().is_some();
    Ok(match live {
        None => Owner::NoProject,
        Some(_) if cache_filled && context.config.project_selector.is_some() => {
            Owner::OtherOperator
        }
        Some(project) => Owner::Project(Arc::new(project)),
    })
}

async fn reconcile_workspace(workspace: &Workspace, context: &Context) -> Result<Action, Error> {
    if workspace.metadata.deletion_timestamp.is_some() {
        // Owner references take the StatefulSet, Service and home volume with it.
        return Ok(Action::await_change());
    }
    let namespace = workspace.namespace().unwrap_or_default();
    let name = workspace.name_any();
    let generation = workspace.metadata.generation;
    let project = match owner_of(workspace, context).await? {
        Owner::Project(project) => Some(project),
        Owner::NoProject => None,
        Owner::OtherOperator => return Ok(Action::await_change()),
    };
    let template = context
        .templates
        .get(&ObjectRef::new(&workspace.spec.template));
    let siblings = context.workspaces.state();
    let siblings: Vec<&Workspace> = siblings
        .iter()
        .map(AsRef::as_ref)
        .filter(|other| other.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|other| {
            other.status.as_ref().and_then(|s| s.phase) != Some(WorkspacePhase::Failed)
                || other.name_any() == name
        })
        .collect();
    let statefulsets: Api<StatefulSet> = Api::namespaced(context.client.clone(), &namespace);
    let now = Utc::now();
    let previous = workspace.status.clone().unwrap_or_default();
    let last_activity = workspace
        .annotations()
        .get(LAST_ACTIVITY_ANNOTATION)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&Utc))
        .or(previous.last_activity);

    let valid = match validate(
        workspace,
        project.as_deref(),
        template.as_deref(),
        &siblings,
    ) {
        Ok(valid) => valid,
        Err(refusal) => {
            // Whatever ran before (e.g. the owner has since left the project) stops now.
            if let Some(existing) = cached_or_live(
                &context.statefulsets,
                &statefulsets,
                &ObjectRef::new(&name).within(&namespace),
            )
            .await?
                && existing.spec.as_ref().and_then(|spec| spec.replicas) != Some(0)
            {
                let stop = json!({"spec": {"replicas": 0}});
                statefulsets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&stop))
                    .await?;
                context.count_write();
            }
            let (status, requeue) = plan::refused(&refusal, generation, last_activity);
            write_status(workspace, context, status).await?;
            return Ok(action(requeue));
        }
    };
    let (project, template, resolved) = (valid.project, valid.template, valid.resolved);
    let project_name = project.name_any();
    let project_active =
        project.status.as_ref().and_then(|s| s.phase) == Some(ProjectPhase::Active);

    // Idle shutdown: the gateway records activity; past the deadline the workspace is stopped.
    let mut running = workspace.spec.running;
    let deadline = idle_deadline(
        workspace.spec.idle_timeout.as_deref(),
        last_activity,
        previous.started_at,
    );
    if plan::idle_stop(running, deadline, now) {
        stop_idle(workspace, context).await?;
        running = false;
    }
    let wants_running = plan::wants_running(running, project_active);
    let objects = builders::build(
        workspace,
        &project_name,
        template,
        &resolved,
        i32::from(wants_running),
        &context.config,
    );
    let statefulset = apply_objects(context, &namespace, &name, &objects).await?;

    let status = plan::status(&plan::Observed {
        project: &project_name,
        running,
        project_active,
        statefulset: statefulset.as_deref(),
        previous: &previous,
        generation,
        url: builders::url(&project_name, &name),
        last_activity,
        now,
    });
    let requeue = plan::next_check(
        workspace.spec.idle_timeout.as_deref(),
        &status,
        wants_running,
        now,
    );
    let phase = status.phase;
    write_status(workspace, context, status).await?;
    if previous.phase != phase {
        info!(to = ?phase, "workspace phase changed");
    }
    Ok(action(requeue))
}

fn action(requeue: Requeue) -> Action {
    match requeue {
        Requeue::OnChange => Action::await_change(),
        Requeue::After(wait) => Action::requeue(wait),
    }
}

/// Turns `spec.running` off for a workspace idle past its deadline, and says so.
async fn stop_idle(workspace: &Workspace, context: &Context) -> Result<(), Error> {
    let workspaces: Api<Workspace> = Api::namespaced(
        context.client.clone(),
        &workspace.namespace().unwrap_or_default(),
    );
    stop_workspace(&workspaces, &workspace.name_any()).await?;
    context.count_write();
    let timeout = workspace.spec.idle_timeout.clone().unwrap_or_default();
    publish(
        &context.recorder,
        workspace,
        EventType::Normal,
        "IdleShutdown",
        "Reconcile",
        format!("no activity for {timeout}: stopped"),
    )
    .await;
    Ok(())
}

/// Applies the workspace's home volume, Service and StatefulSet where they drifted. Returns the
/// StatefulSet as it was observed before (None before it exists): the phase is read from it.
async fn apply_objects(
    context: &Context,
    namespace: &str,
    name: &str,
    objects: &builders::WorkspaceObjects,
) -> Result<Option<Arc<StatefulSet>>, Error> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(context.client.clone(), namespace);
    let services: Api<Service> = Api::namespaced(context.client.clone(), namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(context.client.clone(), namespace);
    let cached = cached_or_live(
        &context.claims,
        &claims,
        &ObjectRef::new(&objects.home.name_any()).within(namespace),
    )
    .await?;
    // A claim's size can only grow and the rest of its spec is fixed once made: apply it whole
    // only when creating it, and afterwards keep just its labels and owner current.
    let home = match &cached {
        None => objects.home.clone(),
        Some(_) => PersistentVolumeClaim {
            spec: None,
            ..objects.home.clone()
        },
    };
    let mut writes = u32::from(apply_if_changed(&claims, cached.as_deref(), &home).await?);
    let cached = cached_or_live(
        &context.services,
        &services,
        &ObjectRef::new(name).within(namespace),
    )
    .await?;
    writes += u32::from(apply_if_changed(&services, cached.as_deref(), &objects.service).await?);
    let cached = cached_or_live(
        &context.statefulsets,
        &statefulsets,
        &ObjectRef::new(name).within(namespace),
    )
    .await?;
    writes +=
        u32::from(apply_if_changed(&statefulsets, cached.as_deref(), &objects.statefulset).await?);
    for _ in 0..writes {
        context.count_write();
    }
    Ok(cached)
}

/// Writes the status when it differs from what is there, and announces a phase change.
async fn write_status(
    workspace: &Workspace,
    context: &Context,
    mut next: WorkspaceStatus,
) -> Result<(), Error> {
    let previous = workspace.status.clone().unwrap_or_default();
    next.conditions = settle(&previous.conditions, next.conditions, Utc::now());
    let api: Api<Workspace> = Api::namespaced(
        context.client.clone(),
        &workspace.namespace().unwrap_or_default(),
    );
    if !status::write_status(&api, workspace, &context.written, &previous, &next).await? {
        return Ok(());
    }
    context.count_write();
    if let Some(phase) = next.phase
        && previous.phase != next.phase
    {
        let message = next
            .conditions
            .first()
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let kind = if phase == WorkspacePhase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(
            &context.recorder,
            workspace,
            kind,
            phase.as_str(),
            "Reconcile",
            message,
        )
        .await;
    }
    Ok(())
}
