//! The objects that make a project's namespace a safe setting, built from the Project alone.
//! Pure functions: the controller applies what these return.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use kube_quantity::ParsedQuantity;

use crate::config::{ComputeResources, Labels, OperatorConfig};
use crate::resources::Project;
use crate::resources::names::{
    COMPONENT_LABEL, LIMIT_RANGE_NAME, MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, QUOTA_NAME,
    WORKSPACE_COMPONENT, WORKSPACE_SERVICE_ACCOUNT, namespace_name,
};

/// Everything the operator owns for one provisioned project.
#[derive(Clone, Debug, PartialEq)]
pub struct Guardrails {
    pub namespace: Namespace,
    pub quota: ResourceQuota,
    pub limits: LimitRange,
    pub network_policies: Vec<NetworkPolicy>,
    pub service_account: ServiceAccount,
}

/// Builds the guardrails. `allow_workloads` is false for suspended and expired projects: the
/// quota then admits no pods at all, so nothing can start even if something tries.
///
/// A project with a DataSHIELD server gets its NetworkPolicies too, and room for it in the
/// quota and limits on top of what `spec.resources` gives its workspaces.
pub fn guardrails(project: &Project, allow_workloads: bool, config: &OperatorConfig) -> Guardrails {
    let namespace = namespace_name(&project.name_any());
    let datashield = project
        .spec
        .datashield_enabled()
        .map(|_| &config.datashield_resources);
    let mut network_policies = network_policies(project, &namespace, config);
    if datashield.is_some() {
        network_policies.extend(super::datashield::network_policies(project, config));
    }
    Guardrails {
        namespace: namespace_object(project, &namespace),
        quota: quota(project, &namespace, allow_workloads, datashield),
        limits: limit_range(project, &namespace, datashield),
        network_policies,
        service_account: ServiceAccount {
            metadata: metadata(project, WORKSPACE_SERVICE_ACCOUNT, Some(&namespace)),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        },
    }
}

fn labels(project: &Project) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PROJECT_LABEL.to_owned(), project.name_any()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
    ])
}

fn owner(project: &Project) -> Vec<OwnerReference> {
    project.controller_owner_ref(&()).into_iter().collect()
}

pub(super) fn metadata(project: &Project, name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels(project)),
        owner_references: Some(owner(project)),
        ..ObjectMeta::default()
    }
}

fn namespace_object(project: &Project, name: &str) -> Namespace {
    let mut meta = metadata(project, name, None);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    for mode in ["enforce", "warn", "audit"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".into(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".into(),
        );
    }
    Namespace {
        metadata: meta,
        ..Namespace::default()
    }
}

