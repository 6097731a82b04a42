//! A project's DataSHIELD server (`spec.datashield`): the objects that run it in the project's
//! namespace, the one-time secret it is started with, and what its status says. Pure
//! functions: randomness and the cluster stay with the controller.
//!
//! The server holds only the project's released ingress tables, which its init container fetches
//! from the airlock with the pod's Trellis token; the server container itself has no credential.
//! It is reached only through the API, which proves itself with the proxy secret.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Secret, SecretVolumeSource, Service, ServiceAccount, ServicePort,
    ServiceSpec, Volume,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::builders::{metadata, peer, port, to_the_airlock};
use crate::config::OperatorConfig;
use crate::pod::{TOKEN_DIR, TOKEN_VOLUME, env, hardened, mount, pod_security, token_volume};
use crate::reconcile::conditions::Check;
use crate::resources::names::{
    COMPONENT_LABEL, DATASHIELD_COMPONENT, DATASHIELD_NAME, DATASHIELD_PORT,
    DATASHIELD_PROFILE_KEY, DATASHIELD_PROXY_SECRET_KEY, DATASHIELD_SEED_KEY,
    DATASHIELD_TABLES_KEY, PROJECT_LABEL, namespace_name,
};
use crate::resources::{
    DataShieldSettings, DataShieldSpec, DataShieldStatus, DataShieldTable, Project, ProjectPhase,
};

/// The pod template annotation that carries the hash of the ConfigMap's data, so that a changed
/// table or setting rolls the pod (the server reads both only at start).
pub const CONFIG_HASH_ANNOTATION: &str = "trellis.dev/config-sha256";
/// Where the server finds its tables (filled by the init container) and its configuration.
pub const TABLES_DIR: &str = "/data/tables";
pub const CONFIG_DIR: &str = "/etc/trellis-datashield";
pub const SECRET_DIR: &str = "/var/run/secrets/trellis-datashield";
/// The NetworkPolicies that let the API in and the init container out to the airlock.
pub const INGRESS_POLICY: &str = "trellis-datashield-ingress";
pub const EGRESS_POLICY: &str = "trellis-datashield-egress";
/// The user of the server's image (the distroless `nonroot`).
pub const DATASHIELD_UID: i64 = 65532;

/// Everything that runs a project's DataSHIELD server besides its NetworkPolicies (which are
/// guardrails, built with the others).
#[derive(Clone, Debug, PartialEq)]
pub struct DataShieldObjects {
    pub service_account: ServiceAccount,
    pub config_map: ConfigMap,
    pub secret: Secret,
    pub service: Service,
    pub deployment: Deployment,
}

/// The values of the server's Secret: made once, then kept for the project's life (the seed
/// fixes the noise of the functions that add it; a new one would let repeated calls average it
/// away).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretValues {
    /// 64 lowercase hex digits.
    pub proxy_secret: String,
    /// A positive decimal `i32`.
    pub seed: String,
}

impl SecretValues {
    /// Values from 36 random bytes: 32 for the proxy secret, 4 for the seed.
    pub fn from_random(bytes: [u8; 36]) -> SecretValues {
        let (secret, seed) = bytes.split_at(32);
        let seed = u32::from_le_bytes([seed[0], seed[1], seed[2], seed[3]]);
        // 1..=i32::MAX: R's set.seed takes an integer, and a positive one reads unambiguously.
        let seed = seed % (i32::MAX as u32) + 1;
        SecretValues {
            proxy_secret: hex::encode(secret),
            seed: seed.to_string(),
        }
    }

