//! Helpers for end-to-end tests against the control plane started by `make cluster-up`.
//!
//! The cluster is found through `KUBECONFIG`; without one the tests fail with a message saying
//! how to start it, rather than skipping.
#![forbid(unsafe_code)]

pub mod api;
pub mod clamd;
pub mod datashield;
pub mod identity;
pub mod keycloak;
pub mod operator;
pub mod runtime;
pub mod s3;
pub mod smtp;

use std::fmt::Debug;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// The field manager the tests apply with.
pub const FIELD_MANAGER: &str = "trellis-e2e";

/// A client for the test cluster named by `KUBECONFIG`.
pub async fn client() -> Client {
    let path = std::env::var("KUBECONFIG").unwrap_or_default();
    assert!(
        !path.is_empty(),
        "KUBECONFIG is not set: start the local control plane with `make cluster-up` and export \
         KUBECONFIG=target/cluster/kubeconfig (or run `make test`, which does both)"
    );
    Client::try_default()
        .await
        .unwrap_or_else(|error| panic!("cannot build a client from KUBECONFIG={path}: {error}"))
}

/// A name no other test or run will use: `prefix-<time><counter>` in base 36, a DNS label.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let time = u64::try_from(millis % 36u128.pow(7)).expect("reduced below 36^7");
    format!("{prefix}-{}{}", base36(time), base36(u64::from(n)))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::try_from(n % 36).expect("below 36")]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("base36 digits are ASCII")
}

/// Waits until `condition` holds for the named object, or panics after `timeout` with the
/// object's last state, so a failure says what was seen.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    condition: impl Condition<K>,
) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => panic!("{name} does not exist (or was deleted) while waiting for {what}"),
        Ok(Err(error)) => panic!("watching {name} for {what} failed: {error}"),
        Err(_) => panic!(
            "timed out after {timeout:?} waiting for {name}: {what}; last seen: {:#?}",
            api.get_opt(name).await
        ),
    }
}

/// Waits until the named object no longer exists.
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let gone = tokio::time::timeout(timeout, async {
        while api
            .get_opt(name)
            .await
            .expect("reading an object being deleted")
            .is_some()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "{name} still exists after {timeout:?}: {:#?}",
        api.get_opt(name).await
    );
}

/// Creates a namespace with the given labels and waits for its default ServiceAccount, which
/// pods need before they can be admitted.
pub async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) -> Namespace {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|error| panic!("creating namespace {name}: {error}"));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    wait_for(
        &accounts,
        "default",
        Duration::from_secs(30),
        "the default ServiceAccount",
        |account: Option<&ServiceAccount>| account.is_some(),
    )
    .await;
    created
}

/// Installs (or updates) the Trellis CRDs with server-side apply and waits until each is Established.
pub async fn install_crds(client: &Client) -> Vec<CustomResourceDefinition> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut installed = Vec::new();
    for crd in trellis_operator::crd::all() {
        let name = crd.metadata.name.clone().expect("generated CRDs are named");
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|error| panic!("applying CRD {name}: {error}"));
        installed.push(
            wait_for(
                &crds,
                &name,
                Duration::from_secs(30),
                "Established",
                kube::runtime::conditions::is_crd_established(),
            )
            .await,
        );
    }
    installed
}

/// The message of an API error, for asserting on why the apiserver refused something.
pub fn refusal<T: Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected the apiserver to refuse, got {other:?}"),
    }
}

/// Creates a namespace unless it exists (shared, fixed-name namespaces such as trellis-system).
pub async fn ensure_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("creating namespace {name}: {error}"),
    }
}

/// Installs the admission policies from `policies/admission/` exactly as committed.
pub async fn install_admission_policies(client: &Client) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    use serde::Deserialize;

    ensure_namespace(client, "trellis-system").await;
    let directory =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/admission");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("reading {}: {error}", directory.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("reading a policy file");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let object = DynamicObject::deserialize(document).expect("a Kubernetes object");
            let types = object.types.clone().expect("apiVersion and kind");
            let (group, version) = types
                .api_version
                .rsplit_once('/')
                .unwrap_or(("", &types.api_version));
            let resource =
                ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &types.kind));
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let name = object.metadata.name.clone().expect("a name");
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .unwrap_or_else(|error| panic!("applying {} {name}: {error}", types.kind));
        }
    }
}

