//! The real-node lane (tests/real-node/run.sh): Trellis installed by its Helm chart from the images
//! `make images` built, running on a real kubelet with containerd and runc. What the runtime
//! enforces is read from the kernel (each container's /proc entry on this machine), not from the
//! pod spec; workspaces are real pods with real volumes, whose JupyterLab answers through the
//! gateway in a real browser.
//!
//! Run only by run.sh, which sets the deployment's addresses; without them every test fails with
//! the reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use reqwest::Method;
use serde_json::{Value, json};
use trellis_e2e::datashield::{Opal, enable};
use trellis_e2e::identity::{CLIENT_ID, CLIENT_SECRET, password_token};
use trellis_e2e::{client, create_active_project, repo_root, wait_deleted, wait_for};
use trellis_operator::resources::{Project, ProjectPhase, Workspace, WorkspacePhase};

const NAMESPACE: &str = "trellis-system";
const NODE: &str = "realnode-1";
/// The image registry prefix the chart and `make images` use by default.
const REGISTRY: &str = "ghcr.io/trellis-tre";
/// The user the Trellis images run as, and the one workspaces run as.
const TRELLIS_UID: &str = "65532";
const WORKSPACE_UID: &str = "1000";

struct Lane {
    url: String,
    workspaces_url: String,
    issuer: String,
    node_state: PathBuf,
    http: reqwest::Client,
}

fn need(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the real-node tests run only from tests/real-node/run.sh (make test runs it)")
    })
}

impl Lane {
    /// The lane's settings; first of all, the belt that keeps every packet on this machine must be
    /// in place (tests/cluster/env.sh decides what "in place" means).
    fn from_env() -> Self {
        let check = Command::new("bash")
            .arg("-c")
            .arg("source tests/cluster/env.sh && belt_check")
            .current_dir(repo_root())
            .output()
            .expect("running belt_check");
        assert!(
            check.status.success(),
            "refusing to test without the firewall belt: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        Self {
            url: need("TRELLIS_REAL_URL"),
            workspaces_url: need("TRELLIS_REAL_WORKSPACES_URL"),
            issuer: need("TRELLIS_REAL_ISSUER"),
            node_state: PathBuf::from(need("TRELLIS_REAL_NODE_STATE")),
            http: reqwest::Client::new(),
        }
    }

    async fn token(&self, user: &str) -> String {
        password_token(&self.issuer, user, CLIENT_ID, CLIENT_SECRET).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        trellis_e2e::api::call(&self.http, &self.url, method, path, Some(token), body).await
    }

    /// The directory of the containerd task state, where each container's init pid is recorded.
    fn task_dir(&self, container_id: &str) -> PathBuf {
        self.node_state
            .join("containerd/state/io.containerd.runtime.v2.task/k8s.io")
            .join(container_id)
    }

    /// The host pid of a running container, from containerd's record of it.
    fn pid(&self, container_id: &str) -> u32 {
        let file = self.task_dir(container_id).join("init.pid");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .expect("a pid")
    }
}

/// A pod's init containers ran, every one, and exited 0.
fn assert_init_containers_finished(pod: &Pod, what: &str) {
    let init = pod
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.clone())
        .unwrap_or_default();
    assert!(
        !init.is_empty()
            && init.iter().all(|c| c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
                == Some(0)),
        "{what}: {init:?}"
    );
}

/// What the kernel says about a container's first process.
#[derive(Debug)]
struct Confinement {
    uid: String,
    cap_eff: String,
    no_new_privs: String,
    seccomp: String,
    root_read_only: bool,
    /// Resident memory (VmRSS), and what the container's memory cgroup is charged.
    rss_kib: u64,
    cgroup_bytes: u64,
}

impl Confinement {
    fn memory(&self) -> String {
        format!(
            "RSS {:.1} MiB, cgroup {:.1} MiB",
            self.rss_kib as f64 / 1024.0,
            self.cgroup_bytes as f64 / 1048576.0
        )
    }
}

fn confinement(pid: u32) -> Confinement {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    // mountinfo: id parent major:minor root mount-point options ...; the last mount on / is the
    // one the process sees.
    let root_options = mountinfo
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4) == Some(&"/")).then(|| f[5].to_string())
        })
        .expect("a root mount");
    Confinement {
        uid: field("Uid"),
        cap_eff: field("CapEff"),
        no_new_privs: field("NoNewPrivs"),
        seccomp: field("Seccomp"),
        root_read_only: root_options.split(',').any(|o| o == "ro"),
        rss_kib: field("VmRSS").parse().expect("VmRSS in kB"),
        cgroup_bytes: cgroup_memory(pid),
    }
}

/// The memory charged to the container's (v1) memory cgroup.
fn cgroup_memory(pid: u32) -> u64 {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroups");
    let path = cgroups
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| path.to_string())
        })
        .expect("a memory cgroup");
    let usage = format!("/sys/fs/cgroup/memory{path}/memory.usage_in_bytes");
    std::fs::read_to_string(&usage)
        .unwrap_or_else(|e| panic!("{usage}: {e}"))
        .trim()
        .parse()
        .expect("a number")
}