    /// The values already in `existing`, each kept when it is well formed; `fresh` fills in
    /// whatever is missing (a new Secret, or a key someone removed).
    pub fn kept(existing: Option<&Secret>, fresh: SecretValues) -> SecretValues {
        let value = |key: &str| {
            existing
                .and_then(|secret| secret.data.as_ref()?.get(key))
                .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
        };
        let proxy_secret = value(DATASHIELD_PROXY_SECRET_KEY)
            .filter(|s| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .unwrap_or(fresh.proxy_secret);
        let seed = value(DATASHIELD_SEED_KEY)
            .filter(|s| s.parse::<i32>().is_ok_and(|n| n > 0) && !s.starts_with('+'))
            .unwrap_or(fresh.seed);
        SecretValues { proxy_secret, seed }
    }
}

/// Labels of every DataSHIELD object: the project's, plus the component.
fn labels(project: &Project) -> BTreeMap<String, String> {
    let mut labels = metadata(project, DATASHIELD_NAME, None)
        .labels
        .unwrap_or_default();
    labels.insert(COMPONENT_LABEL.into(), DATASHIELD_COMPONENT.into());
    labels
}

fn object_metadata(project: &Project, name: &str) -> ObjectMeta {
    ObjectMeta {
        labels: Some(labels(project)),
        ..metadata(project, name, Some(&namespace_name(&project.name_any())))
    }
}

/// What selects the server's pod: its component within its project.
fn pod_labels(project: &Project) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PROJECT_LABEL.to_owned(), project.name_any()),
        (COMPONENT_LABEL.to_owned(), DATASHIELD_COMPONENT.to_owned()),
    ])
}

/// The disclosure settings by their R names, only those the project sets: the server applies
/// dsBase's defaults to the rest.
#[derive(Serialize)]
struct ProfileSettings {
    #[serde(rename = "nfilter.tab", skip_serializing_if = "Option::is_none")]
    tab: Option<u32>,
    #[serde(rename = "nfilter.subset", skip_serializing_if = "Option::is_none")]
    subset: Option<u32>,
    #[serde(rename = "nfilter.glm", skip_serializing_if = "Option::is_none")]
    glm: Option<f64>,
    #[serde(rename = "nfilter.string", skip_serializing_if = "Option::is_none")]
    string: Option<u32>,
    #[serde(
        rename = "nfilter.stringShort",
        skip_serializing_if = "Option::is_none"
    )]
    string_short: Option<u32>,
    #[serde(rename = "nfilter.kNN", skip_serializing_if = "Option::is_none")]
    knn: Option<u32>,
    #[serde(rename = "nfilter.noise", skip_serializing_if = "Option::is_none")]
    noise: Option<f64>,
    #[serde(
        rename = "nfilter.levels.density",
        skip_serializing_if = "Option::is_none"
    )]
    levels_density: Option<f64>,
    #[serde(rename = "nfilter.levels.max", skip_serializing_if = "Option::is_none")]
    levels_max: Option<u32>,
}

#[derive(Serialize)]
struct ProfileFile {
    name: &'static str,
    settings: ProfileSettings,
}

/// The server's profile file (`profile.yaml`).
pub fn profile_yaml(settings: &DataShieldSettings) -> String {
    let file = ProfileFile {
        name: "default",
        settings: ProfileSettings {
            tab: settings.nfilter_tab,
            subset: settings.nfilter_subset,
            glm: settings.nfilter_glm,
            string: settings.nfilter_string,
            string_short: settings.nfilter_string_short,
            knn: settings.nfilter_knn,
            noise: settings.nfilter_noise,
            levels_density: settings.nfilter_levels_density,
            levels_max: settings.nfilter_levels_max,
        },
    };
    serde_yaml::to_string(&file).unwrap_or_default()
}

#[derive(Serialize)]
struct TablesFile<'a> {
    project: &'a str,
    tables: &'a [DataShieldTable],
}

/// The init container's tables file (`tables.yaml`): which released file becomes which table.
pub fn tables_yaml(project: &str, tables: &[DataShieldTable]) -> String {
    serde_yaml::to_string(&TablesFile { project, tables }).unwrap_or_default()
}

