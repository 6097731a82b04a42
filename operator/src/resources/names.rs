//! The names the operator, the API and cluster administrators agree on: labels, annotations,
//! field managers, the finalizer, and the namespace of each project. Everything outside the
//! controllers that needs one of them imports it from here, never from a controller's builders.

/// The field manager the operator applies with.
pub const FIELD_MANAGER: &str = "trellis-operator";
/// The field manager of the API's writes, so `managedFields` show who changed what.
pub const API_FIELD_MANAGER: &str = "trellis-api";
/// Marks every object the operator owns; its watches select on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "trellis-operator";
/// The project an object belongs to.
pub const PROJECT_LABEL: &str = "trellis.dev/project";
/// What a pod is within a project; NetworkPolicies select workspace pods by it.
pub const COMPONENT_LABEL: &str = "trellis.dev/component";
pub const WORKSPACE_COMPONENT: &str = "workspace";
/// Names the workspace a pod, Service or volume belongs to.
pub const WORKSPACE_LABEL: &str = "trellis.dev/workspace";
/// Set by the gateway (RFC 3339) whenever it proxies traffic; drives idle shutdown.
pub const LAST_ACTIVITY_ANNOTATION: &str = "trellis.dev/last-activity";
/// Holds a Project until its teardown is complete.
pub const FINALIZER: &str = "trellis.dev/teardown";
/// The ServiceAccount workspace pods run as.
pub const WORKSPACE_SERVICE_ACCOUNT: &str = "workspace";
/// The quota and limits of a project's namespace.
pub const QUOTA_NAME: &str = "trellis-quota";
pub const LIMIT_RANGE_NAME: &str = "trellis-limits";
/// Audience of the workspace's token for the Trellis API; checked with TokenReview.
pub const TOKEN_AUDIENCE: &str = "trellis";

/// A project's DataSHIELD server: the name of its Deployment, Service, ServiceAccount, ConfigMap
/// and Secret in the project's namespace, and the component label of its pod.
pub const DATASHIELD_NAME: &str = "trellis-datashield";
pub const DATASHIELD_COMPONENT: &str = "datashield";
/// The port the DataSHIELD server listens on in its pod.
pub const DATASHIELD_PORT: u16 = 8095;
/// Keys of the DataSHIELD ConfigMap: the profile (disclosure settings) the server loads, and the
/// tables file (which released ingress files become which tables) its init container fetches by.
pub const DATASHIELD_PROFILE_KEY: &str = "profile.yaml";
pub const DATASHIELD_TABLES_KEY: &str = "tables.yaml";
/// Keys of the DataSHIELD Secret: the secret the API proves itself with when it forwards a
/// caller, and the seed of the functions that add noise (fixed for the project's life).
pub const DATASHIELD_PROXY_SECRET_KEY: &str = "proxy-secret";
pub const DATASHIELD_SEED_KEY: &str = "seed";
/// Headers the API forwards a DataSHIELD call with: the proxy secret and the caller's subject.
pub const DATASHIELD_PROXY_SECRET_HEADER: &str = "x-trellis-proxy-secret";
pub const DATASHIELD_USER_HEADER: &str = "x-trellis-user";

const NAMESPACE_PREFIX: &str = "trellis-";

/// The namespace a project's workspaces live in.
pub fn namespace_name(project: &str) -> String {
    format!("{NAMESPACE_PREFIX}{project}")
}

/// The project whose namespace this is, by name alone (whether that project exists is for the
/// caller to find out): the inverse of [`namespace_name`].
pub fn project_of_namespace(namespace: &str) -> Option<&str> {
    namespace.strip_prefix(NAMESPACE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_name_leads_back_to_its_project() {
        assert_eq!(namespace_name("hip-fracture"), "trellis-hip-fracture");
        assert_eq!(
            project_of_namespace(&namespace_name("hip-fracture")),
            Some("hip-fracture")
        );
        assert_eq!(project_of_namespace("kube-system"), None);
    }
}