/// A port nobody listens on right now, on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// target/<profile>, where the binaries under test are (test binaries live in its deps/).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut profile = exe.parent().expect("target/<profile>");
    if profile.ends_with("deps") {
        profile = profile.parent().expect("target/<profile>");
    }
    profile.to_path_buf()
}

/// A directory for one harness's files and logs: target/e2e-logs/<name>.
pub fn state_dir(name: &str) -> PathBuf {
    let dir = target_profile_dir()
        .parent()
        .expect("target/")
        .join("e2e-logs")
        .join(name);
    std::fs::create_dir_all(&dir).expect("creating a test state directory");
    dir
}

/// Creates a JupyterLab-like WorkspaceTemplate with a unique name (blocking `/files/` at the
/// gateway) and returns its name.
pub async fn create_template(client: &Client) -> String {
    let name = unique_name("e2e-tpl");
    let body: trellis_operator::resources::WorkspaceTemplate = serde_json::from_value(serde_json::json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate", "metadata": {"name": name},
        "spec": {
            "displayName": "JupyterLab", "image": "quay.io/jupyter/scipy-notebook:2026-10-20", "port": 8888,
            "resources": {"default": {"cpu": "1", "memory": "2Gi"}, "max": {"cpu": "2", "memory": "4Gi"}},
            "defaultStorage": "5Gi", "gateway": {"blockedPaths": ["/files/"]},
        },
    }))
    .expect("a template");
    Api::<trellis_operator::resources::WorkspaceTemplate>::all(client.clone())
        .create(&PostParams::default(), &body)
        .await
        .expect("creating a template");
    name
}

/// Resident memory of a process now and at its peak, in bytes, from /proc.
pub fn process_memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A projected token for a workspace's `workspace` service account, bound to its pod, with
/// audience `trellis`: what the kubelet mounts into the workspace.
pub async fn workspace_token(client: &Client, project: &str, workspace: &str) -> String {
    use k8s_openapi::api::authentication::v1::{
        BoundObjectReference, TokenRequest, TokenRequestSpec,
    };
    use k8s_openapi::api::core::v1::Pod;
    let namespace = trellis_operator::resources::names::namespace_name(project);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod_name = format!("{workspace}-0");
    let pod = wait_for(
        &pods,
        &pod_name,
        Duration::from_secs(60),
        "the workspace pod",
        |p: Option<&Pod>| p.is_some(),
    )
    .await;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["trellis".into()]),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod_name),
                uid: pod.metadata.uid.clone(),
            }),
            expiration_seconds: Some(3600),
        }),
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
        .create_token_request("workspace", &PostParams::default(), &request)
        .await
        .expect("a token for the workspace service account")
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

/// Creates a Project named `<prefix>-…` with `spec`, for the operator of run `run`, and waits until
/// it is Active; returns its name.
pub async fn create_active_project(
    client: &Client,
    run: &str,
    prefix: &str,
    spec: serde_json::Value,
) -> String {
    use trellis_operator::resources::{Project, ProjectPhase};
    let name = unique_name(prefix);
    let projects: Api<Project> = Api::all(client.clone());
    let body: Project = serde_json::from_value(serde_json::json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": name, "labels": {operator::RUN_LABEL: run}},
        "spec": spec,
    }))
    .expect("a project");
    projects
        .create(&PostParams::default(), &body)
        .await
        .expect("creating the project");
    wait_for(
        &projects,
        &name,
        Duration::from_secs(30),
        "Active",
        |p: Option<&Project>| {
            p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase) == Some(ProjectPhase::Active)
        },
    )
    .await;
    name
}
