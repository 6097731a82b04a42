//! Server-side apply that stays silent in steady state: an object is applied only when the
//! cached copy does not already contain every field the operator wants.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resources::names::FIELD_MANAGER;

/// Whether `observed` already has every field of `desired` with the same value. Fields only in
/// `observed` (defaults, status, other managers' fields) do not matter; lists must match
/// element by element, as server-side apply would make them.
pub fn contains(observed: &Value, desired: &Value) -> bool {
    match (observed, desired) {
        (Value::Object(observed), Value::Object(desired)) => desired
            .iter()
            .all(|(key, want)| observed.get(key).is_some_and(|have| contains(have, want))),
        (Value::Array(observed), Value::Array(desired)) => {
            observed.len() == desired.len()
                && observed
                    .iter()
                    .zip(desired)
                    .all(|(have, want)| contains(have, want))
        }
        (observed, desired) => observed == desired,
    }
}

/// Applies `desired` unless `cached` already matches it. Returns whether a write was made.
pub async fn apply_if_changed<K>(
    api: &Api<K>,
    cached: Option<&K>,
    desired: &K,
) -> Result<bool, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    if let Some(cached) = cached {
        let up_to_date = match (serde_json::to_value(cached), serde_json::to_value(desired)) {
            (Ok(observed), Ok(wanted)) => contains(&observed, &wanted),
            _ => false,
        };
        if up_to_date {
            return Ok(false);
        }
    }
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
    )
    .await?;
    Ok(true)
}

/// Turns a workspace's `spec.running` off: the project controller does it when its project
/// stops, the workspace controller when the workspace has been idle too long. The workspace
/// controller then scales it down.
pub async fn stop_workspace(
    workspaces: &Api<crate::resources::Workspace>,
    name: &str,
) -> Result<(), kube::Error> {
    let stop = serde_json::json!({"spec": {"running": false}});
    workspaces
        .patch(name, &PatchParams::default(), &Patch::Merge(&stop))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn extra_observed_fields_do_not_count_as_drift() {
        let observed = json!({"metadata": {"name": "a", "uid": "1", "labels": {"x": "1", "y": "2"}}, "status": {}});
        assert!(contains(
            &observed,
            &json!({"metadata": {"name": "a", "labels": {"x": "1"}}})
        ));
    }

    #[test]
    fn a_changed_or_missing_field_is_drift() {
        let observed = json!({"spec": {"hard": {"pods": "4"}}});
        assert!(!contains(
            &observed,
            &json!({"spec": {"hard": {"pods": "0"}}})
        ));
        assert!(!contains(
            &observed,
            &json!({"spec": {"hard": {"services": "4"}}})
        ));
        assert!(!contains(&json!({}), &json!({"spec": {}})));
    }

    #[test]
    fn lists_must_match_element_by_element() {
        let observed =
            json!({"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]});
        assert!(contains(
            &observed,
            &json!({"ports": [{"port": 53}, {"port": 53}]})
        ));
        assert!(
            !contains(&observed, &json!({"ports": [{"port": 53}]})),
            "a removed element is drift"
        );
        assert!(!contains(
            &observed,
            &json!({"ports": [{"port": 53, "protocol": "TCP"}, {"port": 53}]})
        ));
    }
}
