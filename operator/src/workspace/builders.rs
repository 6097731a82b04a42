//! The objects that run a workspace, built from the Workspace, its template and what validation
//! resolved. Pure functions: the controller applies what these return.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec,
    ResourceRequirements, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use super::validate::Resolved;
use crate::config::OperatorConfig;
use crate::pod::{TOKEN_DIR, TOKEN_VOLUME, env, hardened, mount, pod_security, token_volume};
use crate::resources::names::{
    COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, WORKSPACE_COMPONENT,
    WORKSPACE_LABEL, WORKSPACE_SERVICE_ACCOUNT,
};
use crate::resources::{Workspace, WorkspaceTemplate};

pub const HOME: &str = "/home/workspace";
pub const INPUTS: &str = "/data/inputs";
pub const OUTPUTS: &str = "/data/outputs";
/// The user workspace programs run as (not root).
pub const WORKSPACE_UID: i64 = 1000;
pub const WORKSPACE_GID: i64 = 100;

pub fn home_claim_name(workspace: &str) -> String {
    format!("home-{workspace}")
}

/// The path the gateway serves the workspace under.
pub fn url(project: &str, workspace: &str) -> String {
    format!("/w/{project}/{workspace}/")
}

/// Everything the operator owns for one workspace.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkspaceObjects {
    pub home: PersistentVolumeClaim,
    pub statefulset: StatefulSet,
    pub service: Service,
}

pub fn labels(project: &str, workspace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PROJECT_LABEL.to_owned(), project.to_owned()),
        (WORKSPACE_LABEL.to_owned(), workspace.to_owned()),
        (COMPONENT_LABEL.to_owned(), WORKSPACE_COMPONENT.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
    ])
}

