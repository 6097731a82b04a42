//! A stand-in for the container runtime of the local control plane.
//!
//! kwok simulates kubelets: pods become Running with a loopback address from 127.10.0.0/16, but
//! nothing runs. This watches the pods of workspaces and, for each Running pod with an address,
//! starts its workspace container's program as a host process the way a kubelet would: the
//! container's `command` + `args` with Kubernetes `$(VAR)` expansion, its environment, plus
//! `POD_IP`; `HOME` is a directory of its own (the home volume), and the program binds to the
//! pod's address, so the gateway reaches it exactly as in a cluster. A program is stopped
//! (SIGTERM to its process group, then SIGKILL) when its pod goes away or stops running.
//!
//! Images cannot run here: `tests/workspace/bin` stands in for their entrypoints (e.g.
//! `start-notebook.py` of the Jupyter images) and comes first on the program's `PATH`, followed
//! by the JupyterLab environment of `tests/workspace/setup-jupyterlab.sh`.
//!
//! With [`PodFiles`], a pod gets what a kubelet gives it beyond its program: its volumes are made
//! in a directory of its own (emptyDirs; ConfigMaps and Secrets written from the apiserver;
//! claims are left to `HOME`, as without them;
//! projected service-account tokens requested with the TokenRequest API, bound to the pod, as the
//! kubelet does), every path under a mount in the containers' arguments and environment points
//! into that directory, and its init containers run to completion, in order, before its program.
//! (Read-only mounts cannot be enforced on host processes; the real-node lane enforces them.)

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, ServiceAccount};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::repo_root;

/// Names the directory of the JupyterLab environment (tests/workspace/setup-jupyterlab.sh).
pub const JUPYTERLAB_ENV: &str = "TRELLIS_E2E_JUPYTERLAB";

/// How long a program has to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// The JupyterLab environment: `TRELLIS_E2E_JUPYTERLAB`, or made (or reused) by
/// tests/workspace/setup-jupyterlab.sh.
pub fn jupyterlab() -> PathBuf {
    if let Ok(dir) = std::env::var(JUPYTERLAB_ENV)
        && !dir.is_empty()
    {
        return PathBuf::from(dir);
    }
    let script = repo_root().join("tests/workspace/setup-jupyterlab.sh");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} failed; see its output above",
        script.display()
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Which pods to run (a label selector), e.g. one test's project.
    pub selector: String,
    /// Where homes (`homes/<namespace>/<pod>`) and logs (`logs/<namespace>_<pod>.log`) go.
    pub dir: PathBuf,
    /// The JupyterLab environment.
    pub jupyterlab: PathBuf,
    /// Volumes and init containers too, for pods that need them.
    pub pod_files: Option<PodFiles>,
}

/// What [`RuntimeOptions::pod_files`] needs besides the pod: directories to find the images'
/// programs in (e.g. target/debug for `trellis` and `trellis-datashield`), and environment
/// values that stand for cluster names (the API's Service address → the test's API).
#[derive(Clone, Debug, Default)]
pub struct PodFiles {
    pub path: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
}

/// One program started for a pod.
struct Program {
    uid: String,
    child: Child,
    exited: bool,
}

struct Inner {
    options: RuntimeOptions,
    programs: Mutex<HashMap<(String, String), Program>>,
    client: Client,
    handle: tokio::runtime::Handle,
}

/// The running stand-in; dropping it stops every program it started.
pub struct Runtime {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Runtime {
    /// Starts watching pods that match `options.selector` in every namespace.
    pub fn start(client: Client, options: RuntimeOptions) -> Self {
        std::fs::create_dir_all(options.dir.join("logs")).expect("the runtime's log directory");
        let inner = Arc::new(Inner {
            options,
            programs: Mutex::new(HashMap::new()),
            client: client.clone(),
            handle: tokio::runtime::Handle::current(),
        });
        let pods: Api<Pod> = Api::all(client);
        let config = watcher::Config::default().labels(&inner.options.selector);
        let (store, writer) = reflector::store();
        let events = watcher(pods, config).default_backoff().reflect(writer);
        let task = tokio::spawn({
            let inner = inner.clone();
            async move {
                let mut events = std::pin::pin!(events);
                while let Some(event) = events.next().await {
                    if let Err(error) = event {
                        eprintln!("runtime: pod watch interrupted: {error}");
                        continue;
                    }
                    let inner = inner.clone();
                    let store = store.clone();
                    // Starting and stopping processes blocks (a stop waits for the exit).
                    let _ = tokio::task::spawn_blocking(move || inner.reconcile(&store)).await;
                }
            }
        });
        Self { inner, task }
    }

