//! Writing an object's status: with server-side apply under the operator's field manager, and
//! only when it changed, so a steady cluster sees no writes.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::cache::WrittenStatuses;
use crate::resources::names::FIELD_MANAGER;

/// Writes `next` as the status of `object`, unless it is the status already there (`previous`)
/// or this replica already wrote it from the same resourceVersion (the cache has not caught up
/// with that write yet). Returns whether it wrote.
pub async fn write_status<K, S>(
    api: &Api<K>,
    object: &K,
    written: &WrittenStatuses<S>,
    previous: &S,
    next: &S,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq + Clone,
{
    if next == previous {
        return Ok(false);
    }
    let key = status_key(object);
    if written.already(&key, object.resource_version().as_deref(), next) {
        return Ok(false);
    }
    let patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": next});
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    written.record(key, object.resource_version(), next.clone());
    Ok(true)
}

/// The key of an object among the written statuses: `namespace/name`, or the name of a
/// cluster-scoped object.
pub fn status_key<K: Resource>(object: &K) -> String {
    match object.namespace() {
        Some(namespace) => format!("{namespace}/{}", object.name_any()),
        None => object.name_any(),
    }
}