/// `datashield`: what the project's DataSHIELD server uses, when it has one: one more pod and
/// Service, and its requests and limits, beside the workspaces' share.
fn quota(
    project: &Project,
    namespace: &str,
    allow_workloads: bool,
    datashield: Option<&ComputeResources>,
) -> ResourceQuota {
    let resources = &project.spec.resources;
    let workspaces = Quantity(resources.max_workspaces.to_string());
    let servers = u32::from(datashield.is_some());
    let pods = if allow_workloads {
        Quantity((resources.max_workspaces + servers).to_string())
    } else {
        Quantity("0".into())
    };
    let plus = |total: &Quantity, extra: Option<&String>| match extra {
        Some(extra) => sum(total, extra),
        None => total.clone(),
    };
    let hard = BTreeMap::from([
        (
            "requests.cpu".to_owned(),
            plus(&resources.cpu, datashield.map(|d| &d.cpu_request)),
        ),
        (
            "limits.cpu".to_owned(),
            plus(&resources.cpu, datashield.map(|d| &d.cpu_limit)),
        ),
        (
            "requests.memory".to_owned(),
            plus(&resources.memory, datashield.map(|d| &d.memory_request)),
        ),
        (
            "limits.memory".to_owned(),
            plus(&resources.memory, datashield.map(|d| &d.memory_limit)),
        ),
        ("requests.storage".to_owned(), resources.storage.clone()),
        (
            "requests.nvidia.com/gpu".to_owned(),
            Quantity(resources.gpus.to_string()),
        ),
        ("persistentvolumeclaims".to_owned(), workspaces),
        (
            "services".to_owned(),
            Quantity((resources.max_workspaces + servers).to_string()),
        ),
        ("services.nodeports".to_owned(), Quantity("0".into())),
        ("services.loadbalancers".to_owned(), Quantity("0".into())),
        ("pods".to_owned(), pods),
    ]);
    ResourceQuota {
        metadata: metadata(project, QUOTA_NAME, Some(namespace)),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

/// `total + extra` in the quantity's canonical form (as the apiserver stores it, so that the
/// stored quota compares equal); `total` alone if either does not parse.
fn sum(total: &Quantity, extra: &str) -> Quantity {
    match (
        ParsedQuantity::try_from(total),
        ParsedQuantity::try_from(extra),
    ) {
        (Ok(total), Ok(extra)) => Quantity((total + extra).to_string()),
        _ => total.clone(),
    }
}

/// The larger of two quantities (`a` if either does not parse).
fn larger(a: &Quantity, b: &str) -> Quantity {
    match (ParsedQuantity::try_from(a), ParsedQuantity::try_from(b)) {
        (Ok(parsed_a), Ok(parsed_b)) if parsed_b > parsed_a => Quantity(b.to_owned()),
        _ => a.clone(),
    }
}

/// Defaults for containers that do not ask (the workspace controller always asks), never above
/// what the whole project may use, so the LimitRange is always valid. The per-container maximum
/// admits the DataSHIELD server's containers when the project has one.
fn limit_range(
    project: &Project,
    namespace: &str,
    datashield: Option<&ComputeResources>,
) -> LimitRange {
    let resources = &project.spec.resources;
    let (max_cpu, max_memory) = match datashield {
        Some(server) => (
            larger(&resources.cpu, &server.cpu_limit),
            larger(&resources.memory, &server.memory_limit),
        ),
        None => (resources.cpu.clone(), resources.memory.clone()),
    };
    let at_most = |wanted: &str, cap: &Quantity| -> Quantity {
        match (
            ParsedQuantity::try_from(wanted),
            ParsedQuantity::try_from(cap),
        ) {
            (Ok(wanted_parsed), Ok(cap_parsed)) if wanted_parsed > cap_parsed => cap.clone(),
            _ => Quantity(wanted.to_owned()),
        }
    };
    let pair = |cpu: Quantity, memory: Quantity| {
        BTreeMap::from([("cpu".to_owned(), cpu), ("memory".to_owned(), memory)])
    };
    let container = LimitRangeItem {
        type_: "Container".into(),
        max: Some(pair(max_cpu, max_memory)),
        default: Some(pair(
            at_most("500m", &resources.cpu),
            at_most("1Gi", &resources.memory),
        )),
        default_request: Some(pair(
            at_most("100m", &resources.cpu),
            at_most("256Mi", &resources.memory),
        )),
        ..LimitRangeItem::default()
    };
    let claim = LimitRangeItem {
        type_: "PersistentVolumeClaim".into(),
        max: Some(BTreeMap::from([(
            "storage".to_owned(),
            resources.storage.clone(),
        )])),
        ..LimitRangeItem::default()
    };
    LimitRange {
        metadata: metadata(project, LIMIT_RANGE_NAME, Some(namespace)),
        spec: Some(LimitRangeSpec {
            limits: vec![container, claim],
        }),
    }
}

/// The apiserver stores quantities in a canonical spelling (`9000m` as `9`, `1024Mi` as `1Gi`):
/// each wanted quantity that means the same amount as the observed one takes its spelling, so a
/// sum the operator computed, or a spec written another way, does not look like drift.
fn spelled_as_observed(
    wanted: &mut BTreeMap<String, Quantity>,
    observed: Option<&BTreeMap<String, Quantity>>,
) {
    let Some(observed) = observed else { return };
    for (key, quantity) in wanted.iter_mut() {
        if let Some(stored) = observed.get(key)
            && stored != quantity
            && let (Ok(a), Ok(b)) = (
                ParsedQuantity::try_from(&*quantity),
                ParsedQuantity::try_from(stored),
            )
            && a == b
        {
            *quantity = stored.clone();
        }
    }
}

/// The quota and limits as wanted, spelled as the observed ones where they mean the same.
pub fn as_observed(
    mut quota: ResourceQuota,
    mut limits: LimitRange,
    observed_quota: Option<&ResourceQuota>,
    observed_limits: Option<&LimitRange>,
) -> (ResourceQuota, LimitRange) {
    if let Some(hard) = quota.spec.as_mut().and_then(|spec| spec.hard.as_mut()) {
        let stored = observed_quota.and_then(|q| q.spec.as_ref()?.hard.as_ref());
        spelled_as_observed(hard, stored);
    }
    if let Some(spec) = limits.spec.as_mut() {
        let stored = observed_limits.and_then(|l| l.spec.as_ref());
        for item in &mut spec.limits {
            let same = stored.and_then(|s| s.limits.iter().find(|o| o.type_ == item.type_));
            for (wanted, observed) in [
                (&mut item.max, same.and_then(|o| o.max.as_ref())),
                (&mut item.default, same.and_then(|o| o.default.as_ref())),
                (
                    &mut item.default_request,
                    same.and_then(|o| o.default_request.as_ref()),
                ),
            ] {
                if let Some(wanted) = wanted.as_mut() {
                    spelled_as_observed(wanted, observed);
                }
            }
        }
    }
    (quota, limits)
}

fn selector(labels: &Labels) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        ..LabelSelector::default()
    }
}

