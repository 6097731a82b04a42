//! Carries out a DataSHIELD plan (`datashield::plan`) for a provisioned project: applies what
//! drifted, deletes what is no longer wanted, and makes the Secret's values once.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::info;

use super::context::{Context, Error};
use super::datashield::{self, Plan, SecretValues};
use crate::reconcile::apply::apply_if_changed;
use crate::reconcile::cache::cached_or_live;
use crate::resources::Project;
use crate::resources::names::{DATASHIELD_NAME, namespace_name};

/// Applies `plan`; returns how many writes it made.
pub(super) async fn apply(project: &Project, context: &Context, plan: Plan) -> Result<u32, Error> {
    let namespace = namespace_name(&project.name_any());
    let client = &context.client;
    let stores = &context.stores;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let mut writes = 0;

    let spec = match (plan, project.spec.datashield_enabled()) {
        (Plan::Running | Plan::Stopped, Some(spec)) => spec,
        _ => {
            // Absent. The ServiceAccount is made first and deleted last: while it remains, a later
            // reconcile knows there is something left to delete. Only it is read live while the
            // caches fill, so a cold start costs a project without a server one read, not four.
            let present = cached(&stores.accounts, &accounts, &namespace)
                .await?
                .is_some()
                || stores.config_maps.get(&in_namespace(&namespace)).is_some()
                || stores.deployments.get(&in_namespace(&namespace)).is_some()
                || stores.services.get(&in_namespace(&namespace)).is_some();
            if present {
                info!("removing the DataSHIELD server: the project no longer asks for it");
                writes += delete(&deployments).await?;
                writes += delete(&services).await?;
                writes += delete(&secrets).await?;
                writes += delete(&configs).await?;
                writes += delete(&accounts).await?;
            }
            return Ok(writes);
        }
    };

    // Read live: the operator may not watch Secrets (only get this one by name).
    let existing = secrets.get_opt(DATASHIELD_NAME).await?;
    let mut random = [0u8; 36];
    rand::rng().fill_bytes(&mut random);
    let values = SecretValues::kept(existing.as_ref(), SecretValues::from_random(random));
    let wanted = datashield::build(project, spec, &values, &context.config);

    let cached_account = cached(&stores.accounts, &accounts, &namespace).await?;
    writes += u32::from(
        apply_if_changed(
            &accounts,
            cached_account.as_deref(),
            &wanted.service_account,
        )
        .await?,
    );
    let cached_config = cached(&stores.config_maps, &configs, &namespace).await?;
    writes +=
        u32::from(apply_if_changed(&configs, cached_config.as_deref(), &wanted.config_map).await?);
    writes += u32::from(apply_if_changed(&secrets, existing.as_ref(), &wanted.secret).await?);
    let cached_service = cached(&stores.services, &services, &namespace).await?;
    writes +=
        u32::from(apply_if_changed(&services, cached_service.as_deref(), &wanted.service).await?);
    let cached_deployment = cached(&stores.deployments, &deployments, &namespace).await?;
    match plan {
        Plan::Running => {
            writes += u32::from(
                apply_if_changed(
                    &deployments,
                    cached_deployment.as_deref(),
                    &wanted.deployment,
                )
                .await?,
            );
        }
        _ => {
            if cached_deployment.is_some() {
                info!("stopping the DataSHIELD server: the project is not active");
                writes += delete(&deployments).await?;
            }
        }
    }
    Ok(writes)
}

/// The server's object of this kind in `namespace`, for a cache lookup.
fn in_namespace<K: Resource<DynamicType = ()>>(namespace: &str) -> ObjectRef<K> {
    ObjectRef::new(DATASHIELD_NAME).within(namespace)
}

/// The server's object of this kind, from the cache (or live while the cache fills).
async fn cached<K>(
    store: &Store<K>,
    api: &Api<K>,
    namespace: &str,
) -> Result<Option<std::sync::Arc<K>>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(cached_or_live(
        store,
        api,
        &ObjectRef::new(DATASHIELD_NAME).within(namespace),
    )
    .await?)
}

/// Deletes the server's object of this kind (its pods with it); 1 if it was there.
async fn delete<K>(api: &Api<K>) -> Result<u32, Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    match api
        .delete(DATASHIELD_NAME, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(1),
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(0),
        Err(error) => Err(error.into()),
    }
}
