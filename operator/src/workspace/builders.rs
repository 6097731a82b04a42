//! The objects that run a workspace, built from the Workspace, its template and what validation
//! resolved. Pure functions: the controller applies what these return.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecurityContext,
    Service, ServiceAccountTokenProjection, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeProjection, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use super::validate::Resolved;
use crate::config::OperatorConfig;
use crate::project::builders::{
    COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, WORKSPACE_COMPONENT,
    WORKSPACE_SERVICE_ACCOUNT,
};
use crate::resources::{Workspace, WorkspaceTemplate};

/// Names the workspace a pod, Service or volume belongs to.
pub const WORKSPACE_LABEL: &str = "trellis.dev/workspace";
/// Set by the gateway (RFC 3339) whenever it proxies traffic; drives idle shutdown.
pub const LAST_ACTIVITY_ANNOTATION: &str = "trellis.dev/last-activity";
/// Audience of the workspace's token for the Trellis API; checked with TokenReview.
pub const TOKEN_AUDIENCE: &str = "trellis";
/// Lifetime of that token; the kubelet renews it well before it expires.
pub const TOKEN_SECONDS: i64 = 3600;
pub const HOME: &str = "/home/workspace";
pub const INPUTS: &str = "/data/inputs";
pub const OUTPUTS: &str = "/data/outputs";
pub const TOKEN_DIR: &str = "/var/run/secrets/trellis";
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

/// No privilege, no escalation, no capabilities, the runtime's default seccomp profile.
pub fn hardened(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(read_only_root),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
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
        env("TRELLIS_TOKEN_FILE", format!("{TOKEN_DIR}/token")),
    ];
    let mut compute = BTreeMap::from([
        ("cpu".to_owned(), resolved.cpu.clone()),
        ("memory".to_owned(), resolved.memory.clone()),
    ]);
    if resolved.gpus > 0 {
        compute.insert("nvidia.com/gpu".into(), Quantity(resolved.gpus.to_string()));
    }
    let token = mount("trellis-token", TOKEN_DIR, true);
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
                read_only: Some(false),
            }),
            ..Volume::default()
        },
        Volume {
            name: "inputs".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        Volume {
            name: "trellis-token".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(TOKEN_AUDIENCE.into()),
                        expiration_seconds: Some(TOKEN_SECONDS),
                        path: "token".into(),
                    }),
                    ..VolumeProjection::default()
                }]),
                default_mode: Some(0o440),
            }),
            ..Volume::default()
        },
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
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(WORKSPACE_UID),
            run_as_group: Some(WORKSPACE_GID),
            fs_group: Some(WORKSPACE_GID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
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