fn namespace_selector(namespace: &str) -> LabelSelector {
    selector(&Labels::from([(
        "kubernetes.io/metadata.name".to_owned(),
        namespace.to_owned(),
    )]))
}

fn workspace_pods() -> LabelSelector {
    selector(&Labels::from([(
        COMPONENT_LABEL.to_owned(),
        WORKSPACE_COMPONENT.to_owned(),
    )]))
}

pub(super) fn port(protocol: &str, number: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(i32::from(number))),
        ..NetworkPolicyPort::default()
    }
}

/// Out to the API's airlock port, and nowhere else: how files leave a workspace and how a
/// DataSHIELD server's tables come in.
pub(super) fn to_the_airlock(config: &OperatorConfig) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![peer(
            &config.control_plane_namespace,
            &config.airlock_pods,
        )]),
        ports: Some(vec![port("TCP", config.airlock_port)]),
    }
}

pub(super) fn peer(namespace: &str, pods: &Labels) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(namespace_selector(namespace)),
        pod_selector: Some(selector(pods)),
        ..NetworkPolicyPeer::default()
    }
}

/// Default deny in both directions; then DNS out, the gateway in, and the airlock out: the only
/// routes in or out of a project.
fn network_policies(
    project: &Project,
    namespace: &str,
    config: &OperatorConfig,
) -> Vec<NetworkPolicy> {
    let policy = |name: &str, spec: NetworkPolicySpec| NetworkPolicy {
        metadata: metadata(project, name, Some(namespace)),
        spec: Some(spec),
    };
    vec![
        policy(
            "trellis-default-deny",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            "trellis-allow-dns",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![peer(&config.dns_namespace, &config.dns_pods)]),
                    ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            "trellis-allow-gateway",
            NetworkPolicySpec {
                pod_selector: Some(workspace_pods()),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![peer(
                        &config.control_plane_namespace,
                        &config.gateway_pods,
                    )]),
                    ports: None,
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            "trellis-allow-airlock",
            NetworkPolicySpec {
                pod_selector: Some(workspace_pods()),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![to_the_airlock(config)]),
                ..NetworkPolicySpec::default()
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::project::tests::spec;

    fn project() -> Project {
        let mut project = Project::new("hip-fracture", spec());
        project.metadata.uid = Some("5f0c7a4e-0000-4000-8000-000000000001".into());
        project
    }

    fn to_json<T: serde::Serialize>(object: &T) -> Value {
        serde_json::to_value(object).unwrap()
    }

    fn common_metadata(name: &str) -> Value {
        json!({
            "name": name,
            "namespace": "trellis-hip-fracture",
            "labels": {"app.kubernetes.io/managed-by": "trellis-operator", "trellis.dev/project": "hip-fracture"},
            "ownerReferences": [{
                "apiVersion": "trellis.dev/v1alpha1", "kind": "Project", "name": "hip-fracture",
                "uid": "5f0c7a4e-0000-4000-8000-000000000001", "controller": true,
            }],
        })
    }

    #[test]
    fn the_namespace_is_labelled_owned_and_enforces_restricted_pod_security() {
        let built = guardrails(&project(), true, &OperatorConfig::default());
        let mut metadata = common_metadata("trellis-hip-fracture");
        metadata.as_object_mut().unwrap().remove("namespace");
        for mode in ["enforce", "warn", "audit"] {
            metadata["labels"][format!("pod-security.kubernetes.io/{mode}")] = json!("restricted");
            metadata["labels"][format!("pod-security.kubernetes.io/{mode}-version")] =
                json!("latest");
        }
        assert_eq!(
            to_json(&built.namespace),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
        );
    }

    #[test]
    fn the_quota_follows_spec_resources_and_admits_no_pods_when_workloads_are_not_allowed() {
        let hard = |allow| {
            to_json(&guardrails(&project(), allow, &OperatorConfig::default()).quota)["spec"]["hard"].clone()
        };
        let expected = |pods: &str| {
            json!({
                "requests.cpu": "8", "limits.cpu": "8", "requests.memory": "32Gi", "limits.memory": "32Gi",
                "requests.storage": "100Gi", "requests.nvidia.com/gpu": "0", "persistentvolumeclaims": "4",
                "services": "4", "services.nodeports": "0", "services.loadbalancers": "0", "pods": pods,
            })
        };
        assert_eq!(hard(true), expected("4"));
        assert_eq!(hard(false), expected("0"));
        let quota = to_json(&guardrails(&project(), true, &OperatorConfig::default()).quota);
        assert_eq!(quota["metadata"], common_metadata("trellis-quota"));
    }

    #[test]
    fn limit_range_defaults_never_exceed_what_the_project_may_use() {
        let limits = |cpu: &str, memory: &str| {
            let mut project = project();
            project.spec.resources.cpu = Quantity(cpu.into());
            project.spec.resources.memory = Quantity(memory.into());
            to_json(&guardrails(&project, true, &OperatorConfig::default()).limits)["spec"]["limits"].clone()
        };
        assert_eq!(
            limits("8", "32Gi"),
            json!([
                {"type": "Container", "max": {"cpu": "8", "memory": "32Gi"},
                 "default": {"cpu": "500m", "memory": "1Gi"}, "defaultRequest": {"cpu": "100m", "memory": "256Mi"}},
                {"type": "PersistentVolumeClaim", "max": {"storage": "100Gi"}},
            ])
        );
        let small = limits("250m", "512Mi");
        assert_eq!(
            small[0]["default"],
            json!({"cpu": "250m", "memory": "512Mi"}),
            "capped at the project's total"
        );
        assert_eq!(
            small[0]["defaultRequest"],
            json!({"cpu": "100m", "memory": "256Mi"})
        );
        let tiny = limits("50m", "128Mi");
        assert_eq!(
            tiny[0]["defaultRequest"],
            json!({"cpu": "50m", "memory": "128Mi"})
        );
    }

    #[test]
    fn network_policies_deny_everything_but_dns_the_gateway_in_and_the_airlock_out() {
        let config = OperatorConfig {
            control_plane_namespace: "trellis".into(),
            gateway_pods: Labels::from([("app".to_owned(), "gateway".to_owned())]),
            airlock_pods: Labels::from([("app".to_owned(), "airlock".to_owned())]),
            airlock_port: 9443,
            ..OperatorConfig::default()
        };
        let policies: Vec<Value> = guardrails(&project(), true, &config)
            .network_policies
            .iter()
            .map(to_json)
            .collect();
        let specs: Vec<(String, Value)> = policies
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_owned(),
                    p["spec"].clone(),
                )
            })
            .collect();
        let workspaces = json!({"matchLabels": {"trellis.dev/component": "workspace"}});
        let namespace = |name: &str| json!({"matchLabels": {"kubernetes.io/metadata.name": name}});
        assert_eq!(
            specs,
            vec![
                (
                    "trellis-default-deny".to_owned(),
                    json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
                ),
                (
                    "trellis-allow-dns".to_owned(),
                    json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                        "to": [{"namespaceSelector": namespace("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }]})
                ),
                (
                    "trellis-allow-gateway".to_owned(),
                    json!({"podSelector": workspaces, "policyTypes": ["Ingress"], "ingress": [{
                        "from": [{"namespaceSelector": namespace("trellis"), "podSelector": {"matchLabels": {"app": "gateway"}}}],
                    }]})
                ),
                (
                    "trellis-allow-airlock".to_owned(),
                    json!({"podSelector": workspaces, "policyTypes": ["Egress"], "egress": [{
                        "to": [{"namespaceSelector": namespace("trellis"), "podSelector": {"matchLabels": {"app": "airlock"}}}],
                        "ports": [{"protocol": "TCP", "port": 9443}],
                    }]})
                ),
            ]
        );
        for policy in &policies {
            assert_eq!(
                policy["metadata"]["ownerReferences"],
                common_metadata("x")["ownerReferences"]
            );
        }
    }

    #[test]
    fn quantities_keep_the_apiservers_spelling_when_they_mean_the_same_amount() {
        let mut project = project();
        project.spec.resources.cpu = Quantity("8000m".into());
        project.spec.resources.memory = Quantity("32768Mi".into());
        let wanted = guardrails(&project, true, &OperatorConfig::default());
        let mut stored_quota = wanted.quota.clone();
        let hard = stored_quota.spec.as_mut().unwrap().hard.as_mut().unwrap();
        hard.insert("requests.cpu".into(), Quantity("8".into()));
        hard.insert("requests.memory".into(), Quantity("32Gi".into()));
        // Changed in earnest: kept as wanted.
        hard.insert("limits.cpu".into(), Quantity("7".into()));
        let mut stored_limits = wanted.limits.clone();
        stored_limits.spec.as_mut().unwrap().limits[0]
            .max
            .as_mut()
            .unwrap()
            .insert("cpu".into(), Quantity("8".into()));
        let (quota, limits) = as_observed(
            wanted.quota.clone(),
            wanted.limits.clone(),
            Some(&stored_quota),
            Some(&stored_limits),
        );
        let hard = to_json(&quota)["spec"]["hard"].clone();
        assert_eq!(hard["requests.cpu"], "8");
        assert_eq!(hard["requests.memory"], "32Gi");
        assert_eq!(hard["limits.cpu"], "8000m", "a real change is applied");
        assert_eq!(to_json(&limits)["spec"]["limits"][0]["max"]["cpu"], "8");
        assert_eq!(
            as_observed(wanted.quota.clone(), wanted.limits.clone(), None, None),
            (wanted.quota, wanted.limits),
            "nothing observed: as built"
        );
    }

    #[test]
    fn the_workspace_service_account_never_mounts_a_token() {
        let account =
            to_json(&guardrails(&project(), true, &OperatorConfig::default()).service_account);
        assert_eq!(
            account,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": common_metadata("workspace"),
                   "automountServiceAccountToken": false})
        );
    }
}