fn container_ids(pod: &Pod) -> Vec<(String, String)> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let id = c.container_id.expect("a running container has an id");
            (
                c.name,
                id.strip_prefix("containerd://")
                    .expect("containerd ids")
                    .to_string(),
            )
        })
        .collect()
}

/// Records a figure for the closing report (target/real-node-figures.txt) and prints it.
fn figure(line: &str) {
    use std::io::Write;
    println!("figure: {line}");
    let path = repo_root().join("target/real-node-figures.txt");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("the figures file");
    writeln!(file, "{line}").expect("writing a figure");
}

fn is_read_only_error(result: std::io::Result<()>) -> bool {
    matches!(result, Err(e) if e.raw_os_error() == Some(30 /* EROFS */))
}

#[tokio::test]
async fn trellis_runs_from_its_images_confined_by_the_runtime() {
    let lane = Lane::from_env();
    let kube = client().await;
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), NAMESPACE);
    for (name, replicas) in [("trellis-operator", 2), ("trellis-api", 1)] {
        let d = deployments.get(name).await.expect("the chart's Deployment");
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        assert_eq!(ready, replicas, "{name}: ready replicas");
    }
    let pods: Api<Pod> = Api::namespaced(kube.clone(), NAMESPACE);
    let mut operators = Vec::new();
    for app in ["trellis-operator", "trellis-api"] {
        let list = pods
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={app}")))
            .await
            .expect("pods");
        assert!(!list.items.is_empty(), "{app} has pods");
        for pod in &list.items {
            let name = pod.metadata.name.clone().expect("a name");
            let spec = pod.spec.as_ref().expect("a spec");
            assert_eq!(
                spec.node_name.as_deref(),
                Some(NODE),
                "{name} runs on the real node"
            );
            for container in &spec.containers {
                let image = container.image.as_deref().expect("an image");
                assert!(
                    image.starts_with(&format!("{REGISTRY}/{app}:")),
                    "{name} runs the locally built image: {image}"
                );
            }
            for (container, id) in container_ids(pod) {
                let pid = lane.pid(&id);
                let c = confinement(pid);
                assert_eq!(
                    c.uid, TRELLIS_UID,
                    "{name}/{container} runs as non-root: {c:?}"
                );
                assert_eq!(
                    c.cap_eff, "0000000000000000",
                    "{name}/{container}: no capabilities: {c:?}"
                );
                assert_eq!(
                    c.no_new_privs, "1",
                    "{name}/{container}: no privilege escalation: {c:?}"
                );
                assert_eq!(
                    c.seccomp, "2",
                    "{name}/{container}: a seccomp filter: {c:?}"
                );
                assert!(
                    c.root_read_only,
                    "{name}/{container}: read-only root: {c:?}"
                );
                // Even root on the host cannot write through a read-only mount.
                assert!(
                    is_read_only_error(std::fs::write(
                        format!("/proc/{pid}/root/written-by-a-test"),
                        b"x"
                    )),
                    "{name}/{container}: the root file system refuses writes"
                );
                figure(&format!("{app} pod memory: {} ({name})", c.memory()));
            }
            if app == "trellis-operator" {
                operators.push(name);
            }
        }
    }
    // One operator leads, the other stands by.
    let leases: Api<Lease> = Api::namespaced(kube.clone(), NAMESPACE);
    let lease = leases
        .get("trellis-operator")
        .await
        .expect("the leader Lease");
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .expect("a leader");
    assert!(
        operators.contains(&holder),
        "the leader {holder} is one of {operators:?}"
    );
    // The API answers through its Service.
    let ready = lane
        .http
        .get(format!("{}/readyz", lane.url))
        .send()
        .await
        .expect("the API answers");
    assert!(ready.status().is_success(), "{}", ready.status());
}