    /// The log file of a pod's program.
    pub fn log(&self, namespace: &str, pod: &str) -> PathBuf {
        self.inner.log(namespace, pod)
    }

    /// Where the pods' volumes are made (with [`PodFiles`]): `<namespace>/<pod>/volumes/<name>`.
    pub fn pods_dir(&self) -> PathBuf {
        self.inner.options.dir.join("pods")
    }

    /// The home directory of a pod's program.
    pub fn home(&self, namespace: &str, pod: &str) -> PathBuf {
        self.inner.home(namespace, pod)
    }

    /// Pods whose programs are running now, as `namespace/pod`.
    pub fn running(&self) -> Vec<String> {
        let mut programs = self.inner.lock();
        let mut names = Vec::new();
        for ((namespace, pod), program) in programs.iter_mut() {
            if matches!(program.child.try_wait(), Ok(None)) {
                names.push(format!("{namespace}/{pod}"));
            }
        }
        names.sort();
        names
    }

    /// Waits until a pod's program listens on `address` (`ip:port`), or panics with its log.
    pub async fn wait_listening(
        &self,
        namespace: &str,
        pod: &str,
        address: &str,
        timeout: Duration,
    ) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "the program of pod {namespace}/{pod} did not listen on {address} within {timeout:?}; \
             its log:\n{}",
            std::fs::read_to_string(self.log(namespace, pod)).unwrap_or_default()
        );
    }

    /// Stops every program (as dropping does).
    pub fn stop_all(&self) {
        self.inner.stop_all();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.task.abort();
        self.inner.stop_all();
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Program>> {
        self.programs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, namespace: &str, pod: &str) -> PathBuf {
        self.options
            .dir
            .join("logs")
            .join(format!("{namespace}_{pod}.log"))
    }

    fn home(&self, namespace: &str, pod: &str) -> PathBuf {
        self.options.dir.join("homes").join(namespace).join(pod)
    }

    /// Makes the running programs match the pods: one per Running pod with an address.
    fn reconcile(&self, store: &Store<Pod>) {
        let wanted: HashMap<(String, String), Arc<Pod>> = store
            .state()
            .into_iter()
            .filter(|pod| runs(pod))
            .map(|pod| ((pod.namespace().unwrap_or_default(), pod.name_any()), pod))
            .collect();
        let mut programs = self.lock();
        let stale: Vec<(String, String)> = programs
            .iter()
            .filter(|(key, program)| {
                wanted
                    .get(*key)
                    .is_none_or(|pod| pod.uid().unwrap_or_default() != program.uid)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            if let Some(program) = programs.remove(&key) {
                self.note(&key, "the pod stopped running: stopping its program");
                stop(program);
            }
        }
        for (key, program) in programs.iter_mut() {
            if !program.exited
                && let Ok(Some(status)) = program.child.try_wait()
            {
                program.exited = true;
                self.note(key, &format!("the program exited by itself: {status}"));
            }
        }
        for (key, pod) in wanted {
            if programs.contains_key(&key) {
                continue;
            }
            match self.spawn(&pod) {
                Ok(child) => {
                    programs.insert(
                        key,
                        Program {
                            uid: pod.uid().unwrap_or_default(),
                            child,
                            exited: false,
                        },
                    );
                }
                Err(error) => self.note(&key, &format!("cannot start the program: {error}")),
            }
        }
    }

    /// A line in the pod's log from the runtime itself.
    fn note(&self, (namespace, pod): &(String, String), what: &str) {
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(namespace, pod))
        {
            use std::io::Write;
            let _ = writeln!(file, "[runtime] {what}");
        }
    }

    fn spawn(&self, pod: &Pod) -> Result<Child, String> {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
        let container = spec
            .containers
            .iter()
            .find(|c| c.name == "workspace")
            .or_else(|| spec.containers.first())
            .ok_or("the pod has no container")?;
        let pod_ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .ok_or("the pod has no address")?;
        let mut env = container_env(pod, container, &pod_ip);
        let mut argv = program(container, &env)?;
        if let Some(files) = &self.options.pod_files {
            let volumes = self.volumes(pod, spec)?;
            for init in spec.init_containers.iter().flatten() {
                self.run_init(pod, init, &pod_ip, &volumes, files)?;
            }
            let mounts = mounts(container, &volumes);
            (env, argv) = with_pod_files(env, argv, &mounts, files);
        }
        let home = self.home(&namespace, &name);
        std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
        let log_path = self.log(&namespace, &name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let port = container
            .ports
            .as_ref()
            .and_then(|ports| ports.first())
            .map(|p| p.container_port.to_string())
            .unwrap_or_default();
        let path = self.path();
        self.note(
            &(namespace.clone(), name.clone()),
            &format!("starting {argv:?} on {pod_ip} in {}", home.display()),
        );
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            // A container sees only its own environment, not the test's.
            .env_clear()
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("HOME", &home)
            .env("TRELLIS_CONTAINER_PORT", port)
            .env("TRELLIS_JUPYTERLAB", &self.options.jupyterlab)
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            // Its own process group, so that stopping it stops its children (kernels) too.
            .process_group(0);
        command.spawn().map_err(|e| format!("{}: {e}", argv[0]))
    }

    fn path(&self) -> String {
        self.options
            .pod_files
            .iter()
            .flat_map(|files| files.path.iter().cloned())
            .chain([
                repo_root().join("tests/workspace/bin"),
                self.options.jupyterlab.join("bin"),
            ])
            .map(|p| p.display().to_string())
            .chain(std::env::var("PATH").ok())
            .collect::<Vec<_>>()
            .join(":")
    }

    fn pod_dir(&self, pod: &Pod) -> PathBuf {
        self.options
            .dir
            .join("pods")
            .join(pod.namespace().unwrap_or_default())
            .join(pod.name_any())
    }

    /// Makes the pod's volumes: name → directory.
    fn volumes(
        &self,
        pod: &Pod,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) -> Result<HashMap<String, PathBuf>, String> {
        let namespace = pod.namespace().unwrap_or_default();
        let mut made = HashMap::new();
        for volume in spec.volumes.iter().flatten() {
            // A claim is the pod's home, which `HOME` already stands for.
            let made_here = volume.empty_dir.is_some()
                || volume.config_map.is_some()
                || volume.secret.is_some()
                || volume.projected.is_some();
            if !made_here {
                continue;
            }
            let dir = self.pod_dir(pod).join("volumes").join(&volume.name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut files: Vec<(String, Vec<u8>)> = Vec::new();
            if let Some(source) = &volume.config_map {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &namespace);
                let map = self
                    .handle
                    .block_on(api.get(&source.name))
                    .map_err(|e| format!("ConfigMap {}: {e}", source.name))?;
                files.extend(
                    map.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes())),
                );
            }
            if let Some(source) = &volume.secret {
                let name = source.secret_name.clone().unwrap_or_default();
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
                let secret = self
                    .handle
                    .block_on(api.get(&name))
                    .map_err(|e| format!("Secret {name}: {e}"))?;
                files.extend(
                    secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
            }
            for source in volume
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
            {
                if let Some(token) = &source.service_account_token {
                    files.push((
                        token.path.clone(),
                        self.token(pod, spec, token)?.into_bytes(),
                    ));
                }
            }
            for (name, bytes) in files {
                let file = dir.join(&name);
                std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            made.insert(volume.name.clone(), dir);
        }
        Ok(made)
    }

    /// A projected token, as the kubelet requests it: for the pod's service account, bound to
    /// the pod, with the projection's audience and lifetime.
    fn token(
        &self,
        pod: &Pod,
        spec: &k8s_openapi::api::core::v1::PodSpec,
        projection: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
    ) -> Result<String, String> {
        use k8s_openapi::api::authentication::v1::{
            BoundObjectReference, TokenRequest, TokenRequestSpec,
        };
        let account = spec
            .service_account_name
            .clone()
            .unwrap_or("default".into());
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: projection.audience.clone().map(|a| vec![a]),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.name_any()),
                    uid: pod.uid(),
                }),
                expiration_seconds: projection.expiration_seconds,
            }),
            ..Default::default()
        };
        let api: Api<ServiceAccount> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        self.handle
            .block_on(api.create_token_request(&account, &Default::default(), &request))
            .map_err(|e| format!("a token for {account}: {e}"))?
            .status
            .and_then(|s| s.token)
            .ok_or_else(|| format!("no token for {account}"))
    }

    /// Runs an init container to completion (two minutes at most), its output in the pod's log.
    fn run_init(
        &self,
        pod: &Pod,
        container: &Container,
        pod_ip: &str,
        volumes: &HashMap<String, PathBuf>,
        files: &PodFiles,
    ) -> Result<(), String> {
        let env = container_env(pod, container, pod_ip);
        let argv = program(container, &env)?;
        let (env, argv) = with_pod_files(env, argv, &mounts(container, volumes), files);
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        self.note(
            &key,
            &format!("init container {}: {argv:?}", container.name),
        );
        let log_path = self.log(&key.0, &key.1);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", self.path())
            .env("LANG", "C.UTF-8")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .current_dir(self.pod_dir(pod))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "init container {} failed: {status}",
                        container.name
                    ));
                }
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("init container {} did not finish", container.name));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    fn stop_all(&self) {
        let programs: Vec<Program> = self.lock().drain().map(|(_, p)| p).collect();
        for program in &programs {
            signal(program, "TERM");
        }
        for program in programs {
            finish(program);
        }
    }
}