/// SHA-256 (hex) of a ConfigMap's data, key by key in order, each key and value ended by NUL
/// (neither can contain one), so different data never hash alike.
pub fn config_hash(data: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// Builds the server's objects for `project`, whose `spec.datashield` is `spec`.
pub fn build(
    project: &Project,
    spec: &DataShieldSpec,
    secret: &SecretValues,
    config: &OperatorConfig,
) -> DataShieldObjects {
    let name = project.name_any();
    let data = BTreeMap::from([
        (
            DATASHIELD_PROFILE_KEY.to_owned(),
            profile_yaml(&spec.settings),
        ),
        (
            DATASHIELD_TABLES_KEY.to_owned(),
            tables_yaml(&name, &spec.tables),
        ),
    ]);
    let hash = config_hash(&data);
    let selector = pod_labels(project);
    DataShieldObjects {
        service_account: ServiceAccount {
            metadata: object_metadata(project, DATASHIELD_NAME),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        },
        config_map: ConfigMap {
            metadata: object_metadata(project, DATASHIELD_NAME),
            data: Some(data),
            ..ConfigMap::default()
        },
        secret: Secret {
            metadata: object_metadata(project, DATASHIELD_NAME),
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([
                (
                    DATASHIELD_PROXY_SECRET_KEY.to_owned(),
                    ByteString(secret.proxy_secret.clone().into_bytes()),
                ),
                (
                    DATASHIELD_SEED_KEY.to_owned(),
                    ByteString(secret.seed.clone().into_bytes()),
                ),
            ])),
            ..Secret::default()
        },
        service: Service {
            metadata: object_metadata(project, DATASHIELD_NAME),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(selector.clone()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: i32::from(DATASHIELD_PORT),
                    target_port: Some(IntOrString::Int(i32::from(DATASHIELD_PORT))),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        },
        deployment: Deployment {
            metadata: object_metadata(project, DATASHIELD_NAME),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                // Never two servers at once: the new one starts after the old one is gone.
                strategy: Some(DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    rolling_update: None,
                }),
                selector: LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(selector),
                        annotations: Some(BTreeMap::from([(
                            CONFIG_HASH_ANNOTATION.to_owned(),
                            hash,
                        )])),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(pod_spec(&name, config)),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        },
    }
}

