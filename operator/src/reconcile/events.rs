//! Kubernetes Events, for people reading `kubectl describe`.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

use crate::resources::names::MANAGED_BY;

/// Who publishes Events: the operator, on this replica.
pub fn reporter(instance: &str) -> Reporter {
    Reporter {
        controller: MANAGED_BY.into(),
        instance: Some(instance.to_owned()),
    }
}

/// Publishes an Event about `object`.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    object: &K,
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
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        // Events are for people; failing to record one must not stop the reconcile.
        warn!(%error, reason, "could not publish an event");
    }
}
