//! Tearing a closed or deleted Project down: stop its workspaces, record what its namespace
//! holds, delete the namespace, wait until it and the volumes bound to it are gone, then write
//! the record and let go of a deleted project. `plan.rs` decides each step.

use chrono::Utc;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota,
    Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tracing::info;

use super::context::{Context, Error, stop_workspaces, write_status};
use super::plan::{
    NamespaceState, TeardownStep, closed_status, closing_status, recorded_volumes,
    teardown_finished, teardown_record, teardown_step, with_inventory,
};
use crate::reconcile::events::publish;
use crate::reconcile::finalizer;
use crate::resources::names::{DATASHIELD_NAME, FINALIZER, namespace_name};
use crate::resources::{Project, TeardownRecord, Workspace};

/// One step of the teardown; requeued until the record says it is complete.
pub(super) async fn tear_down(project: &Project, context: &Context) -> Result<Action, Error> {
    let deleting = project.metadata.deletion_timestamp.is_some();
    let status = project.status.clone().unwrap_or_default();
    let now = Utc::now();

    if teardown_finished(&status) {
        if deleting && let Some(record) = &status.teardown {
            release(project, context, record).await?;
        }
        return Ok(Action::await_change());
    }

    let record = teardown_record(&status, &project.name_any(), now);
    let namespace_name = namespace_name(&project.name_any());
    let namespaces: Api<Namespace> = Api::all(context.client.clone());
    let namespace = namespaces.get_opt(&namespace_name).await?;
    let step = teardown_step(
        status.teardown.is_some(),
        NamespaceState::of(namespace.as_ref(), project),
    );
    match step {
        TeardownStep::DeleteNamespace { first } => {
            stop_workspaces(project, context, &namespace_name).await?;
            let inventory = inventory(&context.client, &namespace_name).await?;
            let record = with_inventory(record, inventory);
            write_status(project, context, closing_status(step, record, &[])).await?;
            if first {
                publish(
                    &context.recorder,
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
            context.count_write();
        }
        TeardownStep::WaitForNamespace => {
            write_status(project, context, closing_status(step, record, &[])).await?;
        }
        TeardownStep::CheckVolumes => {
            let volumes: Api<PersistentVolume> = Api::all(context.client.clone());
            let mut remaining = Vec::new();
            for volume in recorded_volumes(&record) {
                if volumes.get_opt(volume).await?.is_some() {
                    remaining.push(volume.to_owned());
                }
            }
            if !remaining.is_empty() {
                write_status(project, context, closing_status(step, record, &remaining)).await?;
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
            let (status, message) = closed_status(record, now);
            let record = status.teardown.clone();
            write_status(project, context, status).await?;
            publish(
                &context.recorder,
                project,
                EventType::Normal,
                "TeardownCompleted",
                "Teardown",
                message,
            )
            .await;
            if deleting && let Some(record) = &record {
                release(project, context, record).await?;
            }
            return Ok(Action::await_change());
        }
    }
    // The namespace watch wakes us when it goes; the requeue is only a safety net.
    Ok(Action::requeue(Duration::from_secs(5)))
}

/// Lets go of a deleted project once its teardown is recorded.
async fn release(
    project: &Project,
    context: &Context,
    record: &TeardownRecord,
) -> Result<(), Error> {
    if !finalizer::has(project, FINALIZER) {
        return Ok(());
    }
    info!(namespace = %record.namespace, "teardown complete; releasing the finalizer");
    context.written.forget(&project.name_any());
    let projects: Api<Project> = Api::all(context.client.clone());
    finalizer::remove(&projects, project, FINALIZER).await?;
    context.count_write();
    Ok(())
}

/// Every object in the namespace as `Kind/name`, and the volumes bound to its claims as
/// `PersistentVolume/name`: what the teardown record says was deleted. Secrets are not listed:
/// listing them needs the right to read every Secret in the cluster, which the operator must not
/// have; the namespace's confirmed deletion covers them. Only the DataSHIELD server's, which the
/// operator reads by name, is named.
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
    // The DataSHIELD server, whose pod holds the project's tables.
    out.extend(names::<Deployment>(client, namespace).await?);
    out.extend(names::<Pod>(client, namespace).await?);
    out.extend(names::<Service>(client, namespace).await?);
    out.extend(names::<ConfigMap>(client, namespace).await?);
    out.extend(names::<ServiceAccount>(client, namespace).await?);
    out.extend(names::<Role>(client, namespace).await?);
    out.extend(names::<RoleBinding>(client, namespace).await?);
    out.extend(names::<NetworkPolicy>(client, namespace).await?);
    out.extend(names::<ResourceQuota>(client, namespace).await?);
    out.extend(names::<LimitRange>(client, namespace).await?);
    // The one Secret the operator may read by name: the DataSHIELD server's.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if secrets.get_metadata_opt(DATASHIELD_NAME).await?.is_some() {
        out.push(format!("Secret/{DATASHIELD_NAME}"));
    }
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