/// A project's data brought in through the airlock; returns the request's id and the file's bytes.
async fn released_ingress(lane: &Lane, project: &str) -> (String, Vec<u8>) {
    let alice = lane.token("alice").await;
    let steward = lane.token("steward").await;
    let (status, made) = lane
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/airlock"),
            &alice,
            Some(json!({"direction": "ingress", "title": "Cohort extract"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("an id").to_string();
    let base = format!("/api/v1/projects/{project}/airlock/{id}");
    let data = b"patient_band,events\nA,3\nB,5\n".to_vec();
    let put = lane
        .http
        .put(format!("{}{base}/files/cohort.csv", lane.url))
        .bearer_auth(&alice)
        .body(data.clone())
        .send()
        .await
        .expect("an upload");
    assert_eq!(put.status(), 201);
    assert_eq!(
        lane.call(Method::POST, &format!("{base}/submit"), &alice, None)
            .await
            .0,
        200
    );
    let (status, voted) = lane
        .call(
            Method::POST,
            &format!("{base}/votes"),
            &steward,
            Some(json!({"votes": [{"file": "cohort.csv", "vote": "approve"}]})),
        )
        .await;
    assert_eq!(status, 200, "{voted}");
    let (_, done) = lane
        .call(
            Method::POST,
            &format!("{base}/outcome"),
            &steward,
            Some(json!({"outcome": "approve"})),
        )
        .await;
    assert_eq!(done["state"], "released", "{done}");
    (id, data)
}

async fn wait_workspace(
    kube: &kube::Client,
    namespace: &str,
    name: &str,
    phase: WorkspacePhase,
    secs: u64,
) {
    let workspaces: Api<Workspace> = Api::namespaced(kube.clone(), namespace);
    wait_for(
        &workspaces,
        name,
        Duration::from_secs(secs),
        &format!("{phase:?}"),
        |w: Option<&Workspace>| {
            w.and_then(|w| w.status.as_ref()).and_then(|s| s.phase) == Some(phase)
        },
    )
    .await;
}

/// The local-path directory on the node behind a claim.
async fn volume_dir(kube: &kube::Client, namespace: &str, claim: &str) -> PathBuf {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(kube.clone(), namespace);
    let pvc = claims.get(claim).await.expect("the claim");
    let volume = pvc.spec.and_then(|s| s.volume_name).expect("a bound claim");
    let pvs: Api<PersistentVolume> = Api::all(kube.clone());
    let pv = pvs.get(&volume).await.expect("the volume");
    let spec = pv.spec.expect("a spec");
    let path = spec
        .host_path
        .map(|h| h.path)
        .or_else(|| spec.local.map(|l| l.path))
        .expect("a local-path volume names its directory");
    PathBuf::from(path)
}

#[tokio::test]
async fn a_workspace_is_a_real_pod_with_its_inputs_and_jupyterlab_through_the_gateway() {
    let lane = Lane::from_env();
    let kube = client().await;
    let today = chrono_today();
    let spec = json!({
        // The browser journey looks for its project by this title.
        "title": "Hospital admissions and air quality", "purpose": "Trellis on a real node.",
        "approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": format!("{today}T00:00:00Z")},
        "startDate": today, "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}],
        "resources": {"cpu": "4", "memory": "8Gi", "storage": "10Gi", "maxWorkspaces": 3},
        "templates": ["jupyter"],
        "egress": {"reviewsRequired": 1},
    });
    let project = create_active_project(&kube, "real-node", "real", spec).await;
    let namespace = format!("trellis-{project}");
    let (ingress, data) = released_ingress(&lane, &project).await;

    // Alice requests a workspace in the browser, opens JupyterLab and runs a cell (the browser
    // journey's step, against this deployment).
    let started = Instant::now();
    journey(&lane, &project, "researcher-workspace");
    figure(&format!(
        "browser: workspace requested → JupyterLab cell ran, through the gateway: {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    let pods: Api<Pod> = Api::namespaced(kube.clone(), &namespace);
    let pod = pods.get("analysis-0").await.expect("the workspace's pod");
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(NODE)
    );
    // The init container (the CLI image) synced the released input, then finished.
    assert_init_containers_finished(&pod, "the init container finished cleanly");
    let (_, id) = container_ids(&pod)
        .into_iter()
        .find(|(name, _)| name == "workspace")
        .expect("the workspace container");
    let pid = lane.pid(&id);
    let c = confinement(pid);
    assert_eq!(c.uid, WORKSPACE_UID, "{c:?}");
    assert_eq!(c.cap_eff, "0000000000000000", "{c:?}");
    assert_eq!(c.no_new_privs, "1", "{c:?}");
    assert_eq!(c.seccomp, "2", "{c:?}");
    assert!(
        c.root_read_only,
        "the template asks for a read-only root: {c:?}"
    );
    // No service-account token but the projected one for Trellis's API.
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    assert!(
        !mounts.contains("kubernetes.io/serviceaccount"),
        "no Kubernetes API token is mounted: {mounts}"
    );
    let token = std::fs::read_to_string(
        // /var/run links to /run, which the kernel would resolve in our root, not the container's.
        format!("/proc/{pid}/root/run/secrets/trellis/token"),
    )
    .expect("the projected token");
    let claims: Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("a JWT");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64url"),
        )
        .expect("JSON claims")
    };
    assert_eq!(
        claims["aud"],
        json!(["trellis"]),
        "the token is only for Trellis: {claims}"
    );
    let inputs = PathBuf::from(format!("/proc/{pid}/root/data/inputs"));
    assert_eq!(
        std::fs::read(inputs.join(&ingress).join("cohort.csv")).expect("the synced input"),
        data,
        "the released file, byte for byte"
    );
    assert!(
        is_read_only_error(std::fs::write(
            inputs.join(&ingress).join("changed.csv"),
            b"x"
        )),
        "/data/inputs is read-only"
    );
    figure(&format!(
        "workspace pod memory (its cgroup: JupyterLab and a kernel): {:.1} MiB",
        c.cgroup_bytes as f64 / 1048576.0
    ));
    let home = volume_dir(&kube, &namespace, "home-analysis").await;
    assert!(home.starts_with(&lane.node_state), "{}", home.display());
    assert!(
        home.is_dir(),
        "the home volume is a directory on the node: {}",
        home.display()
    );

    // Stopping ends the pod and its processes; the home volume stays.
    let alice = lane.token("alice").await;
    let (status, body) = lane
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/workspaces/analysis/stop"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_workspace(&kube, &namespace, "analysis", WorkspacePhase::Stopped, 120).await;
    wait_deleted(&pods, "analysis-0", Duration::from_secs(60)).await;
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the workspace's process is gone"
    );
    assert!(home.is_dir(), "a stopped workspace keeps its home");

    // Idle shutdown: a workspace nobody uses stops by itself.
    apply_workspace(&kube, &namespace, "idle", "alice", Some("1m")).await;
    wait_workspace(&kube, &namespace, "idle", WorkspacePhase::Running, 120).await;
    let idle_home = volume_dir(&kube, &namespace, "home-idle").await;
    // The shortest idle timeout is a minute.
    wait_workspace(&kube, &namespace, "idle", WorkspacePhase::Stopped, 180).await;
    wait_deleted(&pods, "idle-0", Duration::from_secs(60)).await;

    // Closing the project deletes its namespace and volumes: their directories leave the node.
    let admin = lane.token("admin").await;
    let (status, body) = lane
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/close"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let projects: Api<Project> = Api::all(kube.clone());
    wait_for(
        &projects,
        &project,
        Duration::from_secs(180),
        "Closed",
        |p: Option<&Project>| {
            p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase) == Some(ProjectPhase::Closed)
        },
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    assert!(
        namespaces
            .get_opt(&namespace)
            .await
            .expect("a lookup")
            .is_none()
    );
    let record = serde_json::to_value(projects.get(&project).await.expect("the project").status)
        .expect("JSON");
    let teardown = record["teardown"].to_string();
    for dir in [&home, &idle_home] {
        // local-path's helper pod removes the directory once the volume is released.
        let deadline = Instant::now() + Duration::from_secs(60);
        while dir.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(!dir.exists(), "{} is gone from the node", dir.display());
    }
    assert!(
        teardown.contains("home-analysis") && teardown.contains("home-idle"),
        "the teardown record lists the volumes: {teardown}"
    );
}

