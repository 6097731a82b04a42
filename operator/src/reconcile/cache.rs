//! Watch caches: what the controllers know of the cluster without asking the apiserver.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

/// The last status this replica wrote for each object, with the resourceVersion it was computed
/// from. A reconcile that sees that same version again is looking at a cache that has not yet
/// caught up with our own write, and must not write (or announce) the same status twice.
pub struct WrittenStatuses<S> {
    entries: Mutex<HashMap<String, (Option<String>, S)>>,
}

impl<S> Default for WrittenStatuses<S> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
        }
    }
}

impl<S: PartialEq> WrittenStatuses<S> {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, (Option<String>, S)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `status` was already written from the object at `version`.
    pub fn already(&self, key: &str, version: Option<&str>, status: &S) -> bool {
        self.entries()
            .get(key)
            .is_some_and(|(written_from, written)| {
                written_from.as_deref() == version && written == status
            })
    }

    pub fn record(&self, key: String, version: Option<String>, status: S) {
        self.entries().insert(key, (version, status));
    }

    pub fn forget(&self, key: &str) {
        self.entries().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::WrittenStatuses;

    #[test]
    fn a_status_counts_as_written_only_from_the_same_version() {
        let written = WrittenStatuses::default();
        written.record("p".into(), Some("7".into()), "Active");
        assert!(written.already("p", Some("7"), &"Active"));
        assert!(
            !written.already("p", Some("8"), &"Active"),
            "a newer object may need it again"
        );
        assert!(!written.already("p", Some("7"), &"Suspended"));
        written.forget("p");
        assert!(!written.already("p", Some("7"), &"Active"));
    }
}
