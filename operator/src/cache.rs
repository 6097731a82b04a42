//! Watch caches: what the controllers know of the cluster without asking the apiserver.

use std::fmt::Debug;
use std::sync::Arc;

use futures::{FutureExt, Stream};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// A cache of what `api` returns under `config`, and the stream of its changes (deletions
/// included) that keeps it filled. Managed fields are dropped: controllers never read them and
/// they would dominate the cache's memory.
pub fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>>)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config.any_semantic())
        .modify(|object| object.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects()
        .default_backoff();
    (store, stream)
}

/// The cached object, or, while the cache is still filling after a start, the live one:
/// deciding drift from a half-filled cache would re-apply everything after each restart.
pub async fn cached_or_live<K>(
    store: &Store<K>,
    api: &Api<K>,
    reference: &ObjectRef<K>,
) -> Result<Option<Arc<K>>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if let Some(cached) = store.get(reference) {
        return Ok(Some(cached));
    }
    if store.wait_until_ready().now_or_never().is_some() {
        return Ok(None);
    }
    Ok(api.get_opt(&reference.name).await?.map(Arc::new))
}