fn chrono_today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

/// Runs one step of the browser journey (tests/browser/journey.mjs) against this deployment.
fn journey(lane: &Lane, project: &str, step: &str) {
    let browser = repo_root().join("tests/browser");
    let output = Command::new("node")
        .arg(browser.join("journey.mjs"))
        .arg(step)
        .current_dir(&browser)
        .env("TRELLIS_URL", &lane.url)
        .env("TRELLIS_PROJECT", project)
        .env(
            "TRELLIS_SCREENSHOTS",
            repo_root().join("target/screenshots/real-node"),
        )
        .output()
        .expect("running node");
    assert!(
        output.status.success(),
        "journey step {step} against {} (workspaces at {}): {}{}",
        lane.url,
        lane.workspaces_url,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- Isolation, proven with packets (kube-router enforcing the operator's NetworkPolicies) -------

fn kubectl(args: &[&str]) -> std::process::Output {
    let bin = PathBuf::from(need("TRELLIS_REAL_BIN"));
    Command::new(bin.join("kubectl"))
        .arg("--kubeconfig")
        .arg(need("KUBECONFIG"))
        .args(args)
        .output()
        .expect("running kubectl")
}

/// kubectl's arguments that run the probe (tests/real-node/probe.py) inside `pod`.
fn probe_args(namespace: &str, pod: &str, args: &[&str]) -> Vec<String> {
    let script = std::fs::read_to_string(repo_root().join("tests/real-node/probe.py"))
        .expect("tests/real-node/probe.py");
    let mut command: Vec<String> = ["-n", namespace, "exec", pod, "--", "python3", "-c"]
        .map(String::from)
        .to_vec();
    command.push(script);
    command.extend(args.iter().map(|a| a.to_string()));
    command
}

/// A probe run inside `pod`: the attempt leaves from the pod's address.
fn probe(namespace: &str, pod: &str, args: &[&str]) -> String {
    let command = probe_args(namespace, pod, args);
    let output = kubectl(&command.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        output.status.success(),
        "probe in {namespace}/{pod}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: Value = serde_json::from_slice(&output.stdout).expect("the probe's JSON line");
    line["outcome"].as_str().expect("an outcome").to_string()
}

async fn pod_ip(kube: &kube::Client, namespace: &str, pod: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    pods.get(pod)
        .await
        .expect("the pod")
        .status
        .and_then(|s| s.pod_ip)
        .expect("an address")
}

/// The address of the first pod matching a label selector.
async fn labelled_pod_ip(kube: &kube::Client, namespace: &str, selector: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    pods.list(&ListParams::default().labels(selector))
        .await
        .expect("the pods")
        .items
        .first()
        .unwrap_or_else(|| panic!("no pod in {namespace} matches {selector}"))
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("an address")
}

/// A pod of the workspace image that just waits, for probing from places no policy confines.
async fn bystander(kube: &kube::Client, namespace: &str, name: &str) {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": format!("{REGISTRY}/trellis-workspace-jupyter:0.1.0"),
                "imagePullPolicy": "Never", "command": ["sleep", "3600"],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }))
    .expect("a pod");
    pods.patch(
        name,
        &PatchParams::apply("trellis-e2e"),
        &Patch::Apply(&pod),
    )
    .await
    .expect("creating the pod");
    wait_for(
        &pods,
        name,
        Duration::from_secs(60),
        "Running",
        |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Running")
        },
    )
    .await;
}