pub fn build(
    workspace: &Workspace,
    project: &str,
    template: &WorkspaceTemplate,
    resolved: &Resolved,
    replicas: i32,
    config: &OperatorConfig,
) -> WorkspaceObjects {
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let labels = labels(project, &name);
    let metadata = |object_name: String| ObjectMeta {
        name: Some(object_name),
        namespace: Some(namespace.clone()),
        labels: Some(labels.clone()),
        owner_references: Some(workspace.controller_owner_ref(&()).into_iter().collect()),
        ..ObjectMeta::default()
    };
    let selector = LabelSelector {
        match_labels: Some(BTreeMap::from([(WORKSPACE_LABEL.to_owned(), name.clone())])),
        ..LabelSelector::default()
    };
    let home = PersistentVolumeClaim {
        metadata: metadata(home_claim_name(&name)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    resolved.storage.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    let service = Service {
        metadata: metadata(name.clone()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: selector.match_labels.clone(),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(template.spec.port),
                target_port: Some(IntOrString::Int(i32::from(template.spec.port))),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let mut pod_labels = labels.clone();
    pod_labels.remove(MANAGED_BY_LABEL);
    let statefulset = StatefulSet {
        metadata: metadata(name.clone()),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(name.clone()),
            selector,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(workspace, project, template, resolved, config)),
            },
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };
    WorkspaceObjects {
        home,
        statefulset,
        service,
    }
}

fn pod_spec(
    workspace: &Workspace,
    project: &str,
    template: &WorkspaceTemplate,
    resolved: &Resolved,
    config: &OperatorConfig,
) -> PodSpec {
    let name = workspace.name_any();
    let trellis_env = vec![
        env("TRELLIS_API_URL", config.api_url.clone()),
        env("TRELLIS_PROJECT", project),
        env("TRELLIS_WORKSPACE", name.clone()),
        // The path the gateway serves the workspace under; templates pass it to the program
        // (e.g. `--ServerApp.base_url=$(TRELLIS_BASE_PATH)`).
        env("TRELLIS_BASE_PATH", url(project, &name)),
        env("TRELLIS_TOKEN_FILE", format!("{TOKEN_DIR}/token")),
    ];
    let mut compute = BTreeMap::from([
        ("cpu".to_owned(), resolved.cpu.clone()),
        ("memory".to_owned(), resolved.memory.clone()),
    ]);
    if resolved.gpus > 0 {
        compute.insert("nvidia.com/gpu".into(), Quantity(resolved.gpus.to_string()));
    }
    let token = mount(TOKEN_VOLUME, TOKEN_DIR, true);
    let mut mounts = vec![
        mount("home", HOME, false),
        mount("inputs", INPUTS, true),
        VolumeMount {
            sub_path: Some("outputs".into()),
            ..mount("home", OUTPUTS, false)
        },
        token.clone(),
    ];
    let mut volumes = vec![
        Volume {
            name: "home".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: home_claim_name(&name),
                read_only: None,
            }),
            ..Volume::default()
        },
        Volume {
            name: "inputs".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        token_volume(),
    ];
    if template.spec.read_only_root_filesystem {
        mounts.push(mount("tmp", "/tmp", false));
        volumes.push(Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
    let mut workspace_env = trellis_env.clone();
    workspace_env.push(env("HOME", HOME));
    workspace_env.extend(
        template
            .spec
            .env
            .iter()
            .map(|variable| env(&variable.name, variable.value.clone())),
    );
    let non_empty = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
    PodSpec {
        service_account_name: Some(WORKSPACE_SERVICE_ACCOUNT.into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security(WORKSPACE_UID, WORKSPACE_GID)),
        init_containers: Some(vec![Container {
            name: "inputs".into(),
            image: Some(config.cli_image.clone()),
            command: Some(vec![
                "trellis".into(),
                "inputs".into(),
                "sync".into(),
                "--to".into(),
                INPUTS.into(),
            ]),
            env: Some(trellis_env),
            volume_mounts: Some(vec![mount("inputs", INPUTS, false), token]),
            security_context: Some(hardened(true)),
            resources: Some(ResourceRequirements {
                requests: Some(compute.clone()),
                limits: Some(compute.clone()),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }]),
        containers: vec![Container {
            name: "workspace".into(),
            image: Some(template.spec.image.clone()),
            command: non_empty(&template.spec.command),
            args: non_empty(&template.spec.args),
            env: Some(workspace_env),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(template.spec.port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            resources: Some(ResourceRequirements {
                requests: Some(compute.clone()),
                limits: Some(compute),
                ..ResourceRequirements::default()
            }),
            security_context: Some(hardened(template.spec.read_only_root_filesystem)),
            volume_mounts: Some(mounts),
            working_dir: Some(HOME.into()),
            ..Container::default()
        }],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn template(read_only_root: bool) -> WorkspaceTemplate {
        serde_json::from_value(json!({
            "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate", "metadata": {"name": "jupyter"},
            "spec": {
                "displayName": "JupyterLab", "image": "quay.io/jupyter/scipy-notebook:2026-10-20", "port": 8888,
                "args": ["start-notebook.py", "--ServerApp.base_url=/w/hip/analysis/"],
                "env": [{"name": "JUPYTER_ENABLE_LAB", "value": "yes"}],
                "resources": {"default": {"cpu": "1", "memory": "4Gi"}, "max": {"cpu": "4", "memory": "16Gi"}},
                "defaultStorage": "10Gi", "readOnlyRootFilesystem": read_only_root,
            },
        }))
        .unwrap()
    }

    fn objects(replicas: i32, read_only_root: bool, gpus: u32) -> Value {
        let workspace: Workspace = serde_json::from_value(json!({
            "apiVersion": "trellis.dev/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "analysis", "namespace": "trellis-hip", "uid": "6a1d0000-0000-4000-8000-000000000002"},
            "spec": {"owner": "alice", "template": "jupyter"},
        }))
        .unwrap();
        let resolved = Resolved {
            cpu: Quantity("2".into()),
            memory: Quantity("8Gi".into()),
            storage: Quantity("20Gi".into()),
            gpus,
        };
        let built = build(
            &workspace,
            "hip",
            &template(read_only_root),
            &resolved,
            replicas,
            &OperatorConfig::default(),
        );
        json!({
            "home": serde_json::to_value(&built.home).unwrap(),
            "statefulset": serde_json::to_value(&built.statefulset).unwrap(),
            "service": serde_json::to_value(&built.service).unwrap(),
        })
    }

    #[test]
    fn every_object_is_labelled_for_the_network_policies_and_owned_by_the_workspace() {
        let built = objects(1, false, 0);
        let labels = json!({
            "app.kubernetes.io/managed-by": "trellis-operator", "trellis.dev/component": "workspace",
            "trellis.dev/project": "hip", "trellis.dev/workspace": "analysis",
        });
        for object in ["home", "statefulset", "service"] {
            assert_eq!(built[object]["metadata"]["labels"], labels, "{object}");
            assert_eq!(
                built[object]["metadata"]["ownerReferences"][0]["kind"], "Workspace",
                "{object}"
            );
            assert_eq!(
                built[object]["metadata"]["ownerReferences"][0]["controller"], true,
                "{object}"
            );
        }
        let pod_labels = &built["statefulset"]["spec"]["template"]["metadata"]["labels"];
        assert_eq!(
            pod_labels["trellis.dev/component"], "workspace",
            "the NetworkPolicies select on it"
        );
        assert_eq!(built["home"]["metadata"]["name"], "home-analysis");
        assert_eq!(
            built["home"]["spec"]["resources"]["requests"]["storage"],
            "20Gi"
        );
        assert_eq!(
            built["service"]["spec"],
            json!({"type": "ClusterIP", "selector": {"trellis.dev/workspace": "analysis"},
                   "ports": [{"name": "http", "port": 8888, "targetPort": 8888, "protocol": "TCP"}]})
        );
    }

    #[test]
    fn running_is_one_replica_and_stopped_is_zero() {
        assert_eq!(objects(1, false, 0)["statefulset"]["spec"]["replicas"], 1);
        assert_eq!(objects(0, false, 0)["statefulset"]["spec"]["replicas"], 0);
    }

    #[test]
    fn the_pod_is_hardened_and_mounts_a_short_lived_trellis_token() {
        let built = objects(1, false, 0);
        let pod = &built["statefulset"]["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["enableServiceLinks"], false);
        assert_eq!(pod["serviceAccountName"], "workspace");
        assert_eq!(
            pod["securityContext"],
            json!({"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100,
                   "seccompProfile": {"type": "RuntimeDefault"}})
        );
        let hardened = |read_only: bool| {
            json!({"allowPrivilegeEscalation": false, "privileged": false, "capabilities": {"drop": ["ALL"]},
                   "runAsNonRoot": true, "readOnlyRootFilesystem": read_only, "seccompProfile": {"type": "RuntimeDefault"}})
        };
        assert_eq!(pod["containers"][0]["securityContext"], hardened(false));
        assert_eq!(pod["initContainers"][0]["securityContext"], hardened(true));
        assert_eq!(
            pod["volumes"][2],
            json!({"name": "trellis-token", "projected": {"defaultMode": 0o440, "sources": [
                {"serviceAccountToken": {"audience": "trellis", "expirationSeconds": 3600, "path": "token"}}]}})
        );
    }

    #[test]
    fn inputs_are_synced_first_and_mounted_read_only_outputs_live_on_the_home_volume() {
        let built = objects(1, false, 0);
        let pod = &built["statefulset"]["spec"]["template"]["spec"];
        let init = &pod["initContainers"][0];
        assert_eq!(init["image"], "trellis/cli:0.1.0");
        assert_eq!(
            init["command"],
            json!(["trellis", "inputs", "sync", "--to", "/data/inputs"])
        );
        assert_eq!(
            init["volumeMounts"],
            json!([{"name": "inputs", "mountPath": "/data/inputs"},
                   {"name": "trellis-token", "mountPath": "/var/run/secrets/trellis", "readOnly": true}])
        );
        let container = &pod["containers"][0];
        assert_eq!(
            container["volumeMounts"],
            json!([{"name": "home", "mountPath": "/home/workspace"},
                   {"name": "inputs", "mountPath": "/data/inputs", "readOnly": true},
                   {"name": "home", "mountPath": "/data/outputs", "subPath": "outputs"},
                   {"name": "trellis-token", "mountPath": "/var/run/secrets/trellis", "readOnly": true}])
        );
        let env: Vec<(String, String)> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_owned(),
                    e["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            env,
            [
                (
                    "TRELLIS_API_URL",
                    "http://trellis-api.trellis-system.svc:8443"
                ),
                ("TRELLIS_PROJECT", "hip"),
                ("TRELLIS_WORKSPACE", "analysis"),
                ("TRELLIS_BASE_PATH", "/w/hip/analysis/"),
                ("TRELLIS_TOKEN_FILE", "/var/run/secrets/trellis/token"),
                ("HOME", "/home/workspace"),
                ("JUPYTER_ENABLE_LAB", "yes"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            container["args"],
            json!(["start-notebook.py", "--ServerApp.base_url=/w/hip/analysis/"])
        );
        assert!(
            container.get("command").is_none(),
            "the image's entrypoint is kept when the template has none"
        );
        assert_eq!(
            container["resources"]["limits"],
            json!({"cpu": "2", "memory": "8Gi"})
        );
        assert_eq!(
            container["resources"]["requests"],
            json!({"cpu": "2", "memory": "8Gi"})
        );
    }

    #[test]
    fn a_read_only_root_gets_a_writable_tmp_and_gpus_are_requested_when_asked() {
        let built = objects(1, true, 1);
        let pod = &built["statefulset"]["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            true
        );
        assert!(
            pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "tmp" && v.get("emptyDir").is_some())
        );
        assert_eq!(
            pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
            "1"
        );
        let none = objects(1, false, 0);
        assert!(
            none["statefulset"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                .get("nvidia.com/gpu")
                .is_none()
        );
    }
}