/// A container's mounts: mount path → the volume's directory (with its subPath).
fn mounts(container: &Container, volumes: &HashMap<String, PathBuf>) -> Vec<(String, PathBuf)> {
    let mut mounts: Vec<(String, PathBuf)> = container
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(|mount| {
            let dir = volumes.get(&mount.name)?;
            let dir = match mount.sub_path.as_deref() {
                Some(sub) if !sub.is_empty() => dir.join(sub),
                _ => dir.clone(),
            };
            Some((mount.mount_path.trim_end_matches('/').to_owned(), dir))
        })
        .collect();
    // The deepest mount wins, as in a container.
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    mounts
}

/// A path inside the container, as the host sees it: under the mount it falls in.
pub fn host_path(value: &str, mounts: &[(String, PathBuf)]) -> String {
    for (mount, dir) in mounts {
        if let Some(rest) = value.strip_prefix(mount.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{}{rest}", dir.display());
        }
    }
    value.to_owned()
}

fn with_pod_files(
    env: Vec<(String, String)>,
    argv: Vec<String>,
    mounts: &[(String, PathBuf)],
    files: &PodFiles,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .map(|(name, value)| (name, host_path(&value, mounts)))
        .collect();
    for (name, value) in &files.env {
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), value.clone()));
    }
    let argv = argv.iter().map(|arg| host_path(arg, mounts)).collect();
    (env, argv)
}