fn pod_spec(project: &str, config: &OperatorConfig) -> PodSpec {
    let limits = &config.datashield_resources;
    let resources = ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(limits.cpu_request.clone())),
            ("memory".to_owned(), Quantity(limits.memory_request.clone())),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(limits.cpu_limit.clone())),
            ("memory".to_owned(), Quantity(limits.memory_limit.clone())),
        ])),
        ..ResourceRequirements::default()
    };
    let tables_spec = format!("{CONFIG_DIR}/{DATASHIELD_TABLES_KEY}");
    let secret_file = |key: &str| format!("{SECRET_DIR}/{key}");
    let probe = || Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::Int(i32::from(DATASHIELD_PORT)),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    };
    let command = |words: &[&str]| Some(words.iter().map(|w| (*w).to_owned()).collect());
    PodSpec {
        service_account_name: Some(DATASHIELD_NAME.into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security(DATASHIELD_UID, DATASHIELD_UID)),
        init_containers: Some(vec![Container {
            name: "tables".into(),
            image: Some(config.cli_image.clone()),
            command: command(&[
                "trellis",
                "datashield",
                "tables",
                "--spec",
                &tables_spec,
                "--to",
                TABLES_DIR,
            ]),
            env: Some(vec![
                env("TRELLIS_API_URL", config.api_url.clone()),
                env("TRELLIS_PROJECT", project),
                env("TRELLIS_TOKEN_FILE", format!("{TOKEN_DIR}/token")),
            ]),
            // The token is the init container's alone: the server never calls the API.
            volume_mounts: Some(vec![
                mount("tables", TABLES_DIR, false),
                mount("config", CONFIG_DIR, true),
                mount(TOKEN_VOLUME, TOKEN_DIR, true),
            ]),
            security_context: Some(hardened(true)),
            resources: Some(resources.clone()),
            ..Container::default()
        }]),
        containers: vec![Container {
            name: "datashield".into(),
            image: Some(config.datashield_image.clone()),
            command: command(&[
                "trellis-datashield",
                "serve",
                "--data",
                TABLES_DIR,
                "--profile",
                &format!("{CONFIG_DIR}/{DATASHIELD_PROFILE_KEY}"),
                "--trusted-proxy-secret-file",
                &secret_file(DATASHIELD_PROXY_SECRET_KEY),
                "--seed-file",
                &secret_file(DATASHIELD_SEED_KEY),
                "--listen",
                &format!("$(POD_IP):{DATASHIELD_PORT}"),
                "--log-json",
            ]),
            env: Some(vec![EnvVar {
                name: "POD_IP".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "status.podIP".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }]),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(DATASHIELD_PORT),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(probe()),
            liveness_probe: Some(probe()),
            resources: Some(resources),
            security_context: Some(hardened(true)),
            volume_mounts: Some(vec![
                mount("tables", TABLES_DIR, true),
                mount("config", CONFIG_DIR, true),
                mount("secret", SECRET_DIR, true),
            ]),
            ..Container::default()
        }],
        volumes: Some(vec![
            Volume {
                name: "tables".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: DATASHIELD_NAME.into(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "secret".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(DATASHIELD_NAME.into()),
                    default_mode: Some(0o440),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
            token_volume(),
        ]),
        ..PodSpec::default()
    }
}

/// The server's NetworkPolicies, on top of the namespace's default deny and DNS.
pub fn network_policies(project: &Project, config: &OperatorConfig) -> Vec<NetworkPolicy> {
    let pods = LabelSelector {
        match_labels: Some(BTreeMap::from([(
            COMPONENT_LABEL.to_owned(),
            DATASHIELD_COMPONENT.to_owned(),
        )])),
        ..LabelSelector::default()
    };
    let policy = |name: &str, spec: NetworkPolicySpec| NetworkPolicy {
        metadata: object_metadata(project, name),
        spec: Some(spec),
    };
    vec![
        // Only the API reaches the server: it proxies `/datashield/<project>/` (the gateway
        // pods are the API's).
        policy(
            INGRESS_POLICY,
            NetworkPolicySpec {
                pod_selector: Some(pods.clone()),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![peer(
                        &config.control_plane_namespace,
                        &config.gateway_pods,
                    )]),
                    ports: Some(vec![port("TCP", DATASHIELD_PORT)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        // The init container fetches the released tables from the airlock. The pod may reach
        // nothing else, and only the init container holds a token the airlock accepts: the
        // server container, which sees the analysts' calls, has no credential to use this with.
        policy(
            EGRESS_POLICY,
            NetworkPolicySpec {
                pod_selector: Some(pods),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![to_the_airlock(config)]),
                ..NetworkPolicySpec::default()
            },
        ),
    ]
}

/// What should exist of a project's server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// No server: every one of its objects goes (the NetworkPolicies with the guardrails).
    Absent,
    /// Configured but not running (the project is suspended or expired): the Deployment goes,
    /// the configuration and the Secret (its seed) stay for when it runs again.
    Stopped,
    /// Everything, and the Deployment runs.
    Running,
}

/// The plan for a provisioned project's server.
pub fn plan(spec: Option<&DataShieldSpec>, allows_workloads: bool) -> Plan {
    match spec.filter(|spec| spec.enabled) {
        None => Plan::Absent,
        Some(_) if allows_workloads => Plan::Running,
        Some(_) => Plan::Stopped,
    }
}

/// Whether the server answers: its Deployment has seen its current spec and has an updated,
/// available replica.
pub fn deployment_ready(deployment: &Deployment) -> bool {
    let Some(status) = deployment.status.as_ref() else {
        return false;
    };
    status.observed_generation.is_some()
        && status.observed_generation == deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) >= 1
        && status.available_replicas.unwrap_or(0) >= 1
}

/// The status of the server and its `DataShieldReady` condition, for a project whose
/// `spec.datashield` is `spec` (None when the project has no server), in `phase`, whose
/// Deployment is `deployment`.
pub fn status(
    spec: Option<&DataShieldSpec>,
    phase: ProjectPhase,
    deployment: Option<&Deployment>,
) -> Option<(DataShieldStatus, Check)> {
    let spec = spec.filter(|spec| spec.enabled)?;
    if phase != ProjectPhase::Active {
        let message = format!("stopped: project {phase}");
        return Some((
            not_ready(message.clone()),
            Check::new(false, "Stopped", message),
        ));
    }
    if deployment.is_some_and(deployment_ready) {
        let tables: Vec<String> = spec.tables.iter().map(|t| t.name.clone()).collect();
        let message = format!("serving {} table(s)", tables.len());
        return Some((
            DataShieldStatus {
                ready: true,
                tables,
                message: None,
            },
            Check::new(true, "Running", message),
        ));
    }
    Some((
        not_ready("starting".into()),
        Check::new(false, "Starting", "starting"),
    ))
}

fn not_ready(message: String) -> DataShieldStatus {
    DataShieldStatus {
        ready: false,
        tables: Vec::new(),
        message: Some(message),
    }
}

#[cfg(test)]
mod tests;