/// Creates (server-side apply) a workspace of the `jupyter` template.
async fn apply_workspace(
    kube: &kube::Client,
    namespace: &str,
    name: &str,
    owner: &str,
    idle_timeout: Option<&str>,
) {
    let workspaces: Api<Workspace> = Api::namespaced(kube.clone(), namespace);
    let mut spec = json!({"owner": owner, "template": "jupyter"});
    if let Some(timeout) = idle_timeout {
        spec["idleTimeout"] = json!(timeout);
    }
    let workspace: Workspace = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Workspace",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .expect("a workspace");
    workspaces
        .patch(
            name,
            &PatchParams::apply("trellis-e2e"),
            &Patch::Apply(&workspace),
        )
        .await
        .expect("creating the workspace");
}

async fn running_workspace(kube: &kube::Client, namespace: &str, name: &str, owner: &str) {
    apply_workspace(kube, namespace, name, owner, None).await;
    wait_workspace(kube, namespace, name, WorkspacePhase::Running, 120).await;
}

fn project_spec(members: Value) -> Value {
    let today = chrono_today();
    json!({
        "title": "Isolation", "purpose": "Packets.",
        "approval": {"reference": "R-2", "approvedBy": "DAC", "approvedAt": format!("{today}T00:00:00Z")},
        "startDate": today, "endDate": "2099-12-31",
        "members": members,
        "resources": {"cpu": "4", "memory": "8Gi", "storage": "10Gi", "maxWorkspaces": 3},
        "templates": ["jupyter"],
        "egress": {"reviewsRequired": 1},
    })
}

/// The outside-world stand-in (tests/cluster/env.sh: outside_ip).
const OUTSIDE: &str = "198.51.100.10";
const METADATA: &str = "169.254.169.254";
const CLUSTER_DNS: &str = "10.244.64.10";

fn blocked(outcome: &str) -> bool {
    outcome != "open" && !outcome.starts_with("answered")
}