/// Whether a pod's program should run: Running, with an address, not being deleted.
fn runs(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    pod.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status.and_then(|s| s.pod_ip.as_deref()).is_some()
}

fn signal(program: &Program, name: &str) {
    if program.exited {
        return;
    }
    // The negative pid names the process group.
    let _ = Command::new("kill")
        .args([
            &format!("-{name}"),
            "--",
            &format!("-{}", program.child.id()),
        ])
        .stderr(Stdio::null())
        .status();
}

/// Waits for a program sent SIGTERM; kills its group if it does not exit in time.
fn finish(mut program: Program) {
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if !matches!(program.child.try_wait(), Ok(None)) {
            // The leader is gone; anything left in its group goes too.
            signal(&program, "KILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&program, "KILL");
    let _ = program.child.kill();
    let _ = program.child.wait();
}

fn stop(program: Program) {
    signal(&program, "TERM");
    finish(program);
}

/// The container's environment as the kubelet builds it: each variable's value may refer to
/// those defined before it; `fieldRef`s to the pod's name, namespace and address are resolved,
/// other sources (Secrets, ConfigMaps) are not available here and left out. `POD_IP` is added.
pub fn container_env(pod: &Pod, container: &Container, pod_ip: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for variable in container.env.iter().flatten() {
        let value = match (&variable.value, &variable.value_from) {
            (Some(value), _) => Some(expand(value, &env)),
            (None, Some(source)) => {
                source
                    .field_ref
                    .as_ref()
                    .and_then(|field| match field.field_path.as_str() {
                        "metadata.name" => Some(pod.name_any()),
                        "metadata.namespace" => pod.namespace(),
                        "status.podIP" => Some(pod_ip.to_string()),
                        _ => None,
                    })
            }
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            env.retain(|(name, _)| *name != variable.name);
            env.push((variable.name.clone(), value));
        }
    }
    env.retain(|(name, _)| name != "POD_IP");
    env.push(("POD_IP".into(), pod_ip.to_string()));
    env
}

/// The program and its arguments: `command` + `args`, each with `$(VAR)` expanded. Without a
/// `command` the image's entrypoint runs the `args` (the Jupyter images' `tini -g --` does just
/// that), so the arguments are the program.
pub fn program(container: &Container, env: &[(String, String)]) -> Result<Vec<String>, String> {
    let argv: Vec<String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|arg| expand(arg, env))
        .collect();
    if argv.is_empty() {
        return Err(
            "the container names no command or arguments, and images cannot run here".into(),
        );
    }
    Ok(argv)
}

/// Kubernetes' variable expansion: `$(NAME)` becomes the value of `NAME` when it is defined and
/// stays as written when not; `$$` is a literal `$`.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
        {
            let name = &inner[..close];
            match lookup(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A label selector for the workspace pods of one project.
pub fn project_selector(project: &str) -> String {
    format!(
        "{}={project}",
        trellis_operator::resources::names::PROJECT_LABEL
    )
}

/// A label selector for every workspace pod.
pub fn all_workspaces_selector() -> String {
    format!(
        "{}={}",
        trellis_operator::resources::names::COMPONENT_LABEL,
        trellis_operator::resources::names::WORKSPACE_COMPONENT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn paths_under_a_mount_lead_into_its_volume_and_the_deepest_mount_wins() {
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "tables", "mountPath": "/data/tables/"},
                {"name": "config", "mountPath": "/etc/app", "subPath": "one"},
            ],
        }))
        .unwrap();
        let volumes: HashMap<String, PathBuf> = ["data", "tables", "config"]
            .iter()
            .map(|v| (v.to_string(), PathBuf::from(format!("/host/{v}"))))
            .collect();
        let mounts = mounts(&container, &volumes);
        for (inside, outside) in [
            ("/data/tables/p/t.csv", "/host/tables/p/t.csv"),
            ("/data/tables", "/host/tables"),
            ("/data/other", "/host/data/other"),
            ("/etc/app/profile.yaml", "/host/config/one/profile.yaml"),
            ("/database", "/database"),
            ("--listen", "--listen"),
        ] {
            assert_eq!(host_path(inside, &mounts), outside, "{inside}");
        }
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let vars = env(&[("BASE", "/w/p/w/"), ("PORT", "8888"), ("EMPTY", "")]);
        for (text, expanded) in [
            (
                "--ServerApp.base_url=$(BASE)",
                "--ServerApp.base_url=/w/p/w/",
            ),
            ("$(BASE)$(PORT)", "/w/p/w/8888"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(BASE)", "$(BASE)"),
            ("$$$(BASE)", "$/w/p/w/"),
            ("cost: $5", "cost: $5"),
            ("$(unclosed", "$(unclosed"),
            ("$(EMPTY)x", "x"),
            ("end$", "end$"),
            ("", ""),
        ] {
            assert_eq!(expand(text, &vars), expanded, "{text}");
        }
    }

    #[test]
    fn the_environment_and_program_of_a_workspace_container() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "nb-0", "namespace": "trellis-p"},
            "spec": {"containers": [{
                "name": "workspace",
                "args": ["start-notebook.py", "--ServerApp.base_url=$(TRELLIS_BASE_PATH)", "--IdentityProvider.token="],
                "env": [
                    {"name": "TRELLIS_BASE_PATH", "value": "/w/p/nb/"},
                    {"name": "HOME", "value": "/home/workspace"},
                    {"name": "LAB", "value": "$(TRELLIS_BASE_PATH)lab"},
                    {"name": "EARLY", "value": "$(LATER)"},
                    {"name": "LATER", "value": "x"},
                    {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
            }]},
        }))
        .unwrap();
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let env = container_env(&pod, container, "127.10.0.7");
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(get("LAB").as_deref(), Some("/w/p/nb/lab"));
        assert_eq!(
            get("EARLY").as_deref(),
            Some("$(LATER)"),
            "only earlier variables"
        );
        assert_eq!(get("ME").as_deref(), Some("nb-0"));
        assert_eq!(get("POD_IP").as_deref(), Some("127.10.0.7"));
        assert_eq!(get("SECRET"), None);
        assert_eq!(
            program(container, &env).unwrap(),
            [
                "start-notebook.py",
                "--ServerApp.base_url=/w/p/nb/",
                "--IdentityProvider.token="
            ]
        );
        let mut bare = container.clone();
        bare.args = None;
        assert!(program(&bare, &env).is_err());
        bare.command = Some(vec!["sh".into(), "-c".into(), "echo $(LATER)".into()]);
        assert_eq!(program(&bare, &env).unwrap(), ["sh", "-c", "echo x"]);
    }
}
