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

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod};
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
        let env = container_env(pod, container, &pod_ip);
        let argv = program(container, &env)?;
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
        let path = [
            repo_root().join("tests/workspace/bin"),
            self.options.jupyterlab.join("bin"),
        ]
        .into_iter()
        .map(|p| p.display().to_string())
        .chain(std::env::var("PATH").ok())
        .collect::<Vec<_>>()
        .join(":");
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