#[tokio::test]
async fn a_project_network_reaches_nothing_but_dns_and_the_airlock() {
    let lane = Lane::from_env();
    let kube = client().await;
    let a = create_active_project(
        &kube,
        "real-node",
        "iso-a",
        project_spec(json!([{"subject": "alice", "role": "owner"}, {"subject": "bob", "role": "researcher"}])),
    )
    .await;
    let b = create_active_project(
        &kube,
        "real-node",
        "iso-b",
        project_spec(json!([{"subject": "carol", "role": "owner"}])),
    )
    .await;
    let (na, nb) = (format!("trellis-{a}"), format!("trellis-{b}"));
    running_workspace(&kube, &na, "a1", "alice").await;
    running_workspace(&kube, &na, "a2", "bob").await;
    running_workspace(&kube, &nb, "b1", "carol").await;
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    let lab: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "trellis-e2e-lab"}}),
    )
    .expect("a namespace");
    namespaces
        .patch(
            "trellis-e2e-lab",
            &PatchParams::apply("trellis-e2e"),
            &Patch::Apply(&lab),
        )
        .await
        .expect("the lab namespace");
    // Unconfined: no policy selects it. The control for every refusal below.
    bystander(&kube, "trellis-e2e-lab", "lab").await;
    // Another pod in the control-plane namespace that is not the API.
    bystander(&kube, NAMESPACE, "intruder").await;

    let ip = |ns: &str, pod: &str| {
        let (kube, ns, pod) = (kube.clone(), ns.to_string(), pod.to_string());
        async move { pod_ip(&kube, &ns, &pod).await }
    };
    let (a1, a2, b1) = (
        ip(&na, "a1-0").await,
        ip(&na, "a2-0").await,
        ip(&nb, "b1-0").await,
    );
    let pods: Api<Pod> = Api::namespaced(kube.clone(), NAMESPACE);
    let api_pod = labelled_pod_ip(&kube, NAMESPACE, "app.kubernetes.io/name=trellis-api").await;
    let operator =
        labelled_pod_ip(&kube, NAMESPACE, "app.kubernetes.io/name=trellis-operator").await;

    let mut matrix: Vec<(String, String, String, bool)> = Vec::new();
    let mut cell = |from: &str, to: &str, outcome: String, expect_open: bool| {
        let ok = if expect_open {
            !blocked(&outcome)
        } else {
            blocked(&outcome)
        };
        figure(&format!(
            "isolation: {from} → {to}: {outcome} (expected {})",
            if expect_open { "allowed" } else { "refused" }
        ));
        matrix.push((from.into(), to.into(), outcome, ok));
    };

    // Controls first: each target answers when nothing stands in the way, so a refusal below is
    // the policy's, not an absent server's.
    let control =
        |target: &str, port: &str| probe("trellis-e2e-lab", "lab", &["tcp", target, port]);
    for (target, port) in [
        (OUTSIDE, "80"),
        (METADATA, "80"),
        (operator.as_str(), "8080"),
        (api_pod.as_str(), "9090"),
        ("10.244.64.1", "443"),
    ] {
        assert_eq!(
            control(target, port),
            "open",
            "the control pod reaches {target}:{port}"
        );
    }
    for workspace in [&a1, &a2, &b1] {
        // Running means started, not yet listening: JupyterLab takes a few seconds.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let home = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "3",
                ])
                .arg(format!("http://{workspace}:8888/"))
                .output()
                .expect("curl");
            if String::from_utf8_lossy(&home.stdout) != "000" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "JupyterLab listens on {workspace}:8888 (from the node)"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    let dns_name = "kubernetes.default.svc.cluster.local";
    cell(
        "workspace a1",
        "cluster DNS (udp 53)",
        probe(&na, "a1-0", &["dns", "udp", CLUSTER_DNS, dns_name]),
        true,
    );
    cell(
        "workspace a1",
        "cluster DNS (tcp 53)",
        probe(&na, "a1-0", &["dns", "tcp", CLUSTER_DNS, dns_name]),
        true,
    );
    cell(
        "workspace a1",
        "the API's airlock port (Service)",
        probe(
            &na,
            "a1-0",
            &["tcp", "trellis-api.trellis-system.svc", "8443"],
        ),
        true,
    );
    cell(
        "workspace a1",
        "the API pod's other port (metrics, 9090)",
        probe(&na, "a1-0", &["tcp", &api_pod, "9090"]),
        false,
    );
    cell(
        "workspace a1",
        "the operator (pod port 8080)",
        probe(&na, "a1-0", &["tcp", &operator, "8080"]),
        false,
    );
    cell(
        "workspace a1",
        "the Kubernetes API server (Service 443)",
        probe(&na, "a1-0", &["tcp", "10.244.64.1", "443"]),
        false,
    );
    cell(
        "workspace a1",
        "the Kubernetes API server (node 6443)",
        probe(&na, "a1-0", &["tcp", "10.244.0.1", "6443"]),
        false,
    );
    cell(
        "workspace a1",
        "workspace b1 (other project)",
        probe(&na, "a1-0", &["tcp", &b1, "8888"]),
        false,
    );
    cell(
        "workspace b1",
        "workspace a1 (other project)",
        probe(&nb, "b1-0", &["tcp", &a1, "8888"]),
        false,
    );
    cell(
        "workspace a1",
        "workspace a2 (same project)",
        probe(&na, "a1-0", &["tcp", &a2, "8888"]),
        false,
    );
    cell(
        "workspace a2",
        "workspace a1 (same project)",
        probe(&na, "a2-0", &["tcp", &a1, "8888"]),
        false,
    );
    cell(
        "workspace a1",
        "the internet (198.51.100.10:80)",
        probe(&na, "a1-0", &["tcp", OUTSIDE, "80"]),
        false,
    );
    cell(
        "workspace a1",
        "the metadata address (169.254.169.254:80)",
        probe(&na, "a1-0", &["tcp", METADATA, "80"]),
        false,
    );
    cell(
        "a pod of another namespace",
        "workspace a1",
        probe("trellis-e2e-lab", "lab", &["tcp", &a1, "8888"]),
        false,
    );
    cell(
        "a non-API pod in trellis-system",
        "workspace a1",
        probe(NAMESPACE, "intruder", &["tcp", &a1, "8888"]),
        false,
    );

    // The gateway (the API pod) reaches the workspace's port: its owner's JupyterLab answers.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let signed_in = sign_in(&lane, &browser, "alice").await;
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    let through = browser
        .get(format!("{}/w/{a}/a1/api/status", lane.workspaces_url))
        .send()
        .await
        .expect("the gateway answers");
    let status = through.status().as_u16();
    cell(
        "the gateway (API pod)",
        "workspace a1 (port 8888)",
        if status == 200 {
            "open".into()
        } else {
            format!("HTTP {status}")
        },
        true,
    );

    let failed: Vec<_> = matrix.iter().filter(|c| !c.3).collect();
    assert!(
        failed.is_empty(),
        "cells that broke the isolation promise: {failed:#?}"
    );

    // The CLI inside the workspace submits through the airlock port.
    let trellis = PathBuf::from(need("TRELLIS_REAL_CLI"));
    let copied = kubectl(&[
        "-n",
        &na,
        "cp",
        trellis.to_str().expect("UTF-8"),
        "a1-0:/tmp/trellis",
        "-c",
        "workspace",
    ]);
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let made = kubectl(&[
        "-n",
        &na,
        "exec",
        "a1-0",
        "-c",
        "workspace",
        "--",
        "sh",
        "-c",
        "chmod +x /tmp/trellis && printf 'region,n\\nNorth,120\\nSouth,85\\n' > /tmp/counts.csv && id=$(/tmp/trellis egress new --title 'From inside') && /tmp/trellis egress add $id /tmp/counts.csv && /tmp/trellis egress submit $id",
    ]);
    let out = String::from_utf8_lossy(&made.stdout);
    assert!(
        made.status.success() && out.contains("state: in_review"),
        "the CLI in the workspace: {out} {}",
        String::from_utf8_lossy(&made.stderr)
    );

    // Drift under attack: a NetworkPolicy opened to everything is put back; how long does traffic
    // that should be refused get through?
    let mut windows = Vec::new();
    for _ in 0..20 {
        windows.push(exposure_window(&na, &kube).await);
    }
    windows.sort_by(|x, y| x.partial_cmp(y).expect("numbers"));
    let p50 = windows[windows.len() / 2];
    let p99 = windows[windows.len() - 1];
    figure(&format!(
        "drift: trellis-allow-airlock opened to all egress, then restored by the operator: exposure window over 20 trials p50 {p50:.3} s, p99 (max) {p99:.3} s"
    ));
    // The measurement sees an opening when there is one: with the operator stopped, the same edit
    // lets traffic out until the operator, started again, puts the policy back.
    let scale = |replicas: &str| {
        let output = kubectl(&[
            "-n",
            NAMESPACE,
            "scale",
            "deployment",
            "trellis-operator",
            "--replicas",
            replicas,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    scale("0");
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), NAMESPACE);
    let gone = Instant::now() + Duration::from_secs(60);
    while !pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=trellis-operator"))
        .await
        .expect("operator pods")
        .items
        .is_empty()
        && Instant::now() < gone
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let unguarded = exposure_after(&na, &OPEN_AIRLOCK_POLICY_TO_ALL).await;
    figure(&format!(
        "drift control: the same edit with the operator stopped: traffic got out for {unguarded:.3} s of the 3.5 s watched"
    ));
    assert!(
        unguarded > 1.0,
        "with nobody restoring it, an opened policy lets traffic out (seen for {unguarded:.3} s)"
    );
    scale("2");
    wait_for(
        &deployments,
        "trellis-operator",
        Duration::from_secs(120),
        "2 ready",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .and_then(|s| s.ready_replicas)
                == Some(2)
        },
    )
    .await;
    let restored = Instant::now() + Duration::from_secs(30);
    while probe(&na, "a1-0", &["tcp", OUTSIDE, "80"]) == "open" {
        assert!(
            Instant::now() < restored,
            "the restarted operator closes the opened policy"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Deleting the default-deny policy opens nothing: the allow policies keep workspaces isolated.
    let deleted = exposure_after(&na, &["delete", "networkpolicy", "trellis-default-deny"]).await;
    figure(&format!(
        "drift: trellis-default-deny deleted: exposure window {deleted:.3} s"
    ));
    assert_eq!(
        deleted, 0.0,
        "deleting the default-deny policy opens nothing"
    );

    // A suspended project runs no workspace pod.
    let admin = lane.token("admin").await;
    let (status, body) = lane
        .call(
            Method::POST,
            &format!("/api/v1/projects/{a}/suspend"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ns_pods: Api<Pod> = Api::namespaced(kube.clone(), &na);
    for pod in ["a1-0", "a2-0"] {
        wait_deleted(&ns_pods, pod, Duration::from_secs(60)).await;
    }
    assert!(
        ns_pods
            .list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .is_empty(),
        "no pod runs in a suspended project"
    );
    let _ = pods.delete("intruder", &Default::default()).await;
    let _ = namespaces
        .delete("trellis-e2e-lab", &Default::default())
        .await;
}

/// The edit the drift trials make: the airlock egress policy opened to every destination.
const OPEN_AIRLOCK_POLICY_TO_ALL: [&str; 7] = [
    "patch",
    "networkpolicy",
    "trellis-allow-airlock",
    "--type",
    "merge",
    "-p",
    r#"{"spec":{"egress":[{}]}}"#,
];

/// How long an outward connection from workspace a1 succeeds after someone runs `edit` on one of
/// the project's NetworkPolicies (0 when it never does).
async fn exposure_after(namespace: &str, edit: &[&str]) -> f64 {
    let bin = PathBuf::from(need("TRELLIS_REAL_BIN"));
    let watcher = tokio::process::Command::new(bin.join("kubectl"))
        .arg("--kubeconfig")
        .arg(need("KUBECONFIG"))
        .args(probe_args(
            namespace,
            "a1-0",
            &["watch", OUTSIDE, "80", "5"],
        ))
        .output();
    let editor = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let started = monotonic();
        let mut args = vec!["-n", namespace];
        args.extend_from_slice(edit);
        let output = kubectl(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        started
    };
    let (watched, started) = tokio::join!(watcher, editor);
    let watched = watched.expect("the watcher");
    let mut last_open = None;
    for line in String::from_utf8_lossy(&watched.stdout).lines() {
        let attempt: Value = serde_json::from_str(line).expect("a JSON line");
        let at = attempt["at"].as_f64().expect("a time");
        if attempt["outcome"] == "open" {
            assert!(
                at >= started - 0.25,
                "an outward connection succeeded before the edit at {at}"
            );
            last_open = Some(at);
        }
    }
    // The policy is back as the operator wants it before the next trial.
    tokio::time::sleep(Duration::from_millis(500)).await;
    last_open.map(|at| (at - started).max(0.0)).unwrap_or(0.0)
}

async fn exposure_window(namespace: &str, kube: &kube::Client) -> f64 {
    let window = exposure_after(namespace, &OPEN_AIRLOCK_POLICY_TO_ALL).await;
    // Restored: the egress rule names the airlock again.
    let policies: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(kube.clone(), namespace);
    let restored = policies
        .get("trellis-allow-airlock")
        .await
        .expect("the policy");
    let rule = serde_json::to_value(restored.spec.and_then(|s| s.egress)).expect("JSON");
    assert!(
        rule[0]["to"].is_array(),
        "the operator restored the airlock rule: {rule}"
    );
    window
}

/// CLOCK_MONOTONIC in seconds: the clock the probe in the pod reads (the same kernel's).
fn monotonic() -> f64 {
    let output = Command::new("python3")
        .args(["-c", "import time; print(time.monotonic())"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a time")
}

async fn sign_in(lane: &Lane, browser: &reqwest::Client, user: &str) -> reqwest::Response {
    trellis_e2e::api::sign_in(browser, &lane.url, &lane.issuer, user, "/").await
}

// --- DataSHIELD: a project's server from its image, reached only through Trellis ---------------

#[tokio::test]
async fn a_projects_datashield_server_runs_confined_with_its_tables_and_only_trellis_reaches_it() {
    let lane = Lane::from_env();
    let kube = client().await;
    let spec = project_spec(json!([
        {"subject": "alice", "role": "owner"},
        {"subject": "ann", "role": "analyst"},
    ]));
    let project = create_active_project(&kube, "real-node", "real-ds", spec).await;
    let namespace = format!("trellis-{project}");
    let (ingress, data) = released_ingress(&lane, &project).await;

    let started = Instant::now();
    enable(
        &kube,
        &project,
        json!({"tables": [{"name": "cohort", "request": ingress, "file": "cohort.csv"}]}),
        Duration::from_secs(180),
    )
    .await;
    figure(&format!(
        "datashield: enabled → server Ready (image started, tables fetched): {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // The pod, on the real node: its init container fetched the table with the pod's own token
    // and finished; the server runs confined, without any token, its tables read-only.
    let pods: Api<Pod> = Api::namespaced(kube.clone(), &namespace);
    let pod = pods
        .list(&ListParams::default().labels("trellis.dev/component=datashield"))
        .await
        .expect("the pods")
        .items
        .into_iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .expect("the DataSHIELD pod");
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(NODE)
    );
    assert_init_containers_finished(&pod, "the init container fetched the tables and finished");
    let (_, id) = container_ids(&pod)
        .into_iter()
        .find(|(name, _)| name == "datashield")
        .expect("the server's container");
    let pid = lane.pid(&id);
    let c = confinement(pid);
    figure(&format!("datashield: the server's memory: {}", c.memory()));
    assert_eq!(c.uid, TRELLIS_UID, "{c:?}");
    assert_eq!(c.cap_eff, "0000000000000000", "{c:?}");
    assert_eq!(c.no_new_privs, "1", "{c:?}");
    assert_eq!(c.seccomp, "2", "{c:?}");
    assert!(c.root_read_only, "{c:?}");
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    assert!(
        !mounts.contains("kubernetes.io/serviceaccount"),
        "no Kubernetes API token: {mounts}"
    );
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    assert!(
        !root.join("run/secrets/trellis").exists(),
        "the Trellis token is the init container's alone"
    );
    let table = root.join(format!("data/tables/{project}/cohort.csv"));
    assert_eq!(std::fs::read(&table).expect("the fetched table"), data);
    assert!(
        is_read_only_error(std::fs::write(
            root.join(format!("data/tables/{project}/planted.csv")),
            b"x\n"
        )),
        "the server cannot change its tables"
    );

    // Through Trellis: the analyst's token, Opal's protocol, an aggregate back.
    let ann = lane.token("ann").await;
    let expires = (chrono::Utc::now().date_naive() + chrono::Days::new(7)).to_string();
    let (status, made) = lane
        .call(
            Method::POST,
            "/api/v1/tokens",
            &ann,
            Some(json!({"name": "real node", "projects": [project], "expiresAt": expires})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let opal = Opal::new(
        &lane.url,
        &project,
        made["token"].as_str().expect("a token"),
    );
    let session = opal.open().await;
    opal.assign_table(&session, "D", &format!("{project}.cohort"))
        .await;
    let started = Instant::now();
    let dims = opal.aggregate(&session, "dimDS('D')").await;
    figure(&format!(
        "datashield: dimDS through the API to the server's pod: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    assert_eq!(dims.status(), 200);
    let dims: Value = dims.json().await.expect("JSON");
    assert_eq!(dims, json!([2, 2]), "two rows, two columns");

    // Nothing else reaches it: not a pod elsewhere in the cluster.
    let server_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("an address");
    let elsewhere = "trellis-e2e-ds-lab";
    trellis_e2e::ensure_namespace(&kube, elsewhere).await;
    bystander(&kube, elsewhere, "lab").await;
    let outcome = probe(elsewhere, "lab", &["tcp", &server_ip, "8095"]);
    figure(&format!(
        "isolation: another namespace → the DataSHIELD server: {outcome} (expected refused)"
    ));
    assert!(blocked(&outcome), "{outcome}");
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    namespaces
        .delete(elsewhere, &Default::default())
        .await
        .expect("removing the bystander's namespace");
}
